// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package zcrx

import (
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

const pageSize = 4096

// Area limits this tool enforces before asking the kernel (the kernel's own: page-aligned address
// and length, at most 2^48 bytes, pinned pages charged to RLIMIT_MEMLOCK without CAP_IPC_LOCK).
const (
	MinAreaSize = 64 << 10
	// MaxAreaSize keeps the refill ring able to hold a return for every buffer of the area even
	// with several completions per buffer: IO_RQ_MAX_ENTRIES (32768) 4 KiB buffers.
	MaxAreaSize = uapi.IO_RQ_MAX_ENTRIES * pageSize
)

// IfqConfig describes one zcrx interface queue.
type IfqConfig struct {
	Ifname  string // for messages
	Ifindex int
	Queue   uint32
	// NoDev registers without a NIC (ZCRX_REG_NODEV, Linux 7.x): the kernel copies every byte into
	// the area, which exercises RECV_ZC, completions and the refill ring on any socket.
	NoDev bool
	// Area is the CPU view of the area: the host memory registered (page-aligned, from Mmap), or
	// the mapping of the dma-buf DmabufFD. Completions are validated from it.
	Area []byte
	// DmabufFD >= 0 registers the dma-buf as the area (IORING_ZCRX_AREA_DMABUF); -1 registers Area.
	DmabufFD int
	// RqEntries sizes the refill ring (0: four per area buffer, at most IO_RQ_MAX_ENTRIES).
	RqEntries uint32
	// CopyStats asks the kernel to count copy fallbacks in the refill region (Linux 7.x).
	CopyStats bool
}

// CheckArea refuses an area size this tool or the kernel would not take, with the fix.
func CheckArea(size int64) error {
	switch {
	case size%pageSize != 0:
		return fmt.Errorf("zcrx area of %d bytes: not a multiple of the %d-byte page (round --zcrx-area-size)", size, pageSize)
	case size < MinAreaSize:
		return fmt.Errorf("zcrx area of %d bytes: below the %d KiB minimum (raise --zcrx-area-size)", size, MinAreaSize>>10)
	case size > MaxAreaSize:
		return fmt.Errorf("zcrx area of %d MiB: above the %d MiB limit (the refill ring holds at most %d entries; lower --zcrx-area-size)", size>>20, MaxAreaSize>>20, uapi.IO_RQ_MAX_ENTRIES)
	}
	return nil
}

// Ifq is a registered zcrx interface queue: its id for RECV_ZC, its area, and the refill ring.
type Ifq struct {
	ID      uint32
	Queue   uint32
	BufLen  uint32 // the kernel's buffer (niov) size
	token   uint64
	area    []byte
	region  []byte
	rqHead  *uint32
	rqTail  *uint32
	rqes    unsafe.Pointer
	rqMask  uint32
	entries uint32
	local   uint32 // our tail, published in batches
	stats   *uapi.ZcrxStats
	// noDev: the kernel consumes the refill ring only when told (ZCRX_CTRL_FLUSH_RQ), as no page
	// pool ever asks for buffers.
	noDev bool
	ctrl  uapi.ZcrxCtrl
}

// RegisterIfq registers a zcrx interface queue on r (IORING_REGISTER_ZCRX_IFQ): the kernel pins
// or maps the area, opens the queue's memory provider and restarts the queue. Needs
// CAP_NET_ADMIN. On failure nothing stays registered.
func (r *Ring) RegisterIfq(cfg IfqConfig) (_ *Ifq, err error) {
	if len(cfg.Area) == 0 || len(cfg.Area)%pageSize != 0 {
		return nil, fmt.Errorf("zcrx: area of %d bytes is not a whole number of pages", len(cfg.Area))
	}
	q := &Ifq{Queue: cfg.Queue, area: cfg.Area}
	q.entries = cfg.RqEntries
	if q.entries == 0 {
		q.entries = rqEntriesFor(int64(len(cfg.Area)))
	}
	q.entries = 1 << bits.Len32(q.entries-1) // the kernel rounds up too; know the real size
	statsOff := uint64(pageSize) + uint64(q.entries)*uapi.SizeofIoUringZcrxRqe
	size := uint64(regionBytes(q.entries))
	if q.region, err = unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE); err != nil {
		return nil, fmt.Errorf("zcrx: refill ring memory (%d bytes): %w", size, err)
	}
	defer func() {
		if err != nil {
			unix.Munmap(q.region)
		}
	}()
	rd := uapi.IoUringRegionDesc{UserAddr: uint64(uintptr(unsafe.Pointer(&q.region[0]))), Size: size, Flags: uapi.IORING_MEM_REGION_TYPE_USER}
	area := uapi.IoUringZcrxAreaReg{Len: uint64(len(cfg.Area))}
	if cfg.DmabufFD >= 0 {
		area.Flags = uapi.IORING_ZCRX_AREA_DMABUF
		area.DmabufFd = uint32(cfg.DmabufFD)
	} else {
		area.Addr = uint64(uintptr(unsafe.Pointer(&cfg.Area[0])))
	}
	reg := uapi.IoUringZcrxIfqReg{
		IfIdx: uint32(cfg.Ifindex), IfRxq: cfg.Queue, RqEntries: q.entries,
		AreaPtr: uint64(uintptr(unsafe.Pointer(&area))), RegionPtr: uint64(uintptr(unsafe.Pointer(&rd))),
	}
	if cfg.NoDev {
		reg.Flags = uapi.ZCRX_REG_NODEV
		reg.IfIdx, reg.IfRxq = 0, 0
	}
	var ed uapi.ZcrxEventDesc
	if cfg.CopyStats {
		ed.Flags = uapi.ZCRX_EVENT_DESC_FLAG_STATS
		ed.StatsOffset = statsOff
		reg.EventDesc = uint64(uintptr(unsafe.Pointer(&ed)))
	}
	if err := r.register(uapi.IORING_REGISTER_ZCRX_IFQ, unsafe.Pointer(&reg), 1); err != nil {
		return nil, registerError(cfg, err.(unix.Errno))
	}
	q.ID = reg.ZcrxID
	q.noDev = cfg.NoDev
	q.BufLen = reg.RxBufLen
	if q.BufLen == 0 { // kernels before rx_buf_len (6.19) leave it 0: the page size
		q.BufLen = pageSize
	}
	q.token = area.RqAreaToken
	base := unsafe.Pointer(&q.region[0])
	q.rqHead = (*uint32)(unsafe.Add(base, reg.Offsets.Head))
	q.rqTail = (*uint32)(unsafe.Add(base, reg.Offsets.Tail))
	q.rqes = unsafe.Add(base, reg.Offsets.Rqes)
	q.rqMask = reg.RqEntries - 1
	q.entries = reg.RqEntries
	q.local = atomic.LoadUint32(q.rqTail)
	if cfg.CopyStats {
		q.stats = (*uapi.ZcrxStats)(unsafe.Add(base, statsOff))
	}
	return q, nil
}

// registerError explains a refused registration. io_uring passes no extack to the memory
// provider core, so the kernel's reasons come back as bare errnos: list what each one means.
func registerError(cfg IfqConfig, e unix.Errno) error {
	where := fmt.Sprintf("zcrx register %s queue %d", cfg.Ifname, cfg.Queue)
	if cfg.NoDev {
		where = "zcrx register (no device)"
	}
	var why string
	switch e {
	case unix.EPERM:
		why = "zcrx needs CAP_NET_ADMIN (run as root)"
	case unix.EOPNOTSUPP:
		why = fmt.Sprintf("the driver of %s has no DMA device for its RX queues, so it cannot take a zcrx area (veth, loopback and virtio-net cannot; a zcrx NIC or softnic is needed), or the kernel lacks CONFIG_IO_URING_ZCRX, or the area is a dma-buf on a kernel without IORING_ZCRX_AREA_DMABUF (check with: ncdevmem doctor -f %s)", cfg.Ifname, cfg.Ifname)
	case unix.ENODEV:
		why = fmt.Sprintf("no interface with index %d in this network namespace", cfg.Ifindex)
	case unix.EEXIST:
		why = "the queue already has a memory provider (a devmem binding or another zcrx instance): pick another queue"
	case unix.EBUSY:
		why = "the queue is in use by AF_XDP"
	case unix.EINVAL:
		if cfg.NoDev {
			why = "this kernel does not take a no-device ifq (ZCRX_REG_NODEV: absent from 6.18, present in 7.3)"
			break
		}
		why = fmt.Sprintf("the queue cannot take a memory provider: header split off (ethtool -G %s tcp-data-split on), hds-thresh above 0 (ethtool -G %s hds-thresh 0), queue out of range, or XDP attached; or the kernel refused the ring or area layout", cfg.Ifname, cfg.Ifname)
	case unix.ENODATA:
		why = "the driver's new page pool did not take the memory provider (driver without unreadable-netmem support)"
	case unix.ENOMEM:
		why = "the area could not be pinned: raise RLIMIT_MEMLOCK (ulimit -l) or run with CAP_IPC_LOCK, or use a smaller --zcrx-area-size"
	case unix.ERANGE, unix.E2BIG:
		why = "the area's physically contiguous chunks do not fit the buffer size the queue needs"
	case unix.EFAULT:
		why = "the area or the refill region is not mapped memory"
	default:
		why = "refused by the kernel"
	}
	return &RegisterError{Where: where, Errno: e, Why: why}
}

// RegisterError is a refused IORING_REGISTER_ZCRX_IFQ: errors.Is works on Errno.
type RegisterError struct {
	Where string
	Errno unix.Errno
	Why   string
}

func (e *RegisterError) Error() string { return fmt.Sprintf("%s: %v (%s)", e.Where, e.Errno, e.Why) }
func (e *RegisterError) Unwrap() error { return e.Errno }

// Close unmaps the refill region; call it only after the ring is closed (the kernel holds the
// region until then).
func (q *Ifq) Close() error {
	if q.region == nil {
		return nil
	}
	err := unix.Munmap(q.region)
	q.region = nil
	return err
}

// Copies returns the kernel's copy-fallback counters (completions and bytes the kernel copied
// into the area because it could not hand over the NIC's buffer), and false when this kernel does
// not keep them.
func (q *Ifq) Copies() (count, bytes uint64, ok bool) {
	if q.stats == nil {
		return 0, 0, false
	}
	return atomic.LoadUint64(&q.stats.CopyCount), atomic.LoadUint64(&q.stats.CopyBytes), true
}

// rqSpace is the number of refill entries that can be queued without overwriting entries the
// kernel has not consumed.
func (q *Ifq) rqSpace() uint32 { return q.entries - (q.local - atomic.LoadUint32(q.rqHead)) }

// put queues one buffer return; the caller checked rqSpace.
func (q *Ifq) put(off uint64, n uint32) {
	e := (*uapi.IoUringZcrxRqe)(unsafe.Add(q.rqes, uintptr(q.local&q.rqMask)*uapi.SizeofIoUringZcrxRqe))
	e.Off = off&^uapi.IORING_ZCRX_AREA_MASK | q.token
	e.Len = n
	e.Pad = 0
	q.local++
}

// flushRQ makes the kernel consume the refill ring now (ZCRX_CTRL_FLUSH_RQ, Linux 7.x).
func (q *Ifq) flushRQ(r *Ring) error {
	q.ctrl = uapi.ZcrxCtrl{ZcrxID: q.ID, Op: uapi.ZCRX_CTRL_FLUSH_RQ}
	return r.register(uapi.IORING_REGISTER_ZCRX_CTRL, unsafe.Pointer(&q.ctrl), 0)
}

// unpublished is the number of queued returns the kernel cannot see yet.
func (q *Ifq) unpublished() uint32 { return q.local - atomic.LoadUint32(q.rqTail) }

// publish makes the queued returns visible to the kernel: one store, one refill batch.
func (q *Ifq) publish() { atomic.StoreUint32(q.rqTail, q.local) }

// data returns the n bytes a completion points at, or an error when the offset lies outside the
// area (a kernel bug or a CQE misread: never touch memory outside the area).
func (q *Ifq) data(off uint64, n int32) ([]byte, error) {
	o := off &^ uapi.IORING_ZCRX_AREA_MASK
	if n < 0 || o > uint64(len(q.area)) || uint64(n) > uint64(len(q.area))-o {
		return nil, errBadOffset
	}
	return q.area[o : o+uint64(n)], nil
}

var errBadOffset = errors.New("zcrx: completion points outside the area")

// HostArea maps size bytes of anonymous, populated host memory for an area; free it with
// FreeHostArea after the ring that registered it is closed.
func HostArea(size int64) ([]byte, error) {
	if err := CheckArea(size); err != nil {
		return nil, err
	}
	b, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("zcrx: host area of %d bytes: %w", size, err)
	}
	return b, nil
}

// FreeHostArea unmaps an area from HostArea.
func FreeHostArea(b []byte) error { return unix.Munmap(b) }
