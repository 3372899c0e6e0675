// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package tx

import (
	"fmt"
	"os"
	"syscall"

	"github.com/devmemtcp/ncdevmem/internal/sockcall"
	"github.com/devmemtcp/ncdevmem/pattern"
	"golang.org/x/sys/unix"
)

// reapEvery is how many MSG_ZEROCOPY sends go out between non-blocking reads of the error queue.
// The kernel merges consecutive notifications into ranges, so a few reads cover many sends, and the
// socket's optmem limit (ENOBUFS) forces a read whenever they pile up anyway.
const reapEvery = 8

// Host sends one flow from process memory: write(2), or send with MSG_ZEROCOPY, from a block that
// holds the pattern once for every phase: WriteSize+255 bytes filled at start, sliced at off%255.
// The block is never written again, so MSG_ZEROCOPY pages stay valid until their completion.
type Host struct {
	flow      int
	size      int
	zerocopy  bool
	block     []byte
	corruptAt uint64 // 1 + stream offset of the byte to flip, 0 = never (a test hook)
	scratch   []byte

	off   uint64
	sends uint64
	zc    zcReaper
	// zcDone and zcCopied are the completions already added to the caller's Stats.
	zcDone, zcCopied uint64

	writeFn func(fd uintptr) bool
	p       []byte
	flags   int
	n       int
	err     error
}

// NewHost returns a sender for flow writing writeSize bytes per call. With zerocopy the caller
// must have set SO_ZEROCOPY on the socket (EnableZerocopy).
func NewHost(flow, writeSize int, zerocopy bool) (*Host, error) {
	if writeSize < 1 {
		return nil, fmt.Errorf("host sender: write size %d, want at least 1", writeSize)
	}
	h := &Host{flow: flow, size: writeSize, zerocopy: zerocopy}
	h.block = make([]byte, writeSize+pattern.Period)
	pattern.Fill(h.block, 0)
	h.zc.init()
	h.writeFn = h.write
	return h, nil
}

// CorruptAt makes the sender flip the byte at stream offset off (once), so a test can prove that
// the target's validation catches it. Test hook only.
func (h *Host) CorruptAt(off uint64) {
	h.corruptAt = off + 1
	h.scratch = make([]byte, h.size)
}

// EnableZerocopy sets SO_ZEROCOPY on the socket, which MSG_ZEROCOPY sends need.
func EnableZerocopy(rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ZEROCOPY, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt SO_ZEROCOPY: %w (MSG_ZEROCOPY needs Linux 4.14 or later)", serr)
	}
	return nil
}

// Offset is the stream offset of the next byte, i.e. the bytes sent so far.
func (h *Host) Offset() uint64 { return h.off }

func (h *Host) write(fd uintptr) bool {
	for {
		n, wait, err := sockcall.Call(func() (int, error) { return h.send(int(fd)) })
		if err == unix.ENOBUFS && h.flags != 0 {
			// Too many zerocopy notifications queued against optmem: reap, then retry.
			h.zc.reap(int(fd))
			if h.zc.err == nil {
				continue
			}
			err = h.zc.err
		}
		if err != nil {
			n = 0
		}
		h.n, h.err = n, err
		return !wait
	}
}

// send is one write(2), or send(2) with h.flags, of h.p.
func (h *Host) send(fd int) (int, error) {
	if h.flags != 0 {
		return sendFlags(fd, h.p, h.flags)
	}
	return unix.Write(fd, h.p)
}

// next points h.p and h.flags at the next write of the stream.
func (h *Host) next() {
	ph := h.off % pattern.Period
	h.p = h.block[ph : ph+uint64(h.size)]
	h.flags = 0
	if h.zerocopy {
		h.flags = unix.MSG_ZEROCOPY
	}
	if h.corruptAt != 0 && h.corruptAt-1 >= h.off && h.corruptAt-1 < h.off+uint64(h.size) {
		// A plain copy for this write, so the shared block and in-flight zerocopy pages stay intact.
		copy(h.scratch, h.p)
		h.scratch[h.corruptAt-1-h.off] ^= 0xff
		h.p, h.flags = h.scratch, 0
	}
}

// SendBlocking is Send on a blocking socket (sockcall.SetBlocking) from a locked OS thread:
// write(2) sleeps in the kernel instead of parking on Go's netpoller. It returns
// sockcall.ErrStopped once stop is set (checked before every write and whenever SO_SNDTIMEO ends a
// wait that moved nothing) or a socket error; never nil. Zerocopy completions are reaped as in
// Send. Nothing is allocated per write.
func (h *Host) SendBlocking(fd int, st *Stats, stop *sockcall.Stop) error {
	for {
		if err := h.step(fd, st, stop); err != nil {
			return err
		}
	}
}

// step is one write of SendBlocking; a non-nil error ends the flow.
func (h *Host) step(fd int, st *Stats, stop *sockcall.Stop) error {
	if stop.Done() {
		return fmt.Errorf("flow %d: send: %w", h.flow, sockcall.ErrStopped)
	}
	h.next()
	if !h.write(uintptr(fd)) {
		return nil // SO_SNDTIMEO passed with no room: look at stop again
	}
	if reap, err := h.sent(st); !reap {
		return err
	}
	return h.reapFd(fd, st)
}

// Send writes the pattern stream until the write deadline (an error wrapping
// os.ErrDeadlineExceeded) or a socket error; it never returns nil on its own.
func (h *Host) Send(rc syscall.RawConn, st *Stats) error {
	for {
		if err := h.sendOne(rc, st); err != nil {
			return err
		}
	}
}

// sendOne is one write of Send; a non-nil error ends the flow.
func (h *Host) sendOne(rc syscall.RawConn, st *Stats) error {
	h.next()
	if err := rc.Write(h.writeFn); err != nil {
		return fmt.Errorf("flow %d: send: %w", h.flow, err)
	}
	if reap, err := h.sent(st); !reap {
		return err
	}
	return h.Reap(rc, st)
}

// sent takes the result of one write: a socket error ends the flow, else the bytes are counted;
// reap says it is time to read the zerocopy completions.
func (h *Host) sent(st *Stats) (reap bool, err error) {
	if h.err != nil {
		return false, fmt.Errorf("flow %d: send: %w", h.flow, os.NewSyscallError("write", h.err))
	}
	h.off += uint64(h.n)
	st.Bytes.Add(uint64(h.n))
	if h.flags == 0 {
		return false, nil
	}
	h.sends++
	st.ZCSends.Add(1)
	return h.sends%reapEvery == 0, nil
}

// Reap reads every queued zerocopy completion without blocking and adds them to st.
func (h *Host) Reap(rc syscall.RawConn, st *Stats) error {
	if !h.zerocopy {
		return nil
	}
	if err := rc.Control(h.zc.reapFn); err != nil {
		return fmt.Errorf("flow %d: read zerocopy completions: %w", h.flow, err)
	}
	h.account(st)
	if h.zc.err != nil {
		return fmt.Errorf("flow %d: read zerocopy completions: %w", h.flow, h.zc.err)
	}
	return nil
}

// reapFd is Reap on the descriptor itself, for SendBlocking (already inside the socket's Control).
func (h *Host) reapFd(fd int, st *Stats) error {
	if !h.zerocopy {
		return nil
	}
	h.zc.reap(fd)
	h.account(st)
	if h.zc.err != nil {
		return fmt.Errorf("flow %d: read zerocopy completions: %w", h.flow, h.zc.err)
	}
	return nil
}

// account adds the completions reaped since the last call to st, including those write reaped to
// get past ENOBUFS.
func (h *Host) account(st *Stats) {
	st.ZCCompleted.Add(h.zc.completed - h.zcDone)
	st.ZCCopied.Add(h.zc.copied - h.zcCopied)
	h.zcDone, h.zcCopied = h.zc.completed, h.zc.copied
}

// Pending is the number of zerocopy sends whose completion has not been reaped yet.
func (h *Host) Pending() uint64 { return h.sends - h.zc.completed }
