// SPDX-License-Identifier: MIT

package uapi

import "structs"

// Devmem TCP socket interface: include/uapi/asm-generic/socket.h, include/uapi/linux/uio.h,
// include/linux/socket.h and net/core/sock.c (v6.12 RX, v6.15 TX and DONTNEED limits). The values
// are the x86_64/asm-generic ones; parisc renumbers the SO_* ones (0x404E..0x4050). Where
// golang.org/x/sys/unix has the same constant, socket_test.go checks that both agree.
const (
	SOL_SOCKET          = 1         //nolint:revive // kernel spelling
	SO_DEVMEM_LINEAR    = 78        //nolint:revive // cmsg type: payload copied into the iov
	SCM_DEVMEM_LINEAR   = 78        //nolint:revive // same value as SO_DEVMEM_LINEAR
	SO_DEVMEM_DMABUF    = 79        //nolint:revive // cmsg type: payload left in the dma-buf
	SCM_DEVMEM_DMABUF   = 79        //nolint:revive // RX frag cmsg; TX cmsg carrying the u32 binding id
	SO_DEVMEM_DONTNEED  = 80        //nolint:revive // setsockopt: return frag tokens
	SO_ZEROCOPY         = 60        //nolint:revive // MSG_ZEROCOPY opt-in
	SO_BINDTODEVICE     = 25        //nolint:revive
	SO_INCOMING_NAPI_ID = 56        //nolint:revive // getsockopt: NAPI id of the last skb's queue
	MSG_SOCK_DEVMEM     = 0x2000000 //nolint:revive // recvmsg flag (include/linux/socket.h)
	MSG_ZEROCOPY        = 0x4000000 //nolint:revive
	MSG_ERRQUEUE        = 0x2000    //nolint:revive

	// SO_EE_ORIGIN_ZEROCOPY marks a MSG_ZEROCOPY completion on the error queue
	// (include/uapi/linux/errqueue.h); SO_EE_CODE_ZEROCOPY_COPIED in ee_code says the kernel fell
	// back to copying.
	SO_EE_ORIGIN_ZEROCOPY      = 5  //nolint:revive
	SO_EE_CODE_ZEROCOPY_COPIED = 1  //nolint:revive
	SOL_IP                     = 0  //nolint:revive
	IP_RECVERR                 = 11 //nolint:revive
	SOL_IPV6                   = 41 //nolint:revive
	IPV6_RECVERR               = 25 //nolint:revive

	// ETOOSMALL (include/linux/errno.h, kernel-internal, leaks to userspace since v6.15's
	// put_cmsg_notrunc): recvmsg(MSG_SOCK_DEVMEM) could not fit even one cmsg in the control buffer.
	ETOOSMALL = 525

	// MAX_DONTNEED_TOKENS bounds the dmabuf_token ranges of one SO_DEVMEM_DONTNEED call (optlen must
	// be a multiple of 8 and at most 128*8, else EINVAL); MAX_DONTNEED_FRAGS bounds the frags one call
	// inspects (net/core/sock.c, v6.15).
	MAX_DONTNEED_TOKENS = 128  //nolint:revive
	MAX_DONTNEED_FRAGS  = 1024 //nolint:revive
)

// DmabufCmsg is struct dmabuf_cmsg (include/uapi/linux/uio.h, v6.12), the payload of both
// SCM_DEVMEM_DMABUF and SCM_DEVMEM_LINEAR (where only FragSize is meaningful). 24 bytes.
type DmabufCmsg struct {
	_          structs.HostLayout
	FragOffset uint64 // offset of the frag in the dma-buf
	FragSize   uint32
	FragToken  uint32 // return through SO_DEVMEM_DONTNEED
	DmabufID   uint32 // binding id the frag belongs to
	Flags      uint32 // reserved, 0
}

// SizeofDmabufCmsg is sizeof(struct dmabuf_cmsg).
const SizeofDmabufCmsg = 24

// DmabufToken is struct dmabuf_token (include/uapi/linux/uio.h, v6.12): a range of consecutive frag
// tokens handed back with SO_DEVMEM_DONTNEED. 8 bytes.
type DmabufToken struct {
	_          structs.HostLayout
	TokenStart uint32
	TokenCount uint32
}

// SizeofDmabufToken is sizeof(struct dmabuf_token).
const SizeofDmabufToken = 8

// SockExtendedErr is struct sock_extended_err (include/uapi/linux/errqueue.h): the payload of an
// IP_RECVERR/IPV6_RECVERR cmsg; for MSG_ZEROCOPY completions Origin is SO_EE_ORIGIN_ZEROCOPY and
// [Info, Data] is the inclusive range of completed sendmsg sequence numbers. 16 bytes.
type SockExtendedErr struct {
	_      structs.HostLayout
	Errno  uint32
	Origin uint8
	Type   uint8
	Code   uint8
	Pad    uint8
	Info   uint32
	Data   uint32
}

// SizeofSockExtendedErr is sizeof(struct sock_extended_err).
const SizeofSockExtendedErr = 16
