// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"errors"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/pattern"
	"github.com/devmemtcp/ncdevmem/zcrx"
)

// TestGuestZcrxKernel: what each guest kernel offers for io_uring zcrx, as the tool's probe sees it.
// 6.12 has none; Debian's 7.3 has CONFIG_IO_URING_ZCRX=y, answers the zcrx query, takes dma-buf
// areas and keeps copy-fallback counters.
func TestGuestZcrxKernel(t *testing.T) {
	Require(t)
	rel := KernelRelease(t)
	s, err := zcrx.Probe()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s: RecvZC %v, register %v, query %+v", rel, s.RecvZC, s.Register, s.Query)
	if !rel.AtLeast(6, 15) {
		if !errors.Is(s.Usable(), zcrx.ErrNoZcrx) || s.RecvZC {
			t.Fatalf("kernel %s: probe %+v, want no zcrx", rel, s)
		}
		return
	}
	if s.Usable() != nil {
		t.Fatalf("kernel %s: %v", rel, s.Usable())
	}
	if rel.AtLeast(7, 0) && (s.Query == nil || !s.DmabufAreas() || !s.CopyStats()) {
		t.Fatalf("kernel %s: query %+v, want dma-buf areas and copy counters", rel, s.Query)
	}
}

// noDevRun streams size bytes of the pattern on each of flows loopback connections into one ifq
// registered without a device (ZCRX_REG_NODEV: the kernel copies every byte into the area), with
// in-place validation. corruptAt >= 0 flips that stream byte of flow 0 on the wire.
func noDevRun(t *testing.T, flows int, areaSize int64, size int, corruptAt int) ([]*zcrx.Flow, zcrx.Snapshot) {
	t.Helper()
	sup, err := zcrx.Probe()
	if err != nil {
		t.Fatal(err)
	}
	area, err := zcrx.HostArea(areaSize)
	if err != nil {
		t.Fatal(err)
	}
	r, err := zcrx.NewRing(16, 1024, true)
	if err != nil {
		t.Fatal(err)
	}
	q, err := r.RegisterIfq(zcrx.IfqConfig{NoDev: true, Area: area, DmabufFD: -1, CopyStats: sup.CopyStats()})
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	rc, err := zcrx.NewReceiver(r, q, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := rc.Close(); err != nil {
			t.Error(err)
		}
		zcrx.FreeHostArea(area)
	}()
	fs := make([]*zcrx.Flow, flows)
	for i := range flows {
		c, srv := testnet.TCPPair(t)
		raw, err := srv.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		fd := -1
		raw.Control(func(u uintptr) { fd = int(u) })
		if fs[i], err = rc.Arm(i, fd, func(p []byte, off uint64) error { return pattern.Check(i, p, off) }, 1, nil); err != nil {
			t.Fatal(err)
		}
		go func(c net.Conn, corrupt int) {
			b := make([]byte, 64<<10)
			for off := 0; off < size; off += len(b) {
				pattern.Fill(b, uint64(off))
				if corrupt >= off && corrupt < off+len(b) {
					b[corrupt-off] ^= 0x5a
				}
				if _, err := c.Write(b); err != nil {
					return
				}
			}
			c.Close()
		}(c, map[bool]int{true: corruptAt, false: -1}[i == 0])
	}
	for i, f := range fs {
		select {
		case <-f.Done():
		case <-time.After(120 * time.Second):
			t.Fatalf("flow %d of %d hung at stream offset %d: %+v", i, flows, f.Offset(), rc.Snapshot())
		}
	}
	return fs, rc.Snapshot()
}

// TestGuestZcrxNoDevLoopback runs the real RECV_ZC path of the 7.x kernel on loopback: 1 and 4
// flows, every byte validated in the area, buffers back through the refill ring in batches, the
// kernel's copy counters equal to the bytes (without a device everything is copied); then a
// 64 KiB area (16 buffers) for 16 MiB: slower, never stuck, nothing lost. On 6.12 the registration
// itself is refused.
func TestGuestZcrxNoDevLoopback(t *testing.T) {
	Require(t)
	rel := KernelRelease(t)
	if !rel.AtLeast(7, 0) {
		r, err := zcrx.NewRing(4, 8, true)
		if err != nil {
			t.Fatalf("kernel %s: a DEFER_TASKRUN|SINGLE_ISSUER|CQE32 ring: %v", rel, err)
		}
		defer r.Close()
		_, err = r.RegisterIfq(zcrx.IfqConfig{NoDev: true, Area: make([]byte, zcrx.MinAreaSize), DmabufFD: -1})
		if err == nil {
			t.Fatalf("kernel %s registered a no-device zcrx ifq", rel)
		}
		t.Logf("kernel %s: %v", rel, err)
		return
	}
	const size = 16 << 20
	for _, flows := range []int{1, 4} {
		fs, s := noDevRun(t, flows, 1<<20, size, -1)
		t.Logf("%d flows: %+v", flows, s)
		for i, f := range fs {
			if f.Err() != nil || f.Offset() != size {
				t.Fatalf("%d flows: flow %d ended at %d of %d: %v", flows, i, f.Offset(), size, f.Err())
			}
		}
		if s.Bytes != uint64(flows*size) || s.RefillEntries != s.Completions || s.RefillBatches == 0 || s.RefillBatches >= s.Completions {
			t.Fatalf("%d flows: counters %+v", flows, s)
		}
		// Everything is copied without a device; 7.3's counters count copied frags (not CQEs) and
		// leave out bytes copied from an skb's linear part, so they come out a little short.
		if !s.CopyKnown || s.CopyBytes == 0 || s.CopyBytes > s.Bytes || s.CopyBytes < s.Bytes*9/10 || s.CopyCount == 0 || s.CopyCount > s.Completions {
			t.Fatalf("%d flows: copy counters %+v, want nearly every byte counted as copied", flows, s)
		}
	}
	fs, s := noDevRun(t, 1, zcrx.MinAreaSize, size, -1)
	t.Logf("64 KiB area: %+v", s)
	if err := fs[0].Err(); err != nil || fs[0].Offset() != size {
		t.Fatalf("64 KiB area: ended at %d of %d: %v", fs[0].Offset(), size, err)
	}
}

// TestGuestZcrxCorruption: a byte flipped on the wire is caught in the area at its stream offset.
func TestGuestZcrxCorruption(t *testing.T) {
	Require(t)
	if rel := KernelRelease(t); !rel.AtLeast(7, 0) {
		t.Logf("kernel %s: no no-device zcrx; TestGuestZcrxNoDevLoopback checks the refusal", rel)
		return
	}
	const at = 3<<20 + 12345
	fs, s := noDevRun(t, 1, 1<<20, 8<<20, at)
	var me *pattern.MismatchError
	if !errors.As(fs[0].Err(), &me) || me.Offset != at {
		t.Fatalf("got %v (%+v), want a mismatch at stream offset %d", fs[0].Err(), s, at)
	}
	t.Logf("caught: %v", me)
}

// TestGuestZcrxRunVirtio: `ncdevmem run --zcrx` on a virtio-net NIC is refused: on 7.x by the
// kernel (no DMA device for the queue), on 6.12 because the kernel has no zcrx; exit 1, one line.
func TestGuestZcrxRunVirtio(t *testing.T) {
	Require(t)
	nics := VirtioNICs(t)
	if len(nics) == 0 {
		t.Fatal("no virtio NIC in the guest")
	}
	rel := KernelRelease(t)
	// A device that is down lists no queues, and the run would stop at the queue range instead.
	ipLink(t, "set", nics[0], "up")
	t.Cleanup(func() { ipLink(t, "set", nics[0], "down") })
	out, err := exec.Command(ncdevmemBin(t), "run", "--zcrx", "-f", nics[0], "--queues", "0", "--no-setup", "--time", "1s").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1:\n%s", err, out)
	}
	want := "no DMA device"
	if !rel.AtLeast(6, 15) {
		want = "no io_uring zero-copy receive"
	}
	if !strings.Contains(string(out), want) {
		t.Fatalf("kernel %s: output lacks %q:\n%s", rel, want, out)
	}
	t.Logf("kernel %s: %s", rel, out)
}

// TestGuestZcrxMemlock: what zcrx.Charge says a run pins is what the kernel charges. On a thread
// without CAP_IPC_LOCK and a 2 MiB RLIMIT_MEMLOCK, the largest host area zcrx.MaxHostArea allows
// registers (a no-device ifq, 7.x), and a 4 MiB one, which CheckCharge refuses, gets the kernel's
// ENOMEM. On 6.12 (no zcrx) there is nothing to charge.
func TestGuestZcrxMemlock(t *testing.T) {
	Require(t)
	if rel := KernelRelease(t); !rel.AtLeast(7, 0) {
		t.Logf("kernel %s: no no-device zcrx; TestGuestZcrxNoDevLoopback checks the refusal", rel)
		return
	}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &old); err != nil {
		t.Fatal(err)
	}
	const limit = 2 << 20
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: limit, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_MEMLOCK, &old)
	fits := zcrx.MaxHostArea(limit)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Capabilities are per thread: drop CAP_IPC_LOCK on this one, which Go retires when the
		// goroutine ends still locked to it.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			t.Error(err)
			return
		}
		data[0].Effective &^= 1 << unix.CAP_IPC_LOCK
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			t.Error(err)
			return
		}
		m, err := zcrx.ReadMemlock()
		if err != nil || m.IPCLock || m.Limit != limit {
			t.Errorf("memlock %+v %v, want 2 MiB without CAP_IPC_LOCK", m, err)
			return
		}
		for _, tc := range []struct {
			size int64
			ok   bool
		}{{fits, true}, {4 << 20, false}} {
			charge := zcrx.Charge(1, tc.size, true)
			if ours := m.CheckCharge(charge, true) == nil; ours != tc.ok {
				t.Errorf("%d-byte area, charge %d: our check says ok=%v, want %v", tc.size, charge, ours, tc.ok)
			}
			err := registerHostNoDev(tc.size)
			t.Logf("%d-byte area (charge %d of %d): kernel: %v", tc.size, charge, limit, err)
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, unix.ENOMEM) {
				t.Errorf("%d-byte area: the kernel said %v, want ok=%v (ENOMEM otherwise)", tc.size, err, tc.ok)
			}
		}
	}()
	<-done
}

// registerHostNoDev registers (and unregisters) a no-device ifq with a host area of size bytes on
// a ring of the bench's size, from the calling thread.
func registerHostNoDev(size int64) error {
	area, err := zcrx.HostArea(size)
	if err != nil {
		return err
	}
	defer zcrx.FreeHostArea(area)
	r, err := zcrx.NewRing(zcrx.RingEntries, zcrx.RingCQEntries, true)
	if err != nil {
		return err
	}
	defer r.Close()
	q, err := r.RegisterIfq(zcrx.IfqConfig{NoDev: true, Area: area, DmabufFD: -1})
	if err != nil {
		return err
	}
	r.Close()
	return q.Close()
}
