// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package tx

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// errNotZerocopy is returned when the error queue holds something other than a zerocopy
// completion: a real socket error the sender must not swallow.
var errNotZerocopy = errors.New("error queue holds a socket error, not a zerocopy completion")

// parseZCCompletions parses the control messages of one MSG_ERRQUEUE recvmsg and returns how many
// sends the zerocopy notifications in it complete, and how many of those lie in ranges flagged
// SO_EE_CODE_ZEROCOPY_COPIED (the device could not send from user pages). That second figure is
// an estimate, not an exact count: the kernel extends the last queued notification without
// comparing codes (skb_zerocopy_notify_extend), so a range carries its first send's code. It is
// exact when every send is treated alike (loopback copies all: TestHostSend checks it on the real
// kernel); counting only flagged ranges would be a strict lower bound but useless there. It
// allocates nothing.
func parseZCCompletions(oob []byte) (n, copied uint64, err error) {
	it := zcIter{rem: oob}
	for {
		r, ok, err := it.next()
		if err != nil || !ok {
			return n, copied, err
		}
		// [lo, hi] is an inclusive range of send sequence numbers (u32, may wrap).
		c := uint64(r.hi-r.lo) + 1
		n += c
		if r.copied {
			copied += c
		}
	}
}

// zcRange is one zerocopy notification: sendmsg sequence numbers lo..hi (inclusive, u32 that may
// wrap) are done; copied says the kernel fell back to copying them.
type zcRange struct {
	lo, hi uint32
	copied bool
}

// zcIter walks the cmsgs of one MSG_ERRQUEUE recvmsg in place.
type zcIter struct{ rem []byte }

// next returns the next zerocopy range. ok is false at the end; a socket error that is not a
// zerocopy completion is returned as err.
func (it *zcIter) next() (r zcRange, ok bool, err error) {
	for len(it.rem) >= unix.SizeofCmsghdr {
		h, data, rem, perr := unix.ParseOneSocketControlMessage(it.rem)
		if perr != nil {
			return r, false, fmt.Errorf("parse error-queue message: %w", perr)
		}
		it.rem = rem
		if !(h.Level == unix.SOL_IP && h.Type == unix.IP_RECVERR) && !(h.Level == unix.SOL_IPV6 && h.Type == unix.IPV6_RECVERR) {
			continue
		}
		if len(data) < uapi.SizeofSockExtendedErr {
			return r, false, fmt.Errorf("parse error-queue message: sock_extended_err of %d bytes, want %d", len(data), uapi.SizeofSockExtendedErr)
		}
		errno := binary.NativeEndian.Uint32(data[0:])
		origin, code := data[4], data[6]
		if origin != unix.SO_EE_ORIGIN_ZEROCOPY || errno != 0 {
			return r, false, fmt.Errorf("%w: origin %d: %w", errNotZerocopy, origin, unix.Errno(errno))
		}
		r = zcRange{
			lo:     binary.NativeEndian.Uint32(data[8:]),
			hi:     binary.NativeEndian.Uint32(data[12:]),
			copied: code&unix.SO_EE_CODE_ZEROCOPY_COPIED != 0,
		}
		return r, true, nil
	}
	return r, false, nil
}
