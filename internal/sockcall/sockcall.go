// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package sockcall issues the socket syscalls of the devmem data path raw: x/sys's wrappers either
// drop the result (setsockopt's SO_DEVMEM_DONTNEED returns the number of frags freed) or take
// iovec bases as pointers, which devmem TX's dma-buf offsets are not. Nothing here allocates on
// success or on EAGAIN/EINTR.
package sockcall

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Recvmsg is recvmsg(2) with a caller-built msghdr; msg.Controllen and msg.Flags are left as the
// kernel set them.
func Recvmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	n, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(msg)), uintptr(flags))
	if e != 0 {
		return 0, Errno(e)
	}
	return int(n), nil
}

// Sendmsg is sendmsg(2) with a caller-built msghdr, whose iovec bases may be dma-buf offsets.
func Sendmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	n, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(msg)), uintptr(flags))
	if e != 0 {
		return 0, Errno(e)
	}
	return int(n), nil
}

// Setsockopt is setsockopt(2) with a raw option value; it returns the syscall's non-negative result.
func Setsockopt(fd, level, name int, val []byte) (int, error) {
	var p unsafe.Pointer
	if len(val) > 0 {
		p = unsafe.Pointer(&val[0])
	}
	r, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name),
		uintptr(p), uintptr(len(val)), 0)
	if e != 0 {
		return 0, Errno(e)
	}
	return int(r), nil
}

// Errno returns e as an error. The errnos a busy non-blocking socket answers all the time are
// returned as constants, which the compiler boxes statically, so the hot path allocates nothing.
func Errno(e unix.Errno) error {
	switch e {
	case unix.EAGAIN:
		return unix.EAGAIN
	case unix.EINTR:
		return unix.EINTR
	}
	return e
}

// Call runs f, a non-blocking socket call made from a syscall.RawConn Read or Write callback,
// again while it fails with EINTR. wait is true on EAGAIN: the callback returns false to park on
// the netpoller. Otherwise f's count and error come back. Call allocates nothing.
func Call(f func() (int, error)) (n int, wait bool, err error) {
	for {
		n, err := f()
		switch err {
		case nil:
			return n, false, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, true, nil
		}
		return n, false, err
	}
}
