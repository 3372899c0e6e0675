// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/devmemtcp/ncdevmem/internal/sockcall"
	"github.com/devmemtcp/ncdevmem/pattern"
	"golang.org/x/sys/unix"
)

// Host receives one flow into process memory: read(2) into a preallocated buffer, or recv with
// MSG_TRUNC (the kernel discards the payload: the cost of the network stack without the copy).
// Validation compares each read against the pattern at the flow's running stream offset.
type Host struct {
	flow  int
	buf   []byte
	every uint64 // validate read k when k%every == 0; 0 = never

	off   uint64 // stream offset of the next byte
	reads uint64

	// recv is read(2) or recv(MSG_TRUNC); readFn is built once so the per-read RawConn.Read call
	// allocates nothing.
	recv   func(fd int, p []byte) (int, error)
	readFn func(fd uintptr) bool
	n      int
	err    error
}

// NewHost returns a receiver for flow that reads at most readSize bytes per call. validateEvery is
// 0 for no validation, 1 for every read, N to check one read in N. trunc selects MSG_TRUNC, which
// leaves nothing to validate, so validateEvery must then be 0.
func NewHost(flow, readSize int, trunc bool, validateEvery int) (*Host, error) {
	if readSize < 1 {
		return nil, fmt.Errorf("host receiver: read size %d, want at least 1", readSize)
	}
	if trunc && validateEvery != 0 {
		return nil, errors.New("host receiver: MSG_TRUNC discards the payload, so it cannot be validated")
	}
	if validateEvery < 0 {
		return nil, fmt.Errorf("host receiver: validate every %d reads", validateEvery)
	}
	h := &Host{flow: flow, every: uint64(validateEvery)}
	h.buf = make([]byte, readSize)
	h.recv, h.readFn = unix.Read, h.read
	if trunc {
		h.recv = recvTrunc
	}
	return h, nil
}

func (h *Host) read(fd uintptr) bool {
	n, wait, err := sockcall.Call(func() (int, error) { return h.recv(int(fd), h.buf) })
	if err != nil {
		n = 0
	}
	h.n, h.err = n, err
	return !wait
}

// Offset is the stream offset of the next byte, i.e. the bytes received so far.
func (h *Host) Offset() uint64 { return h.off }

// Receive drains the flow until EOF (nil), the read deadline (an error wrapping
// os.ErrDeadlineExceeded), a socket error, or a validation mismatch (*pattern.MismatchError).
func (h *Host) Receive(rc syscall.RawConn, st *Stats) error {
	for {
		if end, err := h.receiveOne(rc, st); end {
			return err
		}
	}
}

// receiveOne is one read of Receive; end says the flow is over, with err (nil at EOF).
func (h *Host) receiveOne(rc syscall.RawConn, st *Stats) (end bool, err error) {
	if err := rc.Read(h.readFn); err != nil {
		return true, fmt.Errorf("flow %d: receive: %w", h.flow, err)
	}
	return h.account(h.n, h.err, st)
}

// ReceiveBlocking is Receive on a blocking socket (sockcall.SetBlocking) from a locked OS thread:
// read(2) sleeps in the kernel instead of parking on Go's netpoller. It returns nil at EOF,
// sockcall.ErrStopped once stop is set (checked before every read and whenever SO_RCVTIMEO ends an
// empty wait), a socket error, or a validation mismatch. Nothing is allocated per read.
func (h *Host) ReceiveBlocking(fd int, st *Stats, stop *sockcall.Stop) error {
	for {
		if end, err := h.step(fd, st, stop); end {
			return err
		}
	}
}

// step is one read of ReceiveBlocking; end says the flow is over, with err (nil at EOF).
func (h *Host) step(fd int, st *Stats, stop *sockcall.Stop) (end bool, err error) {
	if stop.Done() {
		return true, fmt.Errorf("flow %d: receive: %w", h.flow, sockcall.ErrStopped)
	}
	n, err := h.recv(fd, h.buf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return false, nil
	}
	return h.account(n, err, st)
}

// account takes the result of one read: a socket error or EOF ends the flow, else the bytes are
// validated (every h.every reads) and counted.
func (h *Host) account(n int, err error, st *Stats) (end bool, _ error) {
	if err != nil {
		return true, fmt.Errorf("flow %d: receive: %w", h.flow, os.NewSyscallError("read", err))
	}
	if n == 0 {
		return true, nil
	}
	if h.every != 0 && h.reads%h.every == 0 {
		if err := pattern.Check(h.flow, h.buf[:n], h.off); err != nil {
			return true, err
		}
	}
	h.reads++
	h.off += uint64(n)
	st.Bytes.Add(uint64(n))
	return false, nil
}
