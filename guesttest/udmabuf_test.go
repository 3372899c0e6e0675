// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/udmabuf"
	"golang.org/x/sys/unix"
)

const mib = 1 << 20

// TestGuestUdmabufThroughDmabuf writes through the package's mapping and reads the bytes back
// through a second, independent mmap of the dma-buf fd: the memory really is the dma-buf's.
func TestGuestUdmabufThroughDmabuf(t *testing.T) {
	Require(t)
	const size = 4 * mib
	b, err := udmabuf.New(size, udmabuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if exp := fdinfo(t, b.FD(), "exp_name"); exp != "udmabuf" {
		t.Errorf("dma-buf exporter %q, want udmabuf", exp)
	}
	if sz := fdinfo(t, b.FD(), "size"); sz != strconv.Itoa(size) {
		t.Errorf("dma-buf size %s, want %d", sz, size)
	}
	if err := b.BeginCPU(true); err != nil {
		t.Fatal(err)
	}
	mem := b.Bytes()
	for i := range mem {
		mem[i] = byte(i>>12) ^ byte(i)
	}
	if err := b.EndCPU(true); err != nil {
		t.Fatal(err)
	}
	other, err := unix.Mmap(b.FD(), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap the dma-buf fd a second time: %v", err)
	}
	defer unix.Munmap(other)
	if err := b.BeginCPU(false); err != nil {
		t.Fatal(err)
	}
	same := bytes.Equal(other, b.Bytes())
	if err := b.EndCPU(false); err != nil {
		t.Fatal(err)
	}
	if !same {
		t.Fatal("a second mapping of the dma-buf fd does not see what was written through Bytes")
	}
	// WriteAt then ReadAt at the last page, and the second mapping agrees.
	msg := []byte("written through the dma-buf, read back through the dma-buf")
	off := int64(size - len(msg))
	if _, err := b.WriteAt(msg, off); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := b.ReadAt(got, off); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("ReadAt = %q, %v", got, err)
	}
	if !bytes.Equal(other[off:], msg) {
		t.Fatal("the second mapping does not see WriteAt's bytes")
	}
}

// TestGuestUdmabufSizeLimit checks the limit as each guest kernel is booted: 6.12 keeps Debian's
// 64 MiB default, so a larger buffer is refused with the advice to raise size_limit_mb; 7.x is booted
// with udmabuf.size_limit_mb=256 and must hand out a buffer beyond 64 MiB.
func TestGuestUdmabufSizeLimit(t *testing.T) {
	Require(t)
	limit, err := udmabuf.SizeLimit()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("size limit %d MiB, cmdline %q", limit/mib, cmdline(t))
	wantLimit := int64(64 * mib)
	if v, ok := cmdlineParam(t, "udmabuf.size_limit_mb"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("udmabuf.size_limit_mb=%q on the cmdline", v)
		}
		wantLimit = n * mib
	}
	if limit != wantLimit {
		t.Fatalf("SizeLimit() = %d MiB, want %d MiB", limit/mib, wantLimit/mib)
	}
	if limit <= 64*mib {
		// At the limit works; one page more is refused before anything is allocated, with the fix.
		b, err := udmabuf.New(limit, udmabuf.Options{})
		if err != nil {
			t.Fatalf("a buffer of exactly the limit (%d MiB): %v", limit/mib, err)
		}
		b.Close()
		_, err = udmabuf.New(limit+int64(os.Getpagesize()), udmabuf.Options{})
		t.Logf("one page over: %v", err)
		if err == nil {
			t.Fatal("one page over the size limit was accepted")
		}
		for _, want := range []string{"size limit", "size_limit_mb", "udmabuf.size_limit_mb="} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the refusal does not mention %q", want)
			}
		}
		if err := udmabuf.Check(128*mib, udmabuf.Options{}); err == nil {
			t.Error("Check accepted 128 MiB over a 64 MiB limit")
		}
		return
	}
	if !KernelRelease(t).AtLeast(7, 0) {
		t.Logf("size limit raised on a %s kernel", KernelRelease(t))
	}
	// Beyond the 64 MiB default: allocate, touch the last page, read it back.
	size := limit / 2
	if size <= 64*mib {
		size = limit
	}
	b, err := udmabuf.New(size, udmabuf.Options{})
	if err != nil {
		t.Fatalf("udmabuf of %d MiB under a %d MiB limit: %v", size/mib, limit/mib, err)
	}
	defer b.Close()
	msg := []byte("beyond 64 MiB")
	if _, err := b.WriteAt(msg, size-int64(len(msg))); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := b.ReadAt(got, size-int64(len(msg))); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("ReadAt at the end of %d MiB = %q, %v", size/mib, got, err)
	}
}

// fdinfo returns one field of /proc/self/fdinfo/FD.
func fdinfo(t testing.TB, fd int, key string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("fdinfo of fd %d has no %s:\n%s", fd, key, b)
	return ""
}

func cmdline(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func cmdlineParam(t testing.TB, name string) (string, bool) {
	t.Helper()
	for _, f := range strings.Fields(cmdline(t)) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v, true
		}
	}
	return "", false
}
