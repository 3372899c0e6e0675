// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package tx

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// sendFlags is send(fd, p, len(p), flags) without the address handling of unix.Sendto.
func sendFlags(fd int, p []byte, flags int) (int, error) {
	r, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(flags), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// zcReaper reads MSG_ZEROCOPY completions from a socket's error queue into preallocated buffers.
type zcReaper struct {
	oob       []byte
	hdr       unix.Msghdr
	completed uint64
	copied    uint64
	err       error
	reapFn    func(fd uintptr)
}

func (z *zcReaper) init() {
	// Room for a batch of notifications: each is one cmsg holding a sock_extended_err plus the
	// offender address.
	z.oob = make([]byte, 16*unix.CmsgSpace(uapi.SizeofSockExtendedErr+unix.SizeofSockaddrInet6))
	z.reapFn = func(fd uintptr) { z.reap(int(fd)) }
}

// reap drains the error queue without blocking. One recvmsg returns one notification, which covers
// a range of sends.
func (z *zcReaper) reap(fd int) {
	z.err = nil
	for {
		z.hdr = unix.Msghdr{Control: &z.oob[0]}
		z.hdr.SetControllen(len(z.oob))
		_, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&z.hdr)), unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		switch e {
		case 0:
		case unix.EAGAIN, unix.EINTR:
			return
		default:
			z.err = os.NewSyscallError("recvmsg MSG_ERRQUEUE", e)
			return
		}
		n, copied, err := parseZCCompletions(z.oob[:z.hdr.Controllen])
		if err != nil {
			z.err = err
			return
		}
		z.completed += n
		z.copied += copied
	}
}
