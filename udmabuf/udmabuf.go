// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package udmabuf allocates host memory as a real dma-buf through /dev/udmabuf: a sealed memfd is
// turned into a dma-buf (UDMABUF_CREATE), mapped shared, and every CPU access is bracketed with
// DMA_BUF_IOCTL_SYNC. It is the memory devmem RX fills and devmem TX sends from on hosts without a
// GPU. The package does not import dmabuf (dmabuf.Open imports it); *Buffer satisfies dmabuf.Mapped.
//
// Requirements: a kernel with CONFIG_UDMABUF (module "udmabuf" or built in), read-write access to
// /dev/udmabuf (root on most systems), and a buffer no larger than the module parameter
// size_limit_mb (64 MiB by default).
package udmabuf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

const (
	// DevicePath is the udmabuf misc device New allocates through.
	DevicePath = "/dev/udmabuf"
	// SizeLimitPath is the udmabuf module parameter holding the largest buffer the kernel accepts,
	// in MiB. It is writable by root at run time.
	SizeLimitPath = "/sys/module/udmabuf/parameters/size_limit_mb"
	// HugePageSize is the page size Options.Hugetlb asks for (MFD_HUGE_2MB).
	HugePageSize = 2 << 20
)

const mib = 1 << 20

// memfdName shows up in /proc/PID/maps and /proc/PID/fd, so a leaked buffer is easy to attribute.
const memfdName = "ncdevmem-udmabuf"

// Options selects how the memory behind the dma-buf is allocated.
type Options struct {
	// Hugetlb backs the buffer with 2 MiB hugetlb pages (MFD_HUGETLB|MFD_HUGE_2MB), which large
	// buffers and large rx page sizes need for physically contiguous chunks. The size must then be a
	// multiple of 2 MiB and the hugetlb pool (vm.nr_hugepages) must hold enough free pages.
	Hugetlb bool
}

// Buffer is host memory exported as a dma-buf by udmabuf and mapped into this process. It
// implements dmabuf.Mapped. A Buffer is safe for use by one goroutine at a time.
type Buffer struct {
	mem     []byte
	fd      int // the dma-buf
	memfd   int // the sealed memfd holding the pages
	hugetlb bool
	sync    func(fd int, arg *uapi.DmaBufSync) error
	arg     uapi.DmaBufSync // reused by every sync so the data path allocates nothing
}

var errClosed = errors.New("udmabuf: buffer is closed")

// New allocates size bytes of host memory as a udmabuf dma-buf and maps it read-write. size must be
// a positive multiple of the page size (of 2 MiB with o.Hugetlb) and at most the size limit (see
// SizeLimit); both are checked before anything is allocated. Errors name the cause and the fix;
// errors.Is(err, fs.ErrNotExist) reports a missing /dev/udmabuf and errors.Is(err,
// fs.ErrPermission) a denied one. On error nothing is left open or mapped. Needs read-write access
// to /dev/udmabuf.
func New(size int64, o Options) (*Buffer, error) {
	return liveSystem().new(size, o)
}

// Check runs New's up-front checks without allocating: size positive and aligned, /dev/udmabuf
// present and openable, and size within the size limit when that is readable. Callers use it to
// validate flags before touching the NIC.
func Check(size int64, o Options) error {
	return liveSystem().check(size, o)
}

// Available reports whether New can work here: nil, or the error explaining why not (no
// /dev/udmabuf because the kernel lacks CONFIG_UDMABUF or the module is not loaded, or no
// permission to open it).
func Available() error {
	return liveSystem().available()
}

// SizeLimit returns the largest buffer in bytes that the kernel's udmabuf accepts, read from
// /sys/module/udmabuf/parameters/size_limit_mb. The error wraps fs.ErrNotExist when udmabuf is not
// present.
func SizeLimit() (int64, error) {
	return liveSystem().sizeLimit()
}

// system is everything New touches outside the process, so tests can point it at a fake device,
// a fake sysfs file and fake syscalls. liveSystem returns the real one.
type system struct {
	device    string
	limitPath string
	pageSize  int64
	memfd     func(name string, flags int) (int, error)
	create    func(dev, memfd int, size int64) (int, error)
	sync      func(fd int, arg *uapi.DmaBufSync) error
}

// liveSystem is the running kernel: the real device, sysfs file and syscalls.
func liveSystem() *system {
	return &system{
		device:    DevicePath,
		limitPath: SizeLimitPath,
		pageSize:  int64(os.Getpagesize()),
		memfd:     unix.MemfdCreate,
		create:    ioctlCreate,
		sync:      ioctlSync,
	}
}

func (s *system) check(size int64, o Options) error {
	if err := s.checkSize(size, o); err != nil {
		return err
	}
	if err := s.available(); err != nil {
		return err
	}
	if limit, err := s.sizeLimit(); err == nil {
		return s.checkLimit(size, limit)
	}
	return nil
}

func (s *system) available() error {
	fd, err := s.openDevice()
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

func (s *system) openDevice() (int, error) {
	fd, err := unix.Open(s.device, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err == nil {
		return fd, nil
	}
	perr := &fs.PathError{Op: "open", Path: s.device, Err: err}
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return -1, fmt.Errorf("udmabuf: %w (the kernel has no udmabuf device: build it with CONFIG_UDMABUF=y, or load the module: modprobe udmabuf)", perr)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return -1, fmt.Errorf("udmabuf: %w (run as root, or give this user read-write access to %s)", perr, s.device)
	default:
		return -1, fmt.Errorf("udmabuf: %w", perr)
	}
}

func (s *system) sizeLimit() (int64, error) {
	b, err := os.ReadFile(s.limitPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("udmabuf: read size limit: %w (udmabuf is not present: build it with CONFIG_UDMABUF=y, or load the module: modprobe udmabuf)", err)
		}
		return 0, fmt.Errorf("udmabuf: read size limit: %w", err)
	}
	limit, err := parseSizeLimit(b)
	if err != nil {
		return 0, fmt.Errorf("udmabuf: read size limit from %s: %w", s.limitPath, err)
	}
	return limit, nil
}

// parseSizeLimit turns the contents of size_limit_mb (a decimal int and a newline) into bytes.
func parseSizeLimit(b []byte) (int64, error) {
	v := strings.TrimSpace(string(b))
	mb, err := strconv.ParseInt(v, 10, 32) // the parameter is a C int
	if err != nil {
		return 0, fmt.Errorf("size_limit_mb %q is not an integer", v)
	}
	if mb <= 0 {
		return 0, fmt.Errorf("size_limit_mb is %d, not a usable limit (set a positive one)", mb)
	}
	return mb * mib, nil
}

// checkSize rejects sizes the kernel would refuse, before anything is allocated.
func (s *system) checkSize(size int64, o Options) error {
	if size <= 0 {
		return fmt.Errorf("udmabuf: size %d must be positive", size)
	}
	if int64(int(size)) != size {
		return fmt.Errorf("udmabuf: size %d does not fit this platform's address space", size)
	}
	if o.Hugetlb {
		if size%HugePageSize != 0 {
			return fmt.Errorf("udmabuf: size %s is not a multiple of the %s huge page size (use %s, or drop hugetlb backing)",
				human(size), human(HugePageSize), human(roundUp(size, HugePageSize)))
		}
	} else if size%s.pageSize != 0 {
		return fmt.Errorf("udmabuf: size %s is not a multiple of the page size %d (use %s)",
			human(size), s.pageSize, human(roundUp(size, s.pageSize)))
	}
	return nil
}

func (s *system) checkLimit(size int64, limit int64) error {
	if size <= limit {
		return nil
	}
	mb := roundUp(size, mib) / mib
	return fmt.Errorf("udmabuf: %s is more than the kernel's udmabuf size limit of %s (raise it: echo %d > %s, or modprobe udmabuf size_limit_mb=%d, or boot with udmabuf.size_limit_mb=%d)",
		human(size), human(limit), mb, s.limitPath, mb, mb)
}

func (s *system) new(size int64, o Options) (_ *Buffer, err error) {
	if err := s.checkSize(size, o); err != nil {
		return nil, err
	}
	dev, err := s.openDevice()
	if err != nil {
		return nil, err
	}
	defer unix.Close(dev) // the dma-buf does not need the device once created
	// An unreadable limit is not fatal: the kernel still enforces it and createError explains.
	limit, limitErr := s.sizeLimit()
	if limitErr == nil {
		if err := s.checkLimit(size, limit); err != nil {
			return nil, err
		}
	}

	memfd, err := s.createMemfd(size, o.Hugetlb)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			unix.Close(memfd)
		}
	}()

	fd, err := s.create(dev, memfd, size)
	if err != nil {
		return nil, s.createError(err, size, o, limit, limitErr)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()

	mem, err := mapShared(fd, memfd, size)
	if err != nil {
		return nil, err
	}
	return &Buffer{mem: mem, fd: fd, memfd: memfd, hugetlb: o.Hugetlb, sync: s.sync}, nil
}

// createMemfd makes the memfd udmabuf wants: shmem or hugetlbfs, sealed against shrinking (the
// kernel pins the pages and refuses a memfd that could lose them), never sealed against writes
// (udmabuf refuses F_SEAL_WRITE), and size bytes long.
func (s *system) createMemfd(size int64, hugetlb bool) (_ int, err error) {
	flags := unix.MFD_ALLOW_SEALING | unix.MFD_CLOEXEC
	if hugetlb {
		flags |= unix.MFD_HUGETLB | unix.MFD_HUGE_2MB
	}
	fd, err := s.memfd(memfdName, flags)
	if errors.Is(err, unix.EACCES) {
		// vm.memfd_noexec=2 refuses memfds that could become executable: ask for a
		// non-executable one (MFD_NOEXEC_SEAL, Linux 6.3+), which udmabuf accepts alike.
		fd, err = s.memfd(memfdName, flags|unix.MFD_NOEXEC_SEAL)
	}
	if err != nil {
		switch {
		case hugetlb && errors.Is(err, unix.EPERM):
			return -1, fmt.Errorf("udmabuf: create hugetlb memfd: %w (hugetlb memory needs CAP_IPC_LOCK or membership of the vm.hugetlb_shm_group group: run as root)", err)
		case hugetlb && errors.Is(err, unix.EINVAL):
			return -1, fmt.Errorf("udmabuf: create hugetlb memfd: %w (the kernel has no 2 MiB hugetlbfs pages: drop hugetlb backing)", err)
		default:
			return -1, fmt.Errorf("udmabuf: create memfd: %w", err)
		}
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK); err != nil {
		return -1, fmt.Errorf("udmabuf: seal memfd against shrinking: %w", err)
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		return -1, fmt.Errorf("udmabuf: size memfd to %s: %w", human(size), err)
	}
	return fd, nil
}

// createError explains a failed UDMABUF_CREATE in terms of what the caller can change.
func (s *system) createError(err error, size int64, o Options, limit int64, limitErr error) error {
	prefix := fmt.Sprintf("udmabuf: create %s dma-buf: ioctl UDMABUF_CREATE", human(size))
	switch {
	case errors.Is(err, unix.EINVAL):
		if limitErr != nil {
			return fmt.Errorf("%s: %w (the size is probably over the udmabuf size_limit_mb, which could not be read: %v)", prefix, err, limitErr)
		}
		return fmt.Errorf("%s: %w (udmabuf refuses sizes over size_limit_mb, unaligned sizes and memfds not sealed against shrinking; size_limit_mb read %s before the call, so check whether it was lowered since)", prefix, err, human(limit))
	case errors.Is(err, unix.ENOMEM):
		if o.Hugetlb {
			return fmt.Errorf("%s: %w (the hugetlb pool has fewer than %d free %s pages: check HugePages_Free in /proc/meminfo and raise vm.nr_hugepages)", prefix, err, size/HugePageSize, human(HugePageSize))
		}
		return fmt.Errorf("%s: %w (not enough memory to pin %s: free memory or use a smaller buffer)", prefix, err, human(size))
	case errors.Is(err, unix.EBADFD):
		return fmt.Errorf("%s: %w (the memfd is not shmem or hugetlbfs backed, which udmabuf requires)", prefix, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%s: %w (run as root)", prefix, err)
	case errors.Is(err, unix.ENOTTY):
		return fmt.Errorf("%s: %w (%s is not the udmabuf device)", prefix, err, s.device)
	default:
		return fmt.Errorf("%s: %w", prefix, err)
	}
}

// mapShared maps the dma-buf. udmabuf's pages are the memfd's pages, so if the dma-buf cannot be
// mapped (an exporter without mmap) the memfd mapping is the same memory; the syncs still go to the
// dma-buf. fd < 0 maps the memfd directly (the plain-memory path used by tests and benchmarks).
func mapShared(fd, memfd int, size int64) ([]byte, error) {
	const prot = unix.PROT_READ | unix.PROT_WRITE
	if fd >= 0 {
		mem, err := unix.Mmap(fd, 0, int(size), prot, unix.MAP_SHARED)
		if err == nil {
			return mem, nil
		}
	}
	mem, err := unix.Mmap(memfd, 0, int(size), prot, unix.MAP_SHARED)
	if err != nil {
		if errors.Is(err, unix.ENOMEM) {
			return nil, fmt.Errorf("udmabuf: map %s: %w (address space or vm.max_map_count exhausted)", human(size), err)
		}
		return nil, fmt.Errorf("udmabuf: map %s: %w", human(size), err)
	}
	return mem, nil
}

// FD returns the dma-buf file descriptor to pass to bind-rx/bind-tx, or -1 after Close.
func (b *Buffer) FD() int { return b.fd }

// Size returns the buffer's length in bytes.
func (b *Buffer) Size() int64 { return int64(len(b.mem)) }

// Kind returns "udmabuf".
func (b *Buffer) Kind() string { return "udmabuf" }

// Hugetlb reports whether the buffer is backed by 2 MiB hugetlb pages.
func (b *Buffer) Hugetlb() bool { return b.hugetlb }

// Bytes returns the mapped memory, valid until Close. Bracket access with BeginCPU and EndCPU.
func (b *Buffer) Bytes() []byte { return b.mem }

// BeginCPU starts CPU access to Bytes (DMA_BUF_IOCTL_SYNC START): for reading, or for reading and
// writing when write is true.
func (b *Buffer) BeginCPU(write bool) error {
	return b.syncCPU(uapi.DMA_BUF_SYNC_START|direction(write), "start")
}

// EndCPU ends the CPU access BeginCPU started; write must match.
func (b *Buffer) EndCPU(write bool) error {
	return b.syncCPU(uapi.DMA_BUF_SYNC_END|direction(write), "end")
}

func direction(write bool) uint64 {
	if write {
		return uapi.DMA_BUF_SYNC_RW
	}
	return uapi.DMA_BUF_SYNC_READ
}

// ReadAt copies len(p) bytes at off out of the buffer, inside a read sync. Like io.ReaderAt it
// returns io.EOF when fewer than len(p) bytes remain. It allocates nothing.
func (b *Buffer) ReadAt(p []byte, off int64) (int, error) {
	if b.mem == nil {
		return 0, errClosed
	}
	if off < 0 || off > int64(len(b.mem)) {
		return 0, fmt.Errorf("udmabuf: read at %d outside [0,%d]", off, len(b.mem))
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := b.syncCPU(uapi.DMA_BUF_SYNC_START|uapi.DMA_BUF_SYNC_READ, "start"); err != nil {
		return 0, err
	}
	n := copy(p, b.mem[off:])
	if err := b.syncCPU(uapi.DMA_BUF_SYNC_END|uapi.DMA_BUF_SYNC_READ, "end"); err != nil {
		return n, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt copies p into the buffer at off, inside a write sync. Writing past the end is an error
// and writes nothing. It allocates nothing.
func (b *Buffer) WriteAt(p []byte, off int64) (int, error) {
	if b.mem == nil {
		return 0, errClosed
	}
	if off < 0 || off > int64(len(b.mem)) || int64(len(p)) > int64(len(b.mem))-off {
		return 0, fmt.Errorf("udmabuf: write of %d bytes at %d outside [0,%d]", len(p), off, len(b.mem))
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := b.syncCPU(uapi.DMA_BUF_SYNC_START|uapi.DMA_BUF_SYNC_WRITE, "start"); err != nil {
		return 0, err
	}
	n := copy(b.mem[off:], p)
	if err := b.syncCPU(uapi.DMA_BUF_SYNC_END|uapi.DMA_BUF_SYNC_WRITE, "end"); err != nil {
		return n, err
	}
	return n, nil
}

func (b *Buffer) syncCPU(flags uint64, what string) error {
	if b.mem == nil {
		return errClosed
	}
	if b.fd < 0 || b.sync == nil {
		return nil // plain memfd memory: nothing to synchronise with
	}
	b.arg.Flags = flags
	if err := b.sync(b.fd, &b.arg); err != nil {
		return fmt.Errorf("udmabuf: DMA_BUF_IOCTL_SYNC %s %s: %w", what, syncDirection(flags), err)
	}
	return nil
}

func syncDirection(flags uint64) string {
	switch flags & uapi.DMA_BUF_SYNC_RW {
	case uapi.DMA_BUF_SYNC_READ:
		return "read"
	case uapi.DMA_BUF_SYNC_WRITE:
		return "write"
	default:
		return "read-write"
	}
}

// Close unmaps the memory and closes the dma-buf and the memfd. The pages are freed once every
// other holder of the dma-buf (a bound NIC queue, a duplicated fd) has let go. Close is idempotent.
func (b *Buffer) Close() error {
	var errs []error
	if b.mem != nil {
		if err := unix.Munmap(b.mem); err != nil {
			errs = append(errs, fmt.Errorf("udmabuf: unmap: %w", err))
		}
		b.mem = nil
	}
	for _, fd := range []*int{&b.fd, &b.memfd} {
		if *fd >= 0 {
			if err := unix.Close(*fd); err != nil {
				errs = append(errs, fmt.Errorf("udmabuf: close: %w", err))
			}
			*fd = -1
		}
	}
	return errors.Join(errs...)
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// human prints a byte count the way the kernel parameters and the fixes speak about it.
func human(n int64) string {
	switch {
	case n >= mib && n%mib == 0:
		return strconv.FormatInt(n/mib, 10) + " MiB"
	case n >= 1024 && n%1024 == 0:
		return strconv.FormatInt(n/1024, 10) + " KiB"
	default:
		return strconv.FormatInt(n, 10) + " bytes"
	}
}
