// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvTrunc is recv(fd, p, len(p), MSG_TRUNC): the kernel consumes up to len(p) bytes without
// copying them and returns how many. A raw syscall, because unix.Recvfrom asks for and decodes a
// source address on every call, which allocates.
func recvTrunc(fd int, p []byte) (int, error) {
	r, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_TRUNC, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
