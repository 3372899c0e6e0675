// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package zcrx

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// Support is what the running kernel offers for zcrx, found without touching any NIC.
type Support struct {
	// RecvZC: IORING_OP_RECV_ZC is a supported opcode (IORING_REGISTER_PROBE).
	RecvZC bool
	// Register is nil when IORING_REGISTER_ZCRX_IFQ reached the zcrx code (a deliberately
	// incomplete request was refused with EINVAL), else why it cannot: ErrNoZcrx (a kernel before
	// 6.15, or one built without CONFIG_IO_URING_ZCRX), or the errno (EPERM: no CAP_NET_ADMIN).
	Register error
	// Query is the kernel's IO_URING_QUERY_ZCRX answer; nil on kernels that do not answer it
	// (6.18 has IORING_REGISTER_QUERY but answers IO_URING_QUERY_ZCRX with EOPNOTSUPP).
	Query *uapi.IoUringQueryZcrx
	// Major and Minor are the running kernel's version (uname), for what the query cannot tell.
	Major, Minor int
}

// ErrNoZcrx: the kernel has no io_uring zero-copy receive.
var ErrNoZcrx = errors.New("this kernel has no io_uring zero-copy receive (it needs Linux 6.15 or later built with CONFIG_IO_URING_ZCRX=y)")

// DmabufAreas reports whether the kernel takes a dma-buf as the area (IORING_ZCRX_AREA_DMABUF):
// the query's answer, else the version that added it (6.16).
func (s Support) DmabufAreas() bool {
	if s.Query != nil {
		return s.Query.AreaFlags&uapi.IORING_ZCRX_AREA_DMABUF != 0
	}
	return s.Major > 6 || s.Major == 6 && s.Minor >= 16
}

// CopyStats reports whether the kernel counts copy fallbacks for us (zcrx_stats, Linux 7.x).
func (s Support) CopyStats() bool {
	return s.Query != nil && s.Query.Features&uapi.ZCRX_FEATURE_EVENT != 0
}

// Usable is nil when this kernel can run zcrx, else the reason.
func (s Support) Usable() error {
	if !s.RecvZC {
		return ErrNoZcrx
	}
	return s.Register
}

// Probe asks the running kernel what it supports: it sets up a small plain ring (no NIC, no
// memory pinned), probes its opcodes, and sends IORING_REGISTER_ZCRX_IFQ a request the zcrx code
// refuses with EINVAL (a ring without DEFER_TASKRUN), where a kernel without zcrx answers
// EOPNOTSUPP or EINVAL before it looks. The error is for io_uring itself being unusable.
func Probe() (Support, error) {
	var s Support
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &s.Major, &s.Minor)
	}
	var p uapi.IoUringParams
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 2, uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return s, setupError(e)
	}
	defer unix.Close(int(fd))
	var pr uapi.IoUringProbe
	if _, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, fd, uapi.IORING_REGISTER_PROBE, uintptr(unsafe.Pointer(&pr)), uintptr(len(pr.Ops)), 0, 0); e != 0 {
		return s, fmt.Errorf("io_uring: probe opcodes: %w", e)
	}
	s.RecvZC = int(pr.LastOp) >= uapi.IORING_OP_RECV_ZC && int(pr.OpsLen) > uapi.IORING_OP_RECV_ZC &&
		pr.Ops[uapi.IORING_OP_RECV_ZC].Flags&uapi.IO_URING_OP_SUPPORTED != 0
	var reg uapi.IoUringZcrxIfqReg
	_, _, e = unix.Syscall6(unix.SYS_IO_URING_REGISTER, fd, uapi.IORING_REGISTER_ZCRX_IFQ, uintptr(unsafe.Pointer(&reg)), 1, 0, 0)
	switch {
	case !s.RecvZC:
		// Before 6.15 register opcode 32 is unknown, which is EINVAL too.
		s.Register = ErrNoZcrx
	case e == unix.EINVAL:
		s.Register = nil
	case e == unix.EOPNOTSUPP:
		s.Register = ErrNoZcrx
	case e == unix.EPERM:
		s.Register = fmt.Errorf("IORING_REGISTER_ZCRX_IFQ: %w (zcrx needs CAP_NET_ADMIN: run as root)", e)
	case e == 0:
		s.Register = errors.New("IORING_REGISTER_ZCRX_IFQ accepted an empty request on a ring without DEFER_TASKRUN (unexpected kernel behaviour)")
	default:
		s.Register = fmt.Errorf("IORING_REGISTER_ZCRX_IFQ: %w", e)
	}
	var q uapi.IoUringQueryZcrx
	h := uapi.IoUringQueryHdr{QueryData: uint64(uintptr(unsafe.Pointer(&q))), QueryOp: uapi.IO_URING_QUERY_ZCRX, Size: uint32(unsafe.Sizeof(q))}
	_, _, e = unix.Syscall6(unix.SYS_IO_URING_REGISTER, ^uintptr(0), uapi.IORING_REGISTER_QUERY, uintptr(unsafe.Pointer(&h)), 0, 0, 0)
	if e == 0 && h.Result >= 0 {
		s.Query = &q
	}
	return s, nil
}
