// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package zcrx

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// RingFlags are the io_uring_setup flags zcrx needs (io_uring/zcrx.c refuses a ring without
// DEFER_TASKRUN and CQE32 with EINVAL): completions carry io_uring_zcrx_cqe in their second half,
// and task work runs only when the issuing thread enters the kernel to wait.
const RingFlags = uapi.IORING_SETUP_CQE32 | uapi.IORING_SETUP_SINGLE_ISSUER | uapi.IORING_SETUP_DEFER_TASKRUN

// Ring is one io_uring instance set up with RingFlags, its SQ and CQ rings mapped. With
// SINGLE_ISSUER every submission and wait must come from one OS thread: a ring made with
// disabled=true picks that thread when it calls Enable. Not safe for concurrent use.
type Ring struct {
	fd     int
	params uapi.IoUringParams
	sqMap  []byte
	cqMap  []byte // same as sqMap with IORING_FEAT_SINGLE_MMAP
	sqeMap []byte

	sqHead, sqTail *uint32
	sqMask         uint32
	sqEntries      uint32
	sqes           unsafe.Pointer
	sqLocal        uint32 // next SQE to hand out; published by submit

	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           unsafe.Pointer

	// getevents argument and timeout live here so enter allocates nothing.
	ts  unix.Timespec
	arg uapi.IoUringGeteventsArg
}

// NewRing sets up a ring with entries SQEs and cqEntries 32-byte CQEs (clamped by the kernel).
// disabled starts it with IORING_SETUP_R_DISABLED: registrations work from any thread, and the
// thread that calls Enable becomes the only submitter.
func NewRing(entries, cqEntries uint32, disabled bool) (_ *Ring, err error) {
	r := &Ring{fd: -1}
	r.params.Flags = RingFlags | uapi.IORING_SETUP_CQSIZE | uapi.IORING_SETUP_CLAMP
	if disabled {
		r.params.Flags |= uapi.IORING_SETUP_R_DISABLED
	}
	r.params.CqEntries = cqEntries
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&r.params)), 0)
	if e != 0 {
		return nil, setupError(e)
	}
	r.fd = int(fd)
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	p := &r.params
	sqSize := int(p.SqOff.Array) + int(p.SqEntries)*4
	cqSize := int(p.CqOff.Cqes) + int(p.CqEntries)*uapi.SizeofIoUringCqe32
	single := p.Features&uapi.IORING_FEAT_SINGLE_MMAP != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	if r.sqMap, err = unix.Mmap(r.fd, uapi.IORING_OFF_SQ_RING, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, fmt.Errorf("io_uring: mmap SQ ring: %w", err)
	}
	r.cqMap = r.sqMap
	if !single {
		if r.cqMap, err = unix.Mmap(r.fd, uapi.IORING_OFF_CQ_RING, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
			return nil, fmt.Errorf("io_uring: mmap CQ ring: %w", err)
		}
	}
	if r.sqeMap, err = unix.Mmap(r.fd, uapi.IORING_OFF_SQES, int(p.SqEntries)*uapi.SizeofIoUringSqe, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, fmt.Errorf("io_uring: mmap SQEs: %w", err)
	}
	sq := unsafe.Pointer(&r.sqMap[0])
	r.sqHead = (*uint32)(unsafe.Add(sq, p.SqOff.Head))
	r.sqTail = (*uint32)(unsafe.Add(sq, p.SqOff.Tail))
	r.sqMask = *(*uint32)(unsafe.Add(sq, p.SqOff.RingMask))
	r.sqEntries = *(*uint32)(unsafe.Add(sq, p.SqOff.RingEntries))
	// SQ array slot i always names SQE i: SQEs are used in ring order.
	arr := unsafe.Slice((*uint32)(unsafe.Add(sq, p.SqOff.Array)), r.sqEntries)
	for i := range arr {
		arr[i] = uint32(i)
	}
	r.sqes = unsafe.Pointer(&r.sqeMap[0])
	r.sqLocal = atomic.LoadUint32(r.sqTail)
	cq := unsafe.Pointer(&r.cqMap[0])
	r.cqHead = (*uint32)(unsafe.Add(cq, p.CqOff.Head))
	r.cqTail = (*uint32)(unsafe.Add(cq, p.CqOff.Tail))
	r.cqMask = *(*uint32)(unsafe.Add(cq, p.CqOff.RingMask))
	r.cqes = unsafe.Add(cq, p.CqOff.Cqes)
	return r, nil
}

// setupError explains an io_uring_setup failure.
func setupError(e unix.Errno) error {
	switch e {
	case unix.ENOSYS:
		return fmt.Errorf("io_uring_setup: %w (this kernel has no io_uring: CONFIG_IO_URING is off)", e)
	case unix.EPERM:
		return fmt.Errorf("io_uring_setup: %w (io_uring is disabled for this process by the kernel.io_uring_disabled sysctl; allow it with: sysctl -w kernel.io_uring_disabled=0)", e)
	case unix.EINVAL:
		return fmt.Errorf("io_uring_setup with CQE32|SINGLE_ISSUER|DEFER_TASKRUN: %w (the kernel is older than 6.1 and lacks DEFER_TASKRUN; zcrx needs 6.15 or later)", e)
	}
	return fmt.Errorf("io_uring_setup: %w", e)
}

// Fd is the ring's file descriptor.
func (r *Ring) Fd() int { return r.fd }

// Features is io_uring_params.features as the kernel returned it.
func (r *Ring) Features() uint32 { return r.params.Features }

// CQEntries is the CQ ring's size.
func (r *Ring) CQEntries() uint32 { return r.params.CqEntries }

// Enable starts a ring made disabled; the calling thread becomes its only submitter, so call it
// from a goroutine locked to its thread.
func (r *Ring) Enable() error {
	if err := r.register(uapi.IORING_REGISTER_ENABLE_RINGS, nil, 0); err != nil {
		return fmt.Errorf("io_uring: enable ring: %w", err)
	}
	return nil
}

func (r *Ring) register(op uintptr, arg unsafe.Pointer, n uintptr) error {
	for {
		_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), op, uintptr(arg), n, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// sqe returns the next free SQE, zeroed, or nil when the SQ ring is full.
func (r *Ring) sqe() *uapi.IoUringSqe {
	if r.sqLocal-atomic.LoadUint32(r.sqHead) >= r.sqEntries {
		return nil
	}
	s := (*uapi.IoUringSqe)(unsafe.Add(r.sqes, uintptr(r.sqLocal&r.sqMask)*uapi.SizeofIoUringSqe))
	*s = uapi.IoUringSqe{}
	r.sqLocal++
	return s
}

// pending is the number of SQEs handed out and not yet submitted.
func (r *Ring) pending() uint32 { return r.sqLocal - atomic.LoadUint32(r.sqTail) }

// Enter publishes the prepared SQEs and, with wait > 0, waits up to wait for at least one
// completion; a timeout is not an error. Enter allocates nothing.
func (r *Ring) Enter(wait time.Duration) error {
	n := r.pending()
	atomic.StoreUint32(r.sqTail, r.sqLocal)
	var flags uintptr
	var minc uintptr
	var arg unsafe.Pointer
	var argsz uintptr
	if wait > 0 {
		flags = uapi.IORING_ENTER_GETEVENTS | uapi.IORING_ENTER_EXT_ARG
		minc = 1
		r.ts = unix.NsecToTimespec(int64(wait))
		r.arg = uapi.IoUringGeteventsArg{Ts: uint64(uintptr(unsafe.Pointer(&r.ts)))}
		arg = unsafe.Pointer(&r.arg)
		argsz = unsafe.Sizeof(r.arg)
	} else {
		// DEFER_TASKRUN: completions are posted only when the submitter asks for events.
		flags = uapi.IORING_ENTER_GETEVENTS
	}
	for {
		_, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(n), minc, flags, uintptr(arg), argsz)
		switch e {
		case 0, unix.ETIME:
			return nil
		case unix.EINTR:
			n = 0
			continue
		case unix.EBUSY, unix.EAGAIN:
			// CQ overflow backlog or no memory for requests: reap first, then come back.
			return nil
		}
		return fmt.Errorf("io_uring_enter: %w", e)
	}
}

// cqe is one 32-byte completion: the io_uring_cqe and, for RECV_ZC, the io_uring_zcrx_cqe.
type cqe struct {
	uapi.IoUringCqe
	zc uapi.IoUringZcrxCqe
}

// peek returns the oldest unconsumed completion, or nil.
func (r *Ring) peek() *cqe {
	h := *r.cqHead
	if h == atomic.LoadUint32(r.cqTail) {
		return nil
	}
	return (*cqe)(unsafe.Add(r.cqes, uintptr(h&r.cqMask)*uapi.SizeofIoUringCqe32))
}

// advance consumes the completion peek returned.
func (r *Ring) advance() { atomic.StoreUint32(r.cqHead, *r.cqHead+1) }

// Close unmaps and closes the ring; the kernel then tears down every ifq registered on it, which
// gives its RX queue back to the driver. Safe to call more than once.
func (r *Ring) Close() error {
	var errs []error
	if r.sqeMap != nil {
		errs = append(errs, unix.Munmap(r.sqeMap))
	}
	if r.cqMap != nil && unsafe.SliceData(r.cqMap) != unsafe.SliceData(r.sqMap) {
		errs = append(errs, unix.Munmap(r.cqMap))
	}
	if r.sqMap != nil {
		errs = append(errs, unix.Munmap(r.sqMap))
	}
	r.sqeMap, r.cqMap, r.sqMap = nil, nil, nil
	if r.fd >= 0 {
		errs = append(errs, unix.Close(r.fd))
		r.fd = -1
	}
	return errors.Join(errs...)
}

// nop queues an IORING_OP_NOP with userData, for tests of the ring itself.
func (r *Ring) nop(userData uint64) bool {
	s := r.sqe()
	if s == nil {
		return false
	}
	s.Opcode = uapi.IORING_OP_NOP
	s.UserData = userData
	return true
}

// errnoOf turns a negative CQE result into an errno.
func errnoOf(res int32) error {
	if res >= 0 {
		return nil
	}
	return unix.Errno(-res)
}
