// Package rx holds the receive engines: host (read/recvmsg into process memory, optional MSG_TRUNC)
// and devmem (recvmsg with MSG_SOCK_DEVMEM, cmsg parsing, token batching, validation through the
// dma-buf). Each engine drains one flow; the bench package runs one per connection.
package rx

import (
	"sync/atomic"
	"syscall"
)

// Engine receives one flow. Receive returns nil when the peer closed the stream, an error wrapping
// os.ErrDeadlineExceeded when the connection's read deadline (the bench's stop signal) passed, and
// any other error when the flow failed (a validation mismatch is a *pattern.MismatchError).
// Receive allocates nothing per call to the kernel.
type Engine interface {
	Receive(rc syscall.RawConn, st *Stats) error
}

// Stats are a flow's live counters, read concurrently by the bench's samplers.
type Stats struct {
	Bytes atomic.Uint64 // payload bytes received (dma-buf and linear)
}
