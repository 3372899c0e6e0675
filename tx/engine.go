// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package tx holds the send engines: host (write, optional MSG_ZEROCOPY with completions reaped from
// the error queue) and devmem (sendmsg of dma-buf offsets with SCM_DEVMEM_DMABUF and MSG_ZEROCOPY).
// Each engine feeds one flow; the bench package runs one per connection.
package tx

import (
	"sync/atomic"
	"syscall"

	"github.com/devmemtcp/ncdevmem/internal/sockcall"
)

// Engine sends one flow. Send returns an error wrapping os.ErrDeadlineExceeded when the connection's
// write deadline (the bench's stop signal) passed, and any other error when the flow failed.
// Send allocates nothing per call to the kernel.
type Engine interface {
	Send(rc syscall.RawConn, st *Stats) error
}

// Blocking is implemented by engines that can run on a blocking socket from a locked OS thread,
// with sockcall.Stop as the stop signal instead of a write deadline (see tx.Host.SendBlocking).
// The bench prefers it: a write that sleeps in the kernel costs no netpoller round trip.
type Blocking interface {
	SendBlocking(fd int, st *Stats, stop *sockcall.Stop) error
}

// Stats are a flow's live counters, read concurrently by the bench's samplers.
type Stats struct {
	Bytes       atomic.Uint64 // payload bytes accepted by the kernel
	ZCSends     atomic.Uint64 // sendmsg calls with MSG_ZEROCOPY
	ZCCompleted atomic.Uint64 // completions reaped
	ZCCopied    atomic.Uint64 // completions the kernel had to copy (SO_EE_CODE_ZEROCOPY_COPIED)
}
