// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package uapi

// udmabuf: include/uapi/linux/udmabuf.h (UDMABUF_CREATE since v4.20, UDMABUF_CREATE_LIST since v5.0).
const (
	// UDMABUF_CREATE is _IOW('u', 0x42, struct udmabuf_create): turn a range of a sealed memfd into a
	// dma-buf. Issued on /dev/udmabuf; the new dma-buf fd is the ioctl's return value.
	UDMABUF_CREATE = 0x40187542
	// UDMABUF_CREATE_LIST is _IOW('u', 0x43, struct udmabuf_create_list): the same for a list of ranges.
	UDMABUF_CREATE_LIST = 0x40087543
	// UDMABUF_FLAGS_CLOEXEC makes the returned dma-buf fd close-on-exec.
	UDMABUF_FLAGS_CLOEXEC = 0x1
)

// UdmabufCreate mirrors struct udmabuf_create (24 bytes). Offset and Size must be page aligned, and
// Memfd must be a shmem or hugetlbfs memfd sealed with F_SEAL_SHRINK and not F_SEAL_WRITE.
type UdmabufCreate struct {
	Memfd  uint32
	Flags  uint32
	Offset uint64
	Size   uint64
}

// SizeofUdmabufCreate is sizeof(struct udmabuf_create).
const SizeofUdmabufCreate = 24

// dma-buf CPU access: include/uapi/linux/dma-buf.h (DMA_BUF_IOCTL_SYNC since v4.6).
const (
	// DMA_BUF_IOCTL_SYNC is _IOW('b', 0, struct dma_buf_sync): bracket CPU access to a mapped dma-buf.
	DMA_BUF_IOCTL_SYNC = 0x40086200

	DMA_BUF_SYNC_READ  = 1 << 0
	DMA_BUF_SYNC_WRITE = 2 << 0
	DMA_BUF_SYNC_RW    = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE
	DMA_BUF_SYNC_START = 0 << 2
	DMA_BUF_SYNC_END   = 1 << 2
)

// DmaBufSync mirrors struct dma_buf_sync (8 bytes). x/sys/unix's IoctlSetPointerInt passes an int32,
// so the ioctl is issued raw with a pointer to this.
type DmaBufSync struct {
	Flags uint64
}

// SizeofDmaBufSync is sizeof(struct dma_buf_sync).
const SizeofDmaBufSync = 8
