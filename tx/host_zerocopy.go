package tx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
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
	z.oob = make([]byte, 16*unix.CmsgSpace(sizeofSockExtendedErr+unix.SizeofSockaddrInet6))
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

// errNotZerocopy is returned when the error queue holds something other than a zerocopy
// completion: a real socket error the sender must not swallow.
var errNotZerocopy = errors.New("error queue holds a socket error, not a zerocopy completion")

// parseZCCompletions parses the control messages of one MSG_ERRQUEUE recvmsg and returns how many
// sends the zerocopy notifications in it complete, and how many of those the kernel copied
// (SO_EE_CODE_ZEROCOPY_COPIED: the device could not send from user pages). It allocates nothing.
func parseZCCompletions(oob []byte) (n, copied uint64, err error) {
	for len(oob) > 0 {
		h, data, rest, perr := unix.ParseOneSocketControlMessage(oob)
		if perr != nil {
			return n, copied, fmt.Errorf("parse zerocopy completion: %w", perr)
		}
		oob = rest
		if !(h.Level == unix.SOL_IP && h.Type == unix.IP_RECVERR) && !(h.Level == unix.SOL_IPV6 && h.Type == unix.IPV6_RECVERR) {
			continue
		}
		if len(data) < sizeofSockExtendedErr {
			return n, copied, fmt.Errorf("parse zerocopy completion: sock_extended_err of %d bytes, want %d", len(data), sizeofSockExtendedErr)
		}
		// struct sock_extended_err: errno u32, origin u8, type u8, code u8, pad u8, info u32, data u32.
		errno := binary.NativeEndian.Uint32(data[0:])
		origin, code := data[4], data[6]
		lo, hi := binary.NativeEndian.Uint32(data[8:]), binary.NativeEndian.Uint32(data[12:])
		if origin != unix.SO_EE_ORIGIN_ZEROCOPY || errno != 0 {
			return n, copied, fmt.Errorf("%w: origin %d: %w", errNotZerocopy, origin, unix.Errno(errno))
		}
		// [lo, hi] is an inclusive range of send sequence numbers (u32, may wrap).
		c := uint64(hi-lo) + 1
		n += c
		if code&unix.SO_EE_CODE_ZEROCOPY_COPIED != 0 {
			copied += c
		}
	}
	return n, copied, nil
}

// sizeofSockExtendedErr is sizeof(struct sock_extended_err) (linux/errqueue.h), unix.SockExtendedErr.
const sizeofSockExtendedErr = int(unsafe.Sizeof(unix.SockExtendedErr{}))
