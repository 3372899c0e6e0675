// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/sockcall"
	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// DevmemSys is the seam between the devmem RX engine and the kernel: the few socket calls the
// engine makes on a flow's fd. Kernel is the real one; internal/devmemsim stands in for a
// devmem-capable kernel in tests. Implementations must not allocate on success.
type DevmemSys interface {
	// Recvmsg is recvmsg(2) with a caller-built msghdr; it returns the byte count and leaves
	// msg.Controllen and msg.Flags as the kernel set them.
	Recvmsg(fd int, msg *unix.Msghdr, flags int) (int, error)
	// Setsockopt is setsockopt(2) with a raw option value; it returns the syscall's non-negative
	// result (SO_DEVMEM_DONTNEED returns the number of frags it freed).
	Setsockopt(fd, level, name int, val []byte) (int, error)
	// GetsockoptInt is getsockopt(2) for an int option.
	GetsockoptInt(fd, level, name int) (int, error)
}

// Kernel is the DevmemSys of the running kernel: raw syscalls that neither allocate nor drop the
// return value (x/sys's Setsockopt helpers discard it, and DONTNEED's count matters).
type Kernel struct{}

// Recvmsg implements DevmemSys.
func (Kernel) Recvmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	return sockcall.Recvmsg(fd, msg, flags)
}

// Setsockopt implements DevmemSys.
func (Kernel) Setsockopt(fd, level, name int, val []byte) (int, error) {
	return sockcall.Setsockopt(fd, level, name, val)
}

// GetsockoptInt implements DevmemSys.
func (Kernel) GetsockoptInt(fd, level, name int) (int, error) {
	return unix.GetsockoptInt(fd, level, name)
}

// tokenBytes views token ranges as the option value of SO_DEVMEM_DONTNEED.
func tokenBytes(t []uapi.DmabufToken) []byte {
	if len(t) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&t[0])), len(t)*uapi.SizeofDmabufToken)
}

// setIov points msg at one iovec over p and at the control buffer oob.
func setIov(msg *unix.Msghdr, iov *unix.Iovec, p, oob []byte) {
	iov.Base = &p[0]
	iov.SetLen(len(p))
	msg.Iov = iov
	msg.SetIovlen(1)
	msg.Control = &oob[0]
	msg.SetControllen(len(oob))
}
