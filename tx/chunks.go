// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package tx

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// MaxChunks is the most iovecs one ChunkSender.Send splits a region into (the C ncdevmem's MAX_IOV).
const MaxChunks = 1024

// ChunkSender sends dma-buf regions the way the kernel selftest's C ncdevmem client does: one
// sendmsg(MSG_ZEROCOPY) per region, its bytes split into iovecs of at most chunk bytes whose bases
// are offsets into the dma-buf, followed by a wait for that send's zerocopy completion before the
// region may be rewritten. The devmem engine (Devmem) streams instead; this is the line-at-a-time
// contract the selftests check.
type ChunkSender struct {
	sys  DevmemSys
	fd   int
	iovs [MaxChunks]rawIovec
	ctrl [32]byte
	zoob [256]byte
	msg  unix.Msghdr
	id   uint32

	// Sends, Completions and Copied count what happened, for the caller's summary.
	Sends, Completions, Copied uint64
}

// NewChunkSender prepares sends on fd (a connected TCP socket with SO_ZEROCOPY set, whose device is
// bound for devmem TX under id).
func NewChunkSender(sys DevmemSys, fd int, id uint32) *ChunkSender {
	return &ChunkSender{sys: sys, fd: fd, id: id}
}

// Send sends n bytes at dma-buf offset off in iovecs of at most chunk bytes (0: one iovec). It
// returns the kernel's byte count; a short count is the caller's to judge (the C tool fails on it).
func (s *ChunkSender) Send(off uint64, n, chunk int) (int, error) {
	if n <= 0 {
		return 0, fmt.Errorf("devmem tx: nothing to send (%d bytes)", n)
	}
	k := 1
	if chunk > 0 {
		k = (n + chunk - 1) / chunk
	} else {
		chunk = n
	}
	if k > MaxChunks {
		return 0, fmt.Errorf("can't partition %d bytes into maximum of %d chunks (raise -z)", n, MaxChunks)
	}
	for i := 0; i < k; i++ {
		s.iovs[i] = rawIovec{base: uintptr(off) + uintptr(i*chunk), len: uint64(chunk)}
	}
	s.iovs[k-1].len = uint64(n - (k-1)*chunk)
	s.msg = unix.Msghdr{}
	setRawIov(&s.msg, s.iovs[:], k)
	c := dmabufIDCmsg(s.ctrl[:], s.id)
	s.msg.Control = &c[0]
	s.msg.SetControllen(len(c))
	for {
		sent, err := s.sys.Sendmsg(s.fd, &s.msg, unix.MSG_ZEROCOPY)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			if why := sendAdvice(err, "the bound device", s.id, "an iovec offset lies beyond the dma-buf"); why != "" {
				return 0, fmt.Errorf("sendmsg: %w: %s", err, why)
			}
			return 0, fmt.Errorf("sendmsg: %w", err)
		}
		s.Sends++
		return sent, nil
	}
}

// WaitCompletion waits up to timeout for the next zerocopy notification and returns its range of
// send sequence numbers, as the C tool's wait_compl does. The error queue never blocks, so it is
// polled every 100 µs.
func (s *ChunkSender) WaitCompletion(timeout time.Duration) (lo, hi uint32, err error) {
	deadline := time.Now().Add(timeout)
	for {
		s.msg = unix.Msghdr{Control: &s.zoob[0]}
		s.msg.SetControllen(len(s.zoob))
		_, err := s.sys.Recvmsg(s.fd, &s.msg, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		switch {
		case err == nil:
			if s.msg.Flags&unix.MSG_CTRUNC != 0 {
				return 0, 0, errors.New("MSG_CTRUNC: zerocopy completion truncated")
			}
			it := zcIter{rem: s.zoob[:s.msg.Controllen]}
			r, ok, perr := it.next()
			if perr != nil {
				return 0, 0, perr
			}
			if ok {
				n := uint64(r.hi - r.lo + 1)
				s.Completions += n
				if r.copied {
					s.Copied += n
				}
				return r.lo, r.hi, nil
			}
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		default:
			return 0, 0, fmt.Errorf("recvmsg(MSG_ERRQUEUE): %w", err)
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("did not receive tx completion within %v", timeout)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
