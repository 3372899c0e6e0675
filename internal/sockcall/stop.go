// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package sockcall

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// StopPoll is how long a blocking socket call waits at most (SO_RCVTIMEO/SO_SNDTIMEO) before the
// engine looks at its Stop again: the bound on how late a stalled flow notices it must end.
const StopPoll = 100 * time.Millisecond

// Stop is the stop signal of an engine that runs on a blocking socket on a locked OS thread. The
// bench sets it; the engine checks it between calls and whenever SO_RCVTIMEO/SO_SNDTIMEO ends a
// call that made no progress, so a flow ends within StopPoll of Set even when its peer is silent.
type Stop struct{ v atomic.Bool }

// Set tells the engine to return.
func (s *Stop) Set() { s.v.Store(true) }

// Done reports whether Set was called.
func (s *Stop) Done() bool { return s.v.Load() }

// ErrStopped is what an engine returns when its Stop was set. It wraps os.ErrDeadlineExceeded, the
// netpoller engines' stop error, so the bench reads both the same way.
var ErrStopped = fmt.Errorf("stopped (%w)", os.ErrDeadlineExceeded)

// SetBlocking clears O_NONBLOCK on fd and sets SO_RCVTIMEO and SO_SNDTIMEO to poll, so the
// engine's read(2) and write(2) sleep in the kernel (no netpoller round trip) yet return EAGAIN
// at least every poll when nothing moves. The socket stays registered with Go's netpoller; nothing
// else may read or write it through Go while it is blocking.
func SetBlocking(fd int, poll time.Duration) error {
	tv := unix.NsecToTimeval(poll.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("setsockopt SO_RCVTIMEO: %w", err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return fmt.Errorf("setsockopt SO_SNDTIMEO: %w", err)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		return fmt.Errorf("clear O_NONBLOCK: %w", err)
	}
	return nil
}
