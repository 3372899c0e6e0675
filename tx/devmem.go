// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package tx

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/devmemtcp/ncdevmem/pattern"
)

const (
	// maxIovecs is the most iovecs one devmem sendmsg carries (the C ncdevmem's limit, and
	// below UIO_MAXIOV).
	maxIovecs = 1024
	// maxInflight bounds the sends awaiting completion (the bookkeeping ring's size).
	maxInflight = 4096
	// devmemReapEvery is how many sends go out between non-blocking reads of the error queue, so
	// notifications do not pile up against the socket's optmem limit (ENOBUFS).
	devmemReapEvery = 8
)

// DevmemConfig describes one flow's devmem send.
type DevmemConfig struct {
	// Buf is the TX dma-buf, bound with bind-tx (DmabufID) and filled with FillDevmem.
	Buf      dmabuf.Buffer
	DmabufID uint32
	// Base and Length delimit the part of Buf this flow sends from (Length 0: to the end). Flows
	// sharing a buffer get disjoint parts, so one never rewrites what another has in flight.
	Base, Length int64
	// WriteSize is the most bytes per sendmsg.
	WriteSize int
	// Chunk, when > 0, splits a send into iovecs of at most Chunk bytes (the C tool's -z).
	Chunk int
	// Ifname is the bound device, for error messages.
	Ifname string
	// Sys is the kernel seam (Kernel{} when nil).
	Sys DevmemSys
}

// Devmem is the devmem TX engine of one flow: sendmsg(MSG_ZEROCOPY) with an SCM_DEVMEM_DMABUF
// cmsg and iovecs that are offsets into the dma-buf. The buffer holds the pattern (FillDevmem), and
// the flow sends from its part of it as a ring kept in phase with the stream (the pattern repeats
// every 255 bytes), reusing a region only after the kernel reported its zerocopy completion. It
// allocates nothing per sendmsg.
type Devmem struct {
	cfg   DevmemConfig
	sys   DevmemSys
	ring  uint64 // usable bytes of the region: a multiple of the pattern period
	phase uint64

	// Stats are the flow's devmem TX counters.
	Stats DevmemStats

	iovs  []rawIovec // noscan
	msg   unix.Msghdr
	ctl   []byte
	zmsg  unix.Msghdr
	zoob  []byte
	recs  []uint64 // end stream offset of each in-flight send, by sequence number
	done  []bool
	head  uint64 // stream offset of the next byte to send
	tail  uint64 // stream offset of the oldest byte not yet completed
	seq   uint32 // sequence number of the next zerocopy send
	tseq  uint32 // oldest sequence number not yet completed
	since int    // sends since the last error-queue read

	writeFn, waitFn func(fd uintptr) bool
	st              *Stats
	wait            bool
	err             error
}

// NewDevmem checks cfg and allocates the flow's buffers.
func NewDevmem(cfg DevmemConfig) (*Devmem, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	e := &Devmem{cfg: cfg, sys: cfg.Sys}
	e.ring = uint64(cfg.Length) / pattern.Period * pattern.Period
	// Ring index i holds buffer offset Base+i, whose pattern byte matches stream offsets
	// congruent to Base+i mod 255; phase shifts stream offsets onto that.
	e.phase = e.ring - uint64(cfg.Base)%pattern.Period
	e.iovs = make([]rawIovec, maxIovecs)
	e.ctl = dmabufIDCmsg(make([]byte, unix.CmsgSpace(4)), cfg.DmabufID)
	e.msg.Control = &e.ctl[0]
	e.msg.SetControllen(len(e.ctl))
	e.zoob = make([]byte, 16*unix.CmsgSpace(uapi.SizeofSockExtendedErr+unix.SizeofSockaddrInet6))
	e.recs = make([]uint64, maxInflight)
	e.done = make([]bool, maxInflight)
	e.writeFn = e.write
	e.waitFn = e.waitCompletion
	return e, nil
}

// check validates cfg and fills in its defaults (Sys: the running kernel).
func (cfg *DevmemConfig) check() error {
	if cfg.Sys == nil {
		cfg.Sys = Kernel{}
	}
	if cfg.Buf == nil {
		return errors.New("devmem tx: no dma-buf")
	}
	size := cfg.Buf.Size()
	if cfg.Length == 0 {
		cfg.Length = size - cfg.Base
	}
	if cfg.Base < 0 || cfg.Length < 0 || cfg.Base+cfg.Length > size {
		return fmt.Errorf("devmem tx: region [%d, +%d) lies outside the %d-byte dma-buf", cfg.Base, cfg.Length, size)
	}
	if cfg.Length < pattern.Period {
		return fmt.Errorf("devmem tx: region of %d bytes is smaller than the %d-byte pattern period (use a larger --dmabuf-size or fewer flows)", cfg.Length, pattern.Period)
	}
	if cfg.WriteSize < 1 {
		return fmt.Errorf("devmem tx: write size %d must be positive", cfg.WriteSize)
	}
	if cfg.Chunk < 0 {
		return fmt.Errorf("devmem tx: iovec size %d must not be negative", cfg.Chunk)
	}
	return nil
}

// FillDevmem writes the payload pattern over the whole buffer once (byte j holds the stream byte
// of offset j), so every flow can send from it at any phase.
func FillDevmem(buf dmabuf.Buffer) error {
	if m, ok := buf.(dmabuf.Mapped); ok && int64(len(m.Bytes())) >= buf.Size() {
		if err := m.BeginCPU(true); err != nil {
			return fmt.Errorf("devmem tx: sync dma-buf for CPU write: %w", err)
		}
		pattern.Fill(m.Bytes()[:buf.Size()], 0)
		if err := m.EndCPU(true); err != nil {
			return fmt.Errorf("devmem tx: end CPU write to dma-buf: %w", err)
		}
		return nil
	}
	chunk := make([]byte, 1<<20)
	for off := int64(0); off < buf.Size(); off += int64(len(chunk)) {
		p := chunk[:min(int64(len(chunk)), buf.Size()-off)]
		pattern.Fill(p, uint64(off))
		if _, err := buf.WriteAt(p, off); err != nil {
			return fmt.Errorf("devmem tx: fill dma-buf at offset %d: %w", off, err)
		}
	}
	return nil
}

// Control returns a net.Dialer Control function that prepares a devmem TX socket before connect:
// SO_BINDTODEVICE ifname, so the route leaves by the bound NIC, and SO_ZEROCOPY, without which
// the kernel refuses SCM_DEVMEM_DMABUF. sys nil means the real kernel.
func Control(sys DevmemSys, ifname string) func(network, address string, c syscall.RawConn) error {
	if sys == nil {
		sys = Kernel{}
	}
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if _, err := sys.Setsockopt(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, []byte(ifname)); err != nil {
				why := ""
				switch err {
				case unix.EPERM:
					why = " (needs CAP_NET_RAW: run as root)"
				case unix.ENODEV:
					why = " (no such device in this network namespace)"
				}
				serr = fmt.Errorf("devmem tx: SO_BINDTODEVICE %s: %w%s", ifname, err, why)
				return
			}
			one := []byte{1, 0, 0, 0}
			if _, err := sys.Setsockopt(int(fd), unix.SOL_SOCKET, unix.SO_ZEROCOPY, one); err != nil {
				serr = fmt.Errorf("devmem tx: SO_ZEROCOPY: %w (MSG_ZEROCOPY needs Linux 4.14 or later)", err)
			}
		})
		if err != nil {
			return fmt.Errorf("devmem tx: prepare socket: %w", err)
		}
		return serr
	}
}

// Offset is the number of stream bytes the kernel accepted so far.
func (e *Devmem) Offset() uint64 { return e.head }

// Inflight is the number of bytes sent and not yet completed.
func (e *Devmem) Inflight() uint64 { return e.head - e.tail }

// Send streams until the write deadline (an error wrapping os.ErrDeadlineExceeded) or a failure.
func (e *Devmem) Send(rc syscall.RawConn, st *Stats) error {
	e.st = st
	for {
		e.wait, e.err = false, nil
		if err := rc.Write(e.writeFn); err != nil {
			e.finalReap(rc)
			return fmt.Errorf("devmem tx: %w", err)
		}
		if e.err == nil && e.wait {
			e.Stats.Waits.Add(1)
			// Wait through Write: the stop signal is the write deadline, and a completion raises
			// POLLERR, which wakes writers as well as readers.
			if err := rc.Write(e.waitFn); err != nil {
				e.finalReap(rc)
				return fmt.Errorf("devmem tx: wait for zerocopy completions: %w", err)
			}
		}
		if e.err != nil {
			return e.err
		}
	}
}

// finalReap collects completions already queued, so the counters cover what the kernel reported.
func (e *Devmem) finalReap(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) { e.reap(int(fd)) })
}

// write is the rc.Write callback: one sendmsg of the next region, or a request to wait when every
// region is still in flight.
func (e *Devmem) write(fd uintptr) bool {
	if e.since >= devmemReapEvery || e.head-e.tail > e.ring/2 {
		if _, err := e.reap(int(fd)); err != nil {
			e.err = err
			return true
		}
	}
	i := (e.head + e.phase) % e.ring
	l := min(uint64(e.cfg.WriteSize), e.ring-i, e.ring-(e.head-e.tail))
	if l == 0 || e.seq-e.tseq == maxInflight {
		e.wait = true
		return true
	}
	n := 1
	if c := uint64(e.cfg.Chunk); c > 0 {
		l = min(l, c*maxIovecs)
		n = int((l + c - 1) / c)
		for k := 0; k < n; k++ {
			e.iovs[k] = rawIovec{base: uintptr(uint64(e.cfg.Base) + i + uint64(k)*c), len: min(c, l-uint64(k)*c)}
		}
	} else {
		e.iovs[0] = rawIovec{base: uintptr(uint64(e.cfg.Base) + i), len: l}
	}
	setRawIov(&e.msg, e.iovs, n)
	for {
		sent, err := e.sys.Sendmsg(int(fd), &e.msg, unix.MSG_ZEROCOPY|unix.MSG_DONTWAIT)
		switch err {
		case nil:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		case unix.ENOBUFS:
			// The socket's option memory is full of zerocopy state: with sends in flight,
			// their completions free it, so wait for them and try again.
			if e.head != e.tail {
				e.Stats.Nobufs.Add(1)
				e.wait = true
				return true
			}
			e.err = e.sendError(err, l)
			return true
		default:
			e.err = e.sendError(err, l)
			return true
		}
		if sent <= 0 {
			e.err = fmt.Errorf("devmem tx: sendmsg of %d bytes returned %d", l, sent)
			return true
		}
		k := e.seq % maxInflight
		e.head += uint64(sent)
		e.recs[k], e.done[k] = e.head, false
		e.seq++
		e.since++
		if uint64(sent) < l {
			e.Stats.ShortSends.Add(1)
		}
		e.Stats.Sends.Add(1)
		e.Stats.Bytes.Add(uint64(sent))
		e.st.Bytes.Add(uint64(sent))
		e.st.ZCSends.Add(1)
		return true
	}
}

// waitCompletion is the rc.Write callback used when the ring is full: it returns once at least one
// completion was read.
func (e *Devmem) waitCompletion(fd uintptr) bool {
	n, err := e.reap(int(fd))
	if err != nil {
		e.err = err
		return true
	}
	return n > 0
}

// reap reads the error queue without blocking and retires completed sends.
func (e *Devmem) reap(fd int) (int, error) {
	e.since = 0
	got := 0
	for {
		e.zmsg = unix.Msghdr{Control: &e.zoob[0]}
		e.zmsg.SetControllen(len(e.zoob))
		_, err := e.sys.Recvmsg(fd, &e.zmsg, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		switch err {
		case nil:
		case unix.EAGAIN:
			return got, nil
		case unix.EINTR:
			continue
		default:
			return got, fmt.Errorf("devmem tx: recvmsg(MSG_ERRQUEUE): %w", err)
		}
		if e.zmsg.Flags&unix.MSG_CTRUNC != 0 {
			return got, fmt.Errorf("devmem tx: zerocopy completion truncated (MSG_CTRUNC) in a %d-byte control buffer", len(e.zoob))
		}
		it := zcIter{rem: e.zoob[:e.zmsg.Controllen]}
		for {
			r, ok, err := it.next()
			if err != nil {
				return got, fmt.Errorf("devmem tx: %w", err)
			}
			if !ok {
				break
			}
			if err := e.complete(r); err != nil {
				return got, err
			}
			got++
		}
	}
}

// complete marks sends lo..hi done and moves the tail past every leading completed send.
func (e *Devmem) complete(r zcRange) error {
	count := r.hi - r.lo + 1
	if r.lo-e.tseq >= e.seq-e.tseq || count > e.seq-r.lo {
		return fmt.Errorf("devmem tx: zerocopy completion [%d,%d] names sends not in flight (in flight: %d..%d)", r.lo, r.hi, e.tseq, e.seq-1)
	}
	for s := r.lo; s != r.hi+1; s++ {
		e.done[s%maxInflight] = true
	}
	for e.tseq != e.seq && e.done[e.tseq%maxInflight] {
		e.tail = e.recs[e.tseq%maxInflight]
		e.done[e.tseq%maxInflight] = false
		e.tseq++
	}
	e.Stats.Completions.Add(uint64(count))
	e.st.ZCCompleted.Add(uint64(count))
	if r.copied {
		e.Stats.Copied.Add(uint64(count))
		e.st.ZCCopied.Add(uint64(count))
	}
	return nil
}

func (e *Devmem) sendError(err error, l uint64) error {
	dev := e.cfg.Ifname
	if dev == "" {
		dev = "the bound device"
	}
	efault := fmt.Sprintf("an iovec offset in [%d, +%d) lies outside the %d-byte dma-buf", uint64(e.cfg.Base)+(e.head+e.phase)%e.ring, l, e.cfg.Buf.Size())
	why := sendAdvice(err, dev, e.cfg.DmabufID, efault)
	if why == "" {
		return fmt.Errorf("devmem tx: sendmsg(MSG_ZEROCOPY, SCM_DEVMEM_DMABUF) of %d bytes: %w", l, err)
	}
	return fmt.Errorf("devmem tx: sendmsg(MSG_ZEROCOPY, SCM_DEVMEM_DMABUF) of %d bytes: %w: %s", l, err, why)
}

// sendAdvice explains each errno devmem sendmsg is known to return (devmem-uapi.md §3), or "" for
// others. dev is the device the TX binding belongs to, id the binding, efault the EFAULT detail.
func sendAdvice(err error, dev string, id uint32, efault string) string {
	switch err {
	case unix.EINVAL:
		return fmt.Sprintf("dma-buf id %d is not a TX binding this socket can use (bind-tx failed or its netlink socket closed), or SO_ZEROCOPY is off", id)
	case unix.ENODEV:
		return fmt.Sprintf("the route to the peer leaves by another device than %s, which the TX binding belongs to (check: ip route get PEER; the peer must be reached through %s)", dev, dev)
	case unix.EFAULT:
		return efault
	case unix.ENOBUFS:
		return "no socket option memory for zerocopy notifications: raise it (sysctl -w net.core.optmem_max=1048576) or use a larger --write-size"
	case unix.EHOSTUNREACH:
		return "no route to the peer"
	case unix.EOPNOTSUPP:
		return fmt.Sprintf("%s cannot send from dma-buf memory", dev)
	}
	return ""
}
