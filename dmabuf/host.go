// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package dmabuf

import (
	"fmt"
	"io"
)

// Host is plain process memory. It has no dma-buf fd: it is the host-memory baseline and the
// backing store of the devmem socket simulator.
type Host struct {
	b []byte
}

// NewHost allocates size bytes of ordinary memory.
func NewHost(size int64) (*Host, error) {
	if size <= 0 {
		return nil, fmt.Errorf("host buffer: size %d must be positive", size)
	}
	return &Host{b: make([]byte, size)}, nil
}

func (h *Host) FD() int                   { return -1 }
func (h *Host) Size() int64               { return int64(len(h.b)) }
func (h *Host) Kind() string              { return "host" }
func (h *Host) Bytes() []byte             { return h.b }
func (h *Host) BeginCPU(write bool) error { return nil }
func (h *Host) EndCPU(write bool) error   { return nil }
func (h *Host) Close() error              { h.b = nil; return nil }

func (h *Host) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(h.b)) {
		return 0, fmt.Errorf("host buffer: read at %d outside [0,%d]", off, len(h.b))
	}
	n := copy(p, h.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *Host) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(h.b)) {
		return 0, fmt.Errorf("host buffer: write of %d bytes at %d outside [0,%d]", len(p), off, len(h.b))
	}
	return copy(h.b[off:], p), nil
}
