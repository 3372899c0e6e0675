// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package uapi

import "structs"

// Devmem TCP socket values x/sys/unix lacks: include/linux/errno.h and net/core/sock.c (v6.15).
// Everything else of the socket interface (SOL_*, SO_*, SCM_DEVMEM_*, MSG_*, SO_EE_*, *_RECVERR,
// struct sock_extended_err) comes from golang.org/x/sys/unix.
const (
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

// SizeofSockExtendedErr is sizeof(struct sock_extended_err) (include/uapi/linux/errqueue.h), the
// payload of an IP_RECVERR/IPV6_RECVERR cmsg; x/sys has the struct (unix.SockExtendedErr) but not its size.
const SizeofSockExtendedErr = 16
