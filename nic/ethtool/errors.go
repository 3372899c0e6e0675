// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package ethtool

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotSupported is matched (errors.Is) by an *Error whose errno says the driver or kernel lacks
// the operation (EOPNOTSUPP).
var ErrNotSupported = errors.New("operation not supported by the driver")

// Error is a kernel refusal of one ethtool operation on one interface. It keeps the kernel's
// extack text and errno, and adds advice. errors.Is(err, os.ErrPermission) is true for EPERM,
// os.ErrNotExist for ENODEV, ErrNotSupported for EOPNOTSUPP; errors.Is(err, unix.EXXX) works too.
type Error struct {
	Ifname string
	// Op names the operation in ethtool's terms, e.g. "set tcp-data-split on" or "insert rule".
	Op string
	// Message is the kernel's extack text, empty when the kernel gave none.
	Message string
	// Err is the errno (a unix.Errno) or another underlying error.
	Err error
	// Advice says what to do; empty when there is nothing useful to add.
	Advice string
}

// Error prints "op ifname: extack (errno) (advice)".
func (e *Error) Error() string {
	s := e.Op + " " + e.Ifname + ": "
	if e.Message != "" {
		s += e.Message + " (" + e.Err.Error() + ")"
	} else {
		s += e.Err.Error()
	}
	if e.Advice != "" {
		s += " (" + e.Advice + ")"
	}
	return s
}

// Unwrap returns the errno.
func (e *Error) Unwrap() error { return e.Err }

// Is maps errnos to os.ErrPermission, os.ErrNotExist and ErrNotSupported.
func (e *Error) Is(target error) bool {
	switch target {
	case os.ErrPermission:
		return errors.Is(e.Err, unix.EPERM)
	case os.ErrNotExist:
		return errors.Is(e.Err, unix.ENODEV)
	case ErrNotSupported:
		return errors.Is(e.Err, unix.EOPNOTSUPP)
	}
	return false
}

var _ error = &Error{}

// NewError wraps a kernel error of op on ifname, adding advice by errno. ethtoolCmd names the
// ethtool command line that would do the same, used in advice ("ethtool -G eth1 tcp-data-split on").
func NewError(ifname, op, message string, err error, ethtoolCmd string) *Error {
	e := &Error{Ifname: ifname, Op: op, Message: message, Err: err}
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		e.Advice = "needs CAP_NET_ADMIN: run as root"
	case errors.Is(err, unix.ENODEV):
		e.Advice = "no such interface in this network namespace: check -f and `ip link`"
	case errors.Is(err, unix.EOPNOTSUPP):
		e.Advice = "the driver does not support this"
		if ethtoolCmd != "" {
			e.Advice += "; devmem RX needs a NIC whose driver does (`" + ethtoolCmd + "` must work), or run with --no-setup on queues prepared another way"
		}
	case errors.Is(err, unix.EBUSY):
		e.Advice = "the device is busy: another user (devmem binding, AF_XDP, io_uring zcrx) holds the queues"
	}
	return e
}
