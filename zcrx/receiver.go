// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package zcrx

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// Counters are a receiver's live totals, safe to read from any goroutine.
type Counters struct {
	Bytes         atomic.Uint64 // payload bytes completed (zero-copy and copied)
	Completions   atomic.Uint64 // RECV_ZC data completions (CQEs)
	RefillBatches atomic.Uint64 // refill ring tail publications
	RefillEntries atomic.Uint64 // buffers handed back
	RefillStalls  atomic.Uint64 // returns parked because the refill ring was full
	Rearms        atomic.Uint64 // multishot RECV_ZC re-armed after the kernel ended it (ENOSPC, ENOMEM)
}

// Snapshot is a plain copy of Counters plus the kernel's copy-fallback counters.
type Snapshot struct {
	Bytes, Completions, RefillBatches, RefillEntries, RefillStalls, Rearms uint64
	CopyKnown                                                              bool // the kernel counts copy fallbacks (7.x)
	CopyCount, CopyBytes                                                   uint64
}

// Add sums o into s (the counters of several receivers); the copy counters are known only when
// they are for every receiver.
func (s *Snapshot) Add(o Snapshot) {
	first := *s == Snapshot{}
	s.Bytes += o.Bytes
	s.Completions += o.Completions
	s.RefillBatches += o.RefillBatches
	s.RefillEntries += o.RefillEntries
	s.RefillStalls += o.RefillStalls
	s.Rearms += o.Rearms
	s.CopyKnown = o.CopyKnown && (first || s.CopyKnown)
	s.CopyCount += o.CopyCount
	s.CopyBytes += o.CopyBytes
}

// Sub is what the counters did between a (earlier) and s.
func (s Snapshot) Sub(a Snapshot) Snapshot {
	return Snapshot{Bytes: s.Bytes - a.Bytes, Completions: s.Completions - a.Completions,
		RefillBatches: s.RefillBatches - a.RefillBatches, RefillEntries: s.RefillEntries - a.RefillEntries,
		RefillStalls: s.RefillStalls - a.RefillStalls, Rearms: s.Rearms - a.Rearms,
		CopyKnown: s.CopyKnown, CopyCount: s.CopyCount - a.CopyCount, CopyBytes: s.CopyBytes - a.CopyBytes}
}

// DefaultBatch is how many buffer returns are published to the refill ring at once.
const DefaultBatch = 32

// user_data layout: kind in the top byte, an index below.
const (
	kindData   = 1 << 56
	kindHello  = 2 << 56
	kindCancel = 3 << 56
	kindMask   = 0xff << 56
)

// Flow is one socket receiving with multishot RECV_ZC into the ifq's area.
type Flow struct {
	id     int
	fd     int
	verify func(p []byte, off uint64) error
	every  uint64
	live   *atomic.Uint64
	off    uint64 // stream offset of the next byte
	n      uint64 // completions, for sampled validation
	armed  bool
	stop   bool
	ended  bool
	err    error
	done   chan struct{}
}

// Done is closed when the flow ended: EOF, an error, a validation mismatch, or Stop.
func (f *Flow) Done() <-chan struct{} { return f.done }

// Err is why the flow ended (nil at EOF); valid after Done.
func (f *Flow) Err() error { return f.err }

// Offset is the stream offset received so far; valid after Done.
func (f *Flow) Offset() uint64 { return f.off }

type hello struct {
	fd    int
	dst   []byte
	n     int
	armed bool
	err   error
	done  chan struct{}
}

// Receiver drives one ring and its one ifq from one locked OS thread (SINGLE_ISSUER): every ring
// operation, from enabling it to reaping completions, runs there. Other goroutines talk to it
// through Exec-style calls that are not on the per-completion path.
type Receiver struct {
	ring  *Ring
	ifq   *Ifq
	batch uint32
	C     Counters

	cmds   chan func()
	quit   chan struct{}
	exit   chan struct{}
	once   sync.Once
	flows  []*Flow
	hello  []*hello
	armed  int
	broken bool // the ring failed: serve commands only

	// parked buffer returns waiting for refill ring space (preallocated, used in order).
	park     []uapi.IoUringZcrxRqe
	parkHead int
	parkLen  int
}

// refillBatch is the refill batch for a wanted size (0: DefaultBatch), a refill ring of entries
// and an area of bufs buffers: never more than a sixteenth of the area, so a small area is not
// held back from the NIC while a batch fills (64 buffers and batches of 32 left the NIC without
// buffers half the time), and never more than the ring holds.
func refillBatch(want int, entries uint32, bufs int) uint32 {
	if want <= 0 {
		want = DefaultBatch
	}
	return uint32(max(min(want, int(entries), bufs/16), 1))
}

// NewReceiver takes ownership of ring and ifq (registered on ring) and starts the driving thread.
// batch is the refill batch (0: DefaultBatch; see refillBatch).
func NewReceiver(ring *Ring, ifq *Ifq, batch int) (*Receiver, error) {
	r := &Receiver{ring: ring, ifq: ifq, batch: refillBatch(batch, ifq.entries, len(ifq.area)/int(max(ifq.BufLen, 1))),
		cmds: make(chan func()), quit: make(chan struct{}), exit: make(chan struct{}),
		park: make([]uapi.IoUringZcrxRqe, ifq.entries)}
	started := make(chan error, 1)
	go r.run(started)
	if err := <-started; err != nil {
		<-r.exit
		return nil, err
	}
	return r, nil
}

func (r *Receiver) run(started chan<- error) {
	defer close(r.exit)
	runtime.LockOSThread()
	// The thread is the ring's submitter for life; let Go retire it with the ring.
	if err := r.ring.Enable(); err != nil {
		started <- err
		return
	}
	started <- nil
	for {
		if r.broken || (r.armed <= 0 && r.ifq.unpublished() == 0 && r.parkLen == 0) {
			select {
			case f := <-r.cmds:
				f()
				continue
			case <-r.quit:
				return
			}
		}
	drain:
		for {
			select {
			case f := <-r.cmds:
				f()
			case <-r.quit:
				return
			default:
				break drain
			}
		}
		if r.ring.pending() > 0 || r.armed > 0 {
			if err := r.ring.Enter(10 * time.Millisecond); err != nil {
				r.failAll(err)
			}
		}
		if !r.reap() {
			// The refill ring and the park are full: give the NIC time to take buffers back.
			time.Sleep(200 * time.Microsecond)
		}
	}
}

// exec runs fn on the ring's thread and waits for it.
func (r *Receiver) exec(fn func()) error {
	done := make(chan struct{})
	select {
	case r.cmds <- func() { fn(); close(done) }:
	case <-r.exit:
		return errors.New("zcrx: receiver closed")
	}
	<-done
	return nil
}

// Pin moves the ring's thread onto the CPUs of the calling thread (the bench pins each flow's
// thread to its app CPU; the ring's work should be accounted there too).
func (r *Receiver) Pin() error {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return err
	}
	var err error
	if e := r.exec(func() { err = unix.SchedSetaffinity(0, &set) }); e != nil {
		return e
	}
	return err
}

// Arm starts multishot RECV_ZC on fd for flow id. verify, when not nil, checks each completion
// in place (every every'th; 0 or 1: all) at the flow's stream offset; live, when not nil, is
// incremented with each completion's bytes.
func (r *Receiver) Arm(id, fd int, verify func(p []byte, off uint64) error, every int, live *atomic.Uint64) (*Flow, error) {
	f := &Flow{id: id, fd: fd, verify: verify, every: uint64(max(every, 1)), live: live, done: make(chan struct{})}
	var err error
	e := r.exec(func() {
		idx := len(r.flows)
		r.flows = append(r.flows, f)
		err = r.arm(kindData|uint64(idx), fd, 0)
		if err == nil {
			f.armed = true
		}
	})
	if e != nil {
		return nil, e
	}
	if err != nil {
		return nil, fmt.Errorf("zcrx flow %d: %w", id, err)
	}
	return f, nil
}

func (r *Receiver) arm(ud uint64, fd int, n uint32) error {
	s := r.ring.sqe()
	if s == nil {
		if err := r.ring.Enter(0); err != nil {
			return err
		}
		if s = r.ring.sqe(); s == nil {
			return errors.New("io_uring submission queue full")
		}
	}
	s.Opcode = uapi.IORING_OP_RECV_ZC
	s.Fd = int32(fd)
	s.Ioprio = uapi.IORING_RECV_MULTISHOT
	s.Len = n
	s.ZcrxIfqIdx = r.ifq.ID
	s.UserData = ud
	r.armed++
	return nil
}

// Stop ends flow f: its RECV_ZC is cancelled and Done closes once the kernel confirmed it.
func (r *Receiver) Stop(f *Flow) {
	r.exec(func() {
		f.stop = true
		if !f.armed {
			r.end(f, nil)
			return
		}
		for i, g := range r.flows {
			if g == f {
				r.cancel(kindData | uint64(i))
			}
		}
	})
}

func (r *Receiver) cancel(ud uint64) {
	s := r.ring.sqe()
	if s == nil {
		r.ring.Enter(0)
		if s = r.ring.sqe(); s == nil {
			return // the request ends with the ring
		}
	}
	s.Opcode = uapi.IORING_OP_ASYNC_CANCEL
	s.Addr = ud
	s.UserData = kindCancel
}

// Read reads exactly len(p) bytes of fd's stream through RECV_ZC (the bytes of a socket on a zcrx
// queue are in the area, where read(2) cannot reach them), waiting at most until expired reports
// true (polled every 10 ms). Not for the data path: it copies.
func (r *Receiver) Read(fd int, p []byte, expired func() bool) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	h := &hello{fd: fd, dst: p, done: make(chan struct{})}
	var err error
	var idx int
	if e := r.exec(func() {
		idx = len(r.hello)
		r.hello = append(r.hello, h)
		if err = r.arm(kindHello|uint64(idx), fd, uint32(len(p))); err == nil {
			h.armed = true
		}
	}); e != nil {
		return 0, e
	}
	if err != nil {
		return 0, err
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			return h.n, h.err
		case <-t.C:
			if expired() {
				r.exec(func() { r.cancel(kindHello | uint64(idx)) })
				<-h.done
				if h.n == len(p) {
					return h.n, nil
				}
				return h.n, errExpired
			}
		}
	}
}

var errExpired = errors.New("zcrx: read deadline passed")

// ErrExpired is returned by Read when expired reported true first.
func ErrExpired() error { return errExpired }

// reap consumes the available completions; false means it stopped because buffer returns could
// not be parked anywhere (the caller waits a little).
func (r *Receiver) reap() bool {
	r.unpark()
	ok := true
	for {
		c := r.ring.peek()
		if c == nil {
			break
		}
		if !r.handle(c) {
			ok = false
			break
		}
		r.ring.advance()
	}
	if r.ifq.unpublished() > 0 {
		r.flush()
	}
	return ok
}

func (r *Receiver) flush() {
	q := r.ifq
	n := q.unpublished()
	q.publish()
	r.C.RefillBatches.Add(1)
	r.C.RefillEntries.Add(uint64(n))
	if q.noDev && r.ring.fd >= 0 {
		// Without a device nothing consumes the refill ring by itself (no page pool allocates
		// from it): the buffers would never come back and the flow would stall once the area is
		// used up. Ask the kernel to take the batch now.
		if err := q.flushRQ(r.ring); err != nil {
			r.failAll(fmt.Errorf("zcrx: flush the refill ring (ZCRX_CTRL_FLUSH_RQ): %w", err))
		}
	}
}

// canGiveBack reports whether giveBack has room (the refill ring or the park).
func (r *Receiver) canGiveBack() bool {
	return (r.parkLen == 0 && r.ifq.rqSpace() > 0) || r.parkLen < len(r.park)
}

// giveBack queues one buffer return, publishing a batch when it is full; false when neither the
// refill ring nor the park has room (callers check canGiveBack first).
func (r *Receiver) giveBack(off uint64, n uint32) bool {
	q := r.ifq
	if r.parkLen == 0 && q.rqSpace() > 0 {
		q.put(off, n)
		if q.unpublished() >= r.batch {
			r.flush()
		}
		return true
	}
	if r.parkLen == len(r.park) {
		return false
	}
	i := (r.parkHead + r.parkLen) % len(r.park)
	r.park[i] = uapi.IoUringZcrxRqe{Off: off, Len: n}
	r.parkLen++
	r.C.RefillStalls.Add(1)
	return true
}

// unpark moves parked returns into the refill ring as space allows.
func (r *Receiver) unpark() {
	q := r.ifq
	for r.parkLen > 0 && q.rqSpace() > 0 {
		e := &r.park[r.parkHead]
		q.put(e.Off, e.Len)
		r.parkHead = (r.parkHead + 1) % len(r.park)
		r.parkLen--
	}
}

// handle processes one completion; false leaves it in the CQ for later (no room to return its
// buffer). It allocates nothing unless the flow fails.
func (r *Receiver) handle(c *cqe) bool {
	ud := c.UserData
	idx := int(ud &^ kindMask)
	switch ud & kindMask {
	case kindData:
		if idx >= len(r.flows) {
			return true
		}
		f := r.flows[idx]
		if c.Res > 0 {
			p, err := r.ifq.data(c.zc.Off, c.Res)
			if err != nil {
				r.end(f, err)
				return true // nothing to give back: the offset is not ours
			}
			if !r.canGiveBack() {
				return false
			}
			// Validate before the buffer goes back: once a batch is published the kernel may
			// hand the buffer to the NIC again, which overwrites it.
			f.n++
			if f.verify != nil && !f.ended && (f.every == 1 || f.n%f.every == 0) {
				if err := f.verify(p, f.off); err != nil {
					r.end(f, err)
				}
			}
			r.giveBack(c.zc.Off, uint32(c.Res))
			f.off += uint64(c.Res)
			r.C.Bytes.Add(uint64(c.Res))
			r.C.Completions.Add(1)
			if f.live != nil {
				f.live.Add(uint64(c.Res))
			}
		}
		if c.Flags&uapi.IORING_CQE_F_MORE == 0 {
			f.armed = false
			r.armed--
			r.ended(f, idx, c.Res)
		}
	case kindHello:
		if idx >= len(r.hello) {
			return true
		}
		h := r.hello[idx]
		if c.Res > 0 {
			p, err := r.ifq.data(c.zc.Off, c.Res)
			if err == nil {
				if !r.canGiveBack() {
					return false
				}
				h.n += copy(h.dst[h.n:], p) // copy out before the buffer goes back
				r.giveBack(c.zc.Off, uint32(c.Res))
			} else if h.err == nil {
				h.err = err
			}
		}
		if c.Flags&uapi.IORING_CQE_F_MORE == 0 {
			h.armed = false
			r.armed--
			switch {
			case h.err != nil:
			case c.Res < 0 && c.Res != -int32(unix.ECANCELED):
				h.err = fmt.Errorf("zcrx: RECV_ZC: %w", errnoOf(c.Res))
			case h.n < len(h.dst) && c.Res == 0:
				h.err = fmt.Errorf("zcrx: connection closed after %d of %d bytes", h.n, len(h.dst))
			}
			close(h.done)
		}
	}
	return true
}

// ended handles the last completion of flow f's multishot request.
func (r *Receiver) ended(f *Flow, idx int, res int32) {
	switch {
	case f.ended:
	case f.stop:
		r.end(f, nil)
	case res == 0:
		r.end(f, nil) // EOF
	case res == -int32(unix.ENOSPC) || res == -int32(unix.ENOMEM) || res == -int32(unix.EAGAIN):
		// The CQ or the area ran out: the data is still in the socket; return buffers, re-arm.
		r.C.Rearms.Add(1)
		if err := r.arm(kindData|uint64(idx), f.fd, 0); err != nil {
			r.end(f, err)
			return
		}
		f.armed = true
	case res < 0:
		r.end(f, fmt.Errorf("zcrx flow %d: RECV_ZC: %w", f.id, errnoOf(res)))
	}
}

// end finishes flow f once; a still-armed request is cancelled.
func (r *Receiver) end(f *Flow, err error) {
	if f.ended {
		return
	}
	f.ended = true
	f.err = err
	if f.armed {
		for i, g := range r.flows {
			if g == f {
				r.cancel(kindData | uint64(i))
			}
		}
	}
	close(f.done)
}

func (r *Receiver) failAll(err error) {
	for _, f := range r.flows {
		r.end(f, err)
	}
	for _, h := range r.hello {
		if h.armed {
			h.armed = false
			h.err = err
			close(h.done)
		}
	}
	r.broken = true
}

// Snapshot reads the counters. While the ring's thread runs, it reads them there, between two
// reaps, so every completion counted has its buffer return published.
func (r *Receiver) Snapshot() Snapshot {
	var s Snapshot
	if r.exec(func() { s = r.snapshot() }) != nil {
		s = r.snapshot()
	}
	return s
}

func (r *Receiver) snapshot() Snapshot {
	s := Snapshot{
		Bytes: r.C.Bytes.Load(), Completions: r.C.Completions.Load(), RefillBatches: r.C.RefillBatches.Load(),
		RefillEntries: r.C.RefillEntries.Load(), RefillStalls: r.C.RefillStalls.Load(), Rearms: r.C.Rearms.Load(),
	}
	s.CopyCount, s.CopyBytes, s.CopyKnown = r.ifq.Copies()
	return s
}

// Close stops the thread, closes the ring (the kernel unregisters the ifq and gives the queue
// back), then frees the refill region. Flows still running end with an error.
func (r *Receiver) Close() error {
	var err error
	r.once.Do(func() {
		r.exec(func() { r.failAll(errors.New("zcrx: receiver closed")) })
		close(r.quit)
		<-r.exit
		err = errors.Join(r.ring.Close(), r.ifq.Close())
	})
	return err
}
