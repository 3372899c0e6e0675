// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package udmabuf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// memfdMappings counts mappings of our memfds, to prove failures and Close leave none.
func memfdMappings(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), memfdName)
}

// fakeKernel is a system whose device is a plain file and whose UDMABUF_CREATE applies the
// kernel's checks (shmem or hugetlbfs memfd, SHRINK sealed, WRITE not sealed, page aligned, within
// the limit) and returns a duplicate of the memfd as the "dma-buf". syncs are recorded.
type fakeKernel struct {
	sys       system
	limitMB   int
	createErr error
	syncErr   error
	creates   int
	syncs     []uint64
}

func newFakeKernel(t testing.TB, limitMB int) *fakeKernel {
	t.Helper()
	dir := t.TempDir()
	dev := filepath.Join(dir, "udmabuf")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	limit := filepath.Join(dir, "size_limit_mb")
	if err := os.WriteFile(limit, []byte(strconv.Itoa(limitMB)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fk := &fakeKernel{limitMB: limitMB, syncs: make([]uint64, 0, 64)}
	fk.sys = system{device: dev, limitPath: limit, pageSize: int64(os.Getpagesize()), memfd: unix.MemfdCreate}
	fk.sys.create = func(dev, memfd int, size int64) (int, error) {
		fk.creates++
		if fk.createErr != nil {
			return -1, fk.createErr
		}
		var st unix.Statfs_t
		if err := unix.Fstatfs(memfd, &st); err != nil {
			return -1, unix.EBADFD
		}
		if st.Type != unix.TMPFS_MAGIC && st.Type != unix.HUGETLBFS_MAGIC {
			return -1, unix.EBADFD
		}
		seals, err := unix.FcntlInt(uintptr(memfd), unix.F_GET_SEALS, 0)
		if err != nil {
			return -1, unix.EBADFD
		}
		if seals&unix.F_SEAL_SHRINK == 0 || seals&unix.F_SEAL_WRITE != 0 {
			return -1, unix.EINVAL
		}
		if size%int64(os.Getpagesize()) != 0 || size > int64(fk.limitMB)*mib {
			return -1, unix.EINVAL
		}
		return unix.FcntlInt(uintptr(memfd), unix.F_DUPFD_CLOEXEC, 0)
	}
	fk.sys.sync = func(fd int, arg *uapi.DmaBufSync) error {
		fk.syncs = append(fk.syncs, arg.Flags)
		return fk.syncErr
	}
	return fk
}

func TestParseSizeLimit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		err  string
	}{
		{"64\n", 64 << 20, ""},
		{"2048", 2048 << 20, ""},
		{" 1 \n", 1 << 20, ""},
		{"0\n", 0, "size_limit_mb is 0, not a usable limit"},
		{"-1\n", 0, "size_limit_mb is -1, not a usable limit"},
		{"", 0, "not an integer"},
		{"64MB", 0, "not an integer"},
		{"99999999999", 0, "not an integer"},
	} {
		got, err := parseSizeLimit([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseSizeLimit(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseSizeLimit(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseSizeLimit(f *testing.F) {
	for _, s := range []string{"64\n", "0", "-5", "2147483647\n", "x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseSizeLimit(b)
		if err == nil && (v <= 0 || v%mib != 0) {
			t.Fatalf("parseSizeLimit(%q) = %d without error", b, v)
		}
	})
}

func TestSizeLimitFromSysfs(t *testing.T) {
	fk := newFakeKernel(t, 64)
	got, err := fk.sys.sizeLimit()
	if err != nil || got != 64<<20 {
		t.Fatalf("sizeLimit() = %d, %v; want 64 MiB", got, err)
	}
	fk.sys.limitPath = filepath.Join(t.TempDir(), "missing")
	_, err = fk.sys.sizeLimit()
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "modprobe udmabuf") {
		t.Fatalf("sizeLimit() with no sysfs file = %v; want fs.ErrNotExist with modprobe advice", err)
	}
}

func TestCheckSize(t *testing.T) {
	s := system{pageSize: 4096}
	for _, tt := range []struct {
		size int64
		huge bool
		err  string
	}{
		{4096, false, ""},
		{64 << 20, false, ""},
		{2 << 20, true, ""},
		{0, false, "must be positive"},
		{-4096, false, "must be positive"},
		{5000, false, "size 5000 bytes is not a multiple of the page size 4096 (use 8 KiB)"},
		{4096, true, "size 4 KiB is not a multiple of the 2 MiB huge page size (use 2 MiB, or drop hugetlb backing)"},
		{3 << 20, true, "use 4 MiB"},
	} {
		err := s.checkSize(tt.size, Options{Hugetlb: tt.huge})
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("checkSize(%d, hugetlb %v) = %v; want %q", tt.size, tt.huge, err, tt.err)
		}
	}
}

// TestSizeLimitRefusedBeforeAllocating: a buffer over size_limit_mb is refused with the fix, and
// nothing is created or left open.
func TestSizeLimitRefusedBeforeAllocating(t *testing.T) {
	fk := newFakeKernel(t, 64)
	fds := testnet.OpenFDs(t)
	_, err := fk.sys.new(128<<20, Options{})
	if err == nil {
		t.Fatal("128 MiB with a 64 MiB limit succeeded")
	}
	want := "udmabuf: 128 MiB is more than the kernel's udmabuf size limit of 64 MiB (raise it: echo 128 > " +
		fk.sys.limitPath + ", or modprobe udmabuf size_limit_mb=128, or boot with udmabuf.size_limit_mb=128)"
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
	if fk.creates != 0 {
		t.Errorf("UDMABUF_CREATE issued %d times for a refused size", fk.creates)
	}
	if got := testnet.OpenFDs(t); got != fds {
		t.Errorf("open fds %d -> %d", fds, got)
	}
	// Exactly at the limit is accepted (the kernel refuses only pagecount > limit).
	b, err := fk.sys.new(64<<20, Options{})
	if err != nil {
		t.Fatalf("64 MiB with a 64 MiB limit: %v", err)
	}
	b.Close()
}

func TestUnalignedRefusedBeforeOpening(t *testing.T) {
	fk := newFakeKernel(t, 64)
	fk.sys.device = filepath.Join(t.TempDir(), "nonexistent")
	_, err := fk.sys.new(4097, Options{})
	if err == nil || !strings.Contains(err.Error(), "not a multiple of the page size") {
		t.Fatalf("new(4097) = %v; want the alignment error first", err)
	}
}

func TestMissingDeviceAdvice(t *testing.T) {
	s := *liveSystem()
	s.device = filepath.Join(t.TempDir(), "udmabuf")
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v does not wrap fs.ErrNotExist", what, err)
		}
		for _, w := range []string{"open " + s.device, "CONFIG_UDMABUF=y", "modprobe udmabuf"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v lacks %q", what, err, w)
			}
		}
	}
	check("available", s.available())
	fds := testnet.OpenFDs(t)
	_, err := s.new(1<<20, Options{})
	check("new", err)
	if got := testnet.OpenFDs(t); got != fds {
		t.Errorf("open fds %d -> %d", fds, got)
	}
}

// TestHostWithoutUdmabuf checks the real entry points on a host with no /dev/udmabuf (this
// machine's kernel lacks CONFIG_UDMABUF): the error names that exact path and the fix.
func TestHostWithoutUdmabuf(t *testing.T) {
	if _, err := os.Stat(DevicePath); err == nil {
		t.Skipf("%s exists here; TestRealUdmabuf covers this host", DevicePath)
	}
	err := Available()
	want := "udmabuf: open /dev/udmabuf: no such file or directory (the kernel has no udmabuf device: build it with CONFIG_UDMABUF=y, or load the module: modprobe udmabuf)"
	if err == nil || err.Error() != want {
		t.Fatalf("Available() = %v\nwant %s", err, want)
	}
	fds := testnet.OpenFDs(t)
	b, err := New(1<<20, Options{})
	if b != nil || err == nil || err.Error() != want {
		t.Fatalf("New() = %v, %v; want %s", b, err, want)
	}
	if got := testnet.OpenFDs(t); got != fds {
		t.Errorf("open fds %d -> %d", fds, got)
	}
}

func TestMemfdSealed(t *testing.T) {
	fd, err := liveSystem().createMemfd(1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	checkMemfd(t, fd, 1<<20, unix.TMPFS_MAGIC)
}

func checkMemfd(t *testing.T, fd int, size int64, magic int64) {
	t.Helper()
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		t.Fatalf("F_GET_SEALS: %v", err)
	}
	if seals&unix.F_SEAL_SHRINK == 0 {
		t.Errorf("seals %#x lack F_SEAL_SHRINK", seals)
	}
	if seals&(unix.F_SEAL_WRITE|unix.F_SEAL_FUTURE_WRITE|unix.F_SEAL_SEAL) != 0 {
		t.Errorf("seals %#x include a seal udmabuf refuses or that blocks later sealing", seals)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size != size {
		t.Errorf("fstat size %d, %v; want %d", st.Size, err, size)
	}
	if err := unix.Ftruncate(fd, 0); !errors.Is(err, unix.EPERM) {
		t.Errorf("shrinking a sealed memfd: %v, want EPERM", err)
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("memfd flags %#x, %v: not close-on-exec", flags, err)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil || sfs.Type != magic {
		t.Errorf("memfd filesystem %#x, %v; want %#x", sfs.Type, err, magic)
	}
}

func TestMemfdHugetlbSealed(t *testing.T) {
	fd, err := liveSystem().createMemfd(HugePageSize, true)
	if err != nil {
		// Creation reserves nothing, so only a kernel without hugetlbfs or a privilege check fails.
		if !strings.Contains(err.Error(), "(") {
			t.Fatalf("hugetlb memfd error without advice: %v", err)
		}
		t.Skipf("hugetlb memfd unavailable here: %v", err)
	}
	defer unix.Close(fd)
	checkMemfd(t, fd, HugePageSize, unix.HUGETLBFS_MAGIC)
}

func TestFakeKernelWriteRead(t *testing.T) {
	fk := newFakeKernel(t, 64)
	fds, maps := testnet.OpenFDs(t), memfdMappings(t)
	b, err := fk.sys.new(1<<20, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b.FD() < 0 || b.Size() != 1<<20 || b.Kind() != "udmabuf" || b.Hugetlb() {
		t.Errorf("FD %d Size %d Kind %q Hugetlb %v", b.FD(), b.Size(), b.Kind(), b.Hugetlb())
	}
	checkMemfd(t, b.memfd, 1<<20, unix.TMPFS_MAGIC)

	msg := []byte("devmem payload")
	if n, err := b.WriteAt(msg, 1<<20-int64(len(msg))); n != len(msg) || err != nil {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	p := make([]byte, len(msg))
	if n, err := b.ReadAt(p, 1<<20-int64(len(msg))); n != len(msg) || err != nil || !bytes.Equal(p, msg) {
		t.Fatalf("ReadAt = %d, %q, %v", n, p, err)
	}
	// The memory is the memfd's: what the NIC would see through the dma-buf.
	q := make([]byte, len(msg))
	if _, err := unix.Pread(b.memfd, q, 1<<20-int64(len(msg))); err != nil || !bytes.Equal(q, msg) {
		t.Fatalf("memfd holds %q, %v", q, err)
	}
	if err := b.BeginCPU(true); err != nil {
		t.Fatal(err)
	}
	copy(b.Bytes(), "in place")
	if err := b.EndCPU(true); err != nil {
		t.Fatal(err)
	}
	const (
		start, end = uapi.DMA_BUF_SYNC_START, uapi.DMA_BUF_SYNC_END
		r, w, rw   = uapi.DMA_BUF_SYNC_READ, uapi.DMA_BUF_SYNC_WRITE, uapi.DMA_BUF_SYNC_RW
	)
	want := []uint64{start | w, end | w, start | r, end | r, start | rw, end | rw}
	if !equalU64(fk.syncs, want) {
		t.Errorf("syncs %v, want %v", fk.syncs, want)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if b.FD() != -1 {
		t.Errorf("FD after Close = %d", b.FD())
	}
	if _, err := b.ReadAt(p, 0); !errors.Is(err, errClosed) {
		t.Errorf("ReadAt after Close: %v", err)
	}
	if got := testnet.OpenFDs(t); got != fds {
		t.Errorf("open fds %d -> %d", fds, got)
	}
	if got := memfdMappings(t); got != maps {
		t.Errorf("memfd mappings %d -> %d", maps, got)
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFakeKernelCreateErrors(t *testing.T) {
	for _, tt := range []struct {
		errno unix.Errno
		huge  bool
		want  string
	}{
		{unix.EINVAL, false, "invalid argument (udmabuf refuses sizes over size_limit_mb, unaligned sizes and memfds not sealed against shrinking; size_limit_mb read 64 MiB before the call, so check whether it was lowered since)"},
		{unix.ENOMEM, false, "cannot allocate memory (not enough memory to pin 2 MiB: free memory or use a smaller buffer)"},
		{unix.ENOMEM, true, "cannot allocate memory (the hugetlb pool has fewer than 1 free 2 MiB pages: check HugePages_Free in /proc/meminfo and raise vm.nr_hugepages)"},
		{unix.EBADFD, false, "(the memfd is not shmem or hugetlbfs backed, which udmabuf requires)"},
		{unix.EPERM, false, "operation not permitted (run as root)"},
		{unix.ENOTTY, false, "is not the udmabuf device)"},
	} {
		t.Run(fmt.Sprintf("%v/huge=%v", tt.errno, tt.huge), func(t *testing.T) {
			fk := newFakeKernel(t, 64)
			fk.createErr = tt.errno
			size := int64(1 << 20)
			if tt.huge || tt.errno == unix.ENOMEM {
				size = HugePageSize
			}
			if tt.huge {
				if fd, err := liveSystem().createMemfd(HugePageSize, true); err != nil {
					t.Skipf("hugetlb memfd unavailable here: %v", err)
				} else {
					unix.Close(fd)
				}
			}
			fds, maps := testnet.OpenFDs(t), memfdMappings(t)
			b, err := fk.sys.new(size, Options{Hugetlb: tt.huge})
			if b != nil || err == nil {
				t.Fatalf("%v: new succeeded", tt.errno)
			}
			if !errors.Is(err, tt.errno) || !strings.Contains(err.Error(), "ioctl UDMABUF_CREATE: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v: error %q\nwant it to wrap the errno and contain %q", tt.errno, err, tt.want)
			}
			if got := testnet.OpenFDs(t); got != fds {
				t.Errorf("%v: open fds %d -> %d", tt.errno, fds, got)
			}
			if got := memfdMappings(t); got != maps {
				t.Errorf("%v: memfd mappings %d -> %d", tt.errno, maps, got)
			}
		})
	}
}

func TestUnknownLimitStillExplainsEINVAL(t *testing.T) {
	fk := newFakeKernel(t, 64)
	fk.sys.limitPath = filepath.Join(t.TempDir(), "missing")
	fk.createErr = unix.EINVAL
	_, err := fk.sys.new(1<<20, Options{})
	if err == nil || !strings.Contains(err.Error(), "probably over the udmabuf size_limit_mb, which could not be read") {
		t.Fatalf("error %v", err)
	}
}

func TestBoundsAndEOF(t *testing.T) {
	fk := newFakeKernel(t, 64)
	b, err := fk.sys.new(8192, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.WriteAt(make([]byte, 2), 8191); err == nil {
		t.Error("write past the end succeeded")
	}
	if _, err := b.WriteAt(nil, -1); err == nil {
		t.Error("write at -1 succeeded")
	}
	if _, err := b.ReadAt(make([]byte, 1), 8193); err == nil {
		t.Error("read past the end succeeded")
	}
	if n, err := b.ReadAt(make([]byte, 10), 8190); n != 2 || err != io.EOF {
		t.Errorf("short read = %d, %v; want 2, EOF", n, err)
	}
	fk.syncErr = unix.EIO
	if _, err := b.ReadAt(make([]byte, 1), 0); !errors.Is(err, unix.EIO) || !strings.Contains(err.Error(), "DMA_BUF_IOCTL_SYNC start read") {
		t.Errorf("ReadAt with a failing sync: %v", err)
	}
}

// TestRealUdmabuf runs against the kernel's /dev/udmabuf where there is one (the guest kernels);
// NCDEVMEM_REQUIRE_UDMABUF=1 turns a missing device into a failure so the guest tier cannot skip.
func TestRealUdmabuf(t *testing.T) {
	requireUdmabuf(t)
	const size = 4 << 20
	fds, maps := testnet.OpenFDs(t), memfdMappings(t)
	b, err := New(size, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkMemfd(t, b.memfd, size, unix.TMPFS_MAGIC)
	if flags, err := unix.FcntlInt(uintptr(b.FD()), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("dma-buf fd flags %#x, %v: not close-on-exec", flags, err)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(b.FD(), &sfs); err != nil || sfs.Type != unix.DMA_BUF_MAGIC {
		t.Errorf("FD() filesystem %#x, %v: not a dma-buf", sfs.Type, err)
	}
	pat := make([]byte, size)
	for i := range pat {
		pat[i] = byte(i*7 + i>>12)
	}
	if _, err := b.WriteAt(pat, 0); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, size)
	if _, err := b.ReadAt(got, 0); err != nil || !bytes.Equal(got, pat) {
		t.Fatalf("read back through the dma-buf mapping differs (err %v)", err)
	}
	if _, err := unix.Pread(b.memfd, got[:4096], size-4096); err != nil || !bytes.Equal(got[:4096], pat[size-4096:]) {
		t.Fatalf("memfd and dma-buf disagree (err %v)", err)
	}
	q := got[:4096]
	if n := testing.AllocsPerRun(50, func() {
		b.WriteAt(q, 8192)
		b.ReadAt(q, 8192)
	}); n != 0 {
		t.Errorf("ReadAt+WriteAt with the real DMA_BUF_IOCTL_SYNC allocate %.1f times per pair", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	limit, err := SizeLimit()
	if err != nil {
		t.Fatalf("udmabuf is here but its size limit is not readable: %v", err)
	}
	_, err = New(limit+HugePageSize, Options{})
	t.Logf("over the %s limit: %v", human(limit), err)
	if err == nil || !strings.Contains(err.Error(), "size_limit_mb") {
		t.Errorf("New over the limit: %v", err)
	}
	// Lie about the limit so the request reaches the kernel: its EINVAL must come back explained.
	s := *liveSystem()
	s.limitPath = filepath.Join(t.TempDir(), "size_limit_mb")
	if err := os.WriteFile(s.limitPath, []byte(strconv.FormatInt(2*limit/mib, 10)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = s.new(limit+HugePageSize, Options{})
	t.Logf("kernel refusal: %v", err)
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "ioctl UDMABUF_CREATE: invalid argument (") {
		t.Errorf("kernel refusal over the limit: %v", err)
	}
	if got := testnet.OpenFDs(t); got != fds {
		t.Errorf("open fds %d -> %d", fds, got)
	}
	if got := memfdMappings(t); got != maps {
		t.Errorf("memfd mappings %d -> %d", maps, got)
	}
}

func TestCheck(t *testing.T) {
	fk := newFakeKernel(t, 64)
	fds := testnet.OpenFDs(t)
	if err := fk.sys.check(64<<20, Options{}); err != nil {
		t.Errorf("check(64 MiB): %v", err)
	}
	if err := fk.sys.check(65<<20, Options{}); err == nil || !strings.Contains(err.Error(), "size limit of 64 MiB") {
		t.Errorf("check(65 MiB): %v", err)
	}
	if err := fk.sys.check(4097, Options{}); err == nil || !strings.Contains(err.Error(), "page size") {
		t.Errorf("check(4097): %v", err)
	}
	fk.sys.device = filepath.Join(t.TempDir(), "none")
	if err := fk.sys.check(4096, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("check without a device: %v", err)
	}
	if fk.creates != 0 {
		t.Errorf("check created %d buffers", fk.creates)
	}
	if got := testnet.OpenFDs(t); got != fds {
		t.Errorf("open fds %d -> %d", fds, got)
	}
}

// requireUdmabuf skips t where the kernel has no usable /dev/udmabuf, and fails it instead under
// NCDEVMEM_REQUIRE_UDMABUF=1 (the guest tier), so a tier that must run it cannot skip.
func requireUdmabuf(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("NCDEVMEM_REQUIRE_UDMABUF") == "1" {
			t.Fatalf("NCDEVMEM_REQUIRE_UDMABUF=1 but: %v", err)
		}
		t.Skipf("no usable udmabuf here: %v", err)
	}
}

// TestRealUdmabufHugetlb needs free 2 MiB pages (the guest boots with hugepages=N); under
// NCDEVMEM_REQUIRE_UDMABUF=1 their absence is a failure, like the device's.
func TestRealUdmabufHugetlb(t *testing.T) {
	requireUdmabuf(t)
	free := hugePagesFree(t)
	if free < 2 {
		msg := fmt.Sprintf("HugePages_Free is %d; boot with hugepages=N or set vm.nr_hugepages to run this", free)
		if os.Getenv("NCDEVMEM_REQUIRE_UDMABUF") == "1" {
			t.Fatal("NCDEVMEM_REQUIRE_UDMABUF=1 but " + msg)
		}
		t.Skip(msg)
	}
	fds, maps := testnet.OpenFDs(t), memfdMappings(t)
	b, err := New(2*HugePageSize, Options{Hugetlb: true})
	if err != nil {
		t.Fatal(err)
	}
	checkMemfd(t, b.memfd, 2*HugePageSize, unix.HUGETLBFS_MAGIC)
	if !b.Hugetlb() {
		t.Error("Hugetlb() false")
	}
	pat := []byte("across the huge page boundary")
	off := int64(HugePageSize - 10)
	if _, err := b.WriteAt(pat, off); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(pat))
	if _, err := b.ReadAt(got, off); err != nil || !bytes.Equal(got, pat) {
		t.Fatalf("read back %q, %v", got, err)
	}
	b.Close()
	// More pages than the pool holds: the kernel's refusal comes back with the hugetlb advice.
	_, err = New(int64(free+1)*HugePageSize, Options{Hugetlb: true})
	t.Logf("%d huge pages from a pool of %d: %v", free+1, free, err)
	if err == nil || !strings.Contains(err.Error(), "vm.nr_hugepages") {
		t.Errorf("hugetlb buffer larger than the pool: %v", err)
	}
	if got := testnet.OpenFDs(t); got != fds {
		t.Errorf("open fds %d -> %d", fds, got)
	}
	if got := memfdMappings(t); got != maps {
		t.Errorf("memfd mappings %d -> %d", maps, got)
	}
}

func hugePagesFree(t testing.TB) int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "HugePages_Free:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// TestMemfdNoexecEnforced: where vm.memfd_noexec=2 makes memfd_create refuse memfds that could
// become executable (EACCES, Linux 6.3 to 6.5), New asks for MFD_NOEXEC_SEAL and carries on.
func TestMemfdNoexecEnforced(t *testing.T) {
	fk := newFakeKernel(t, 64)
	var calls []int
	fk.sys.memfd = func(name string, flags int) (int, error) {
		calls = append(calls, flags)
		if flags&unix.MFD_NOEXEC_SEAL == 0 {
			return -1, unix.EACCES
		}
		return unix.MemfdCreate(name, flags)
	}
	b, err := fk.sys.new(1<<20, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(calls) != 2 || calls[1] != calls[0]|unix.MFD_NOEXEC_SEAL {
		t.Errorf("memfd_create flags %#x, want a retry with MFD_NOEXEC_SEAL", calls)
	}
	checkMemfd(t, b.memfd, 1<<20, unix.TMPFS_MAGIC)
	if _, err := b.WriteAt([]byte("x"), 0); err != nil {
		t.Fatal(err)
	}
}
