// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package tx

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/sockcall"
)

// DevmemSys is the seam between the devmem TX engine and the kernel: the socket calls the engine
// makes on a flow's fd. Kernel is the real one; internal/devmemsim stands in for a devmem kernel
// in tests. Implementations must not allocate on success.
type DevmemSys interface {
	// Sendmsg is sendmsg(2) with a caller-built msghdr whose iovec bases may be dma-buf offsets.
	Sendmsg(fd int, msg *unix.Msghdr, flags int) (int, error)
	// Recvmsg is recvmsg(2) (the engine reads its error queue with it).
	Recvmsg(fd int, msg *unix.Msghdr, flags int) (int, error)
	// Setsockopt is setsockopt(2) with a raw value; it returns the syscall's result.
	Setsockopt(fd, level, name int, val []byte) (int, error)
}

// Kernel is the DevmemSys of the running kernel: raw syscalls, so iovecs holding offsets go to the
// kernel untouched and nothing is allocated.
type Kernel struct{}

// Sendmsg implements DevmemSys.
func (Kernel) Sendmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	return sockcall.Sendmsg(fd, msg, flags)
}

// Recvmsg implements DevmemSys.
func (Kernel) Recvmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	return sockcall.Recvmsg(fd, msg, flags)
}

// Setsockopt implements DevmemSys.
func (Kernel) Setsockopt(fd, level, name int, val []byte) (int, error) {
	return sockcall.Setsockopt(fd, level, name, val)
}

// rawIovec is struct iovec with an integer base: devmem TX iovecs carry offsets into the dma-buf,
// which must not sit in a pointer field the garbage collector would inspect. An array of them
// holds no pointers, so the GC never scans it.
type rawIovec struct {
	base uintptr
	len  uint64
}

// setRawIov points msg at iovs[:n].
func setRawIov(msg *unix.Msghdr, iovs []rawIovec, n int) {
	msg.Iov = (*unix.Iovec)(unsafe.Pointer(&iovs[0]))
	msg.SetIovlen(n)
}

// dmabufIDCmsg builds the SCM_DEVMEM_DMABUF cmsg carrying the TX binding id into b, which must
// hold CMSG_SPACE(4) bytes.
func dmabufIDCmsg(b []byte, id uint32) []byte {
	b = b[:unix.CmsgSpace(4)]
	clear(b)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_SOCKET
	h.Type = unix.SCM_DEVMEM_DMABUF
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], id)
	return b
}
