// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package rx holds the receive engines: host (read/recvmsg into process memory, optional MSG_TRUNC)
// and devmem (recvmsg with MSG_SOCK_DEVMEM, cmsg parsing, token batching, validation through the
// dma-buf). Each engine drains one flow; the bench package runs one per connection.
package rx

import (
	"sync/atomic"
	"syscall"

	"github.com/devmemtcp/ncdevmem/internal/sockcall"
)

// Engine receives one flow. Receive returns nil when the peer closed the stream, an error wrapping
// os.ErrDeadlineExceeded when the connection's read deadline (the bench's stop signal) passed, and
// any other error when the flow failed (a validation mismatch is a *pattern.MismatchError).
// Receive allocates nothing per call to the kernel.
type Engine interface {
	Receive(rc syscall.RawConn, st *Stats) error
}

// Blocking is implemented by engines that can run on a blocking socket from a locked OS thread,
// with sockcall.Stop as the stop signal instead of a read deadline (see rx.Host.ReceiveBlocking).
// The bench prefers it: a read that sleeps in the kernel costs no netpoller round trip.
type Blocking interface {
	ReceiveBlocking(fd int, st *Stats, stop *sockcall.Stop) error
}

// Stats are a flow's live counters, read concurrently by the bench's samplers.
type Stats struct {
	Bytes atomic.Uint64 // payload bytes received (dma-buf and linear)
}
