// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package udmabuf

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// This file holds the only two raw ioctls of the package; they take pointers, so they live apart
// from the logic that decides what to ask for.

// ioctlCreate issues UDMABUF_CREATE on the /dev/udmabuf fd dev for the first size bytes of memfd
// and returns the new dma-buf fd (close-on-exec).
func ioctlCreate(dev, memfd int, size int64) (int, error) {
	arg := uapi.UdmabufCreate{
		Memfd: uint32(memfd),
		Flags: uapi.UDMABUF_FLAGS_CLOEXEC,
		Size:  uint64(size),
	}
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(dev), uapi.UDMABUF_CREATE, uintptr(unsafe.Pointer(&arg)))
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// ioctlSync issues DMA_BUF_IOCTL_SYNC on the dma-buf fd with arg, retrying on EINTR and EAGAIN
// (dma_buf_begin_cpu_access can wait for fences and be interrupted). arg is caller-owned so the
// call allocates nothing.
func ioctlSync(fd int, arg *uapi.DmaBufSync) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uapi.DMA_BUF_IOCTL_SYNC, uintptr(unsafe.Pointer(arg)))
		switch errno {
		case 0:
			return nil
		case unix.EINTR, unix.EAGAIN:
			continue
		default:
			return errno
		}
	}
}
