// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package dmabuf defines the memory that devmem RX fills and devmem TX sends from, as the engines see
// it. Implementations: udmabuf (host pages behind a real dma-buf), gpu (CUDA device memory, behind the
// cuda build tag) and Host (plain memory, no dma-buf: the baseline and the simulator's backing).
package dmabuf

// Buffer is one dma-buf (or, for Host, plain memory) of Size bytes.
//
// ReadAt and WriteAt bracket the CPU access with whatever synchronisation the provider needs
// (DMA_BUF_IOCTL_SYNC for udmabuf, a device copy for GPU memory); they never allocate, so the engines
// can call them per frag. Implementations are safe for use by one goroutine at a time.
type Buffer interface {
	// FD is the dma-buf file descriptor to pass to bind-rx/bind-tx, or -1 when there is none.
	FD() int
	// Size is the buffer's length in bytes.
	Size() int64
	// ReadAt copies len(p) bytes at off out of the buffer into p, for validation.
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt copies p into the buffer at off, for filling the TX pattern.
	WriteAt(p []byte, off int64) (int, error)
	// Kind names the provider: "host", "udmabuf" or "cuda".
	Kind() string
	// Close releases the buffer and its file descriptors.
	Close() error
}

// Mapped is implemented by buffers whose memory the CPU can address directly (host, udmabuf), so
// validation can read in place. Bytes is valid until Close; callers bracket access with BeginCPU and
// EndCPU.
type Mapped interface {
	Buffer
	Bytes() []byte
	BeginCPU(write bool) error
	EndCPU(write bool) error
}
