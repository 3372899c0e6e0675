// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package gpu exports CUDA device memory as a dma-buf, for devmem RX into and TX from GPU memory.
// It loads libcuda.so.1 at run time through purego (no cgo), and only in binaries built with
// -tags cuda: loading it makes the binary dynamically linked, and the default ncdevmem stays static.
// Without the tag every entry point returns ErrNoCUDA.
//
// Requirements: an NVIDIA GPU whose driver exports dma-buf (the open kernel modules, CUDA 11.7 or
// later; CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED is checked) and read-write access to /dev/nvidia*.
// The package does not import dmabuf (dmabuf.Open imports it); *Buffer satisfies dmabuf.Buffer.
package gpu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNoCUDA is returned by every entry point of a binary built without the cuda tag.
var ErrNoCUDA = errors.New("built without CUDA support: rebuild with -tags cuda")

// New allocates size bytes of device memory on device (a CUDA ordinal such as "0", or a PCI bus id
// such as "0000:3b:00.0"; empty means "0") and exports it as a dma-buf. size must be a positive
// multiple of the host page size. Errors carry cuGetErrorString's text and the fix; on error
// nothing is left allocated.
func New(size int64, device string) (*Buffer, error) {
	d, err := loadDriver()
	if err != nil {
		return nil, err
	}
	return newBuffer(d, size, device, int64(os.Getpagesize()))
}

// Available reports whether New can work here: nil when libcuda loads, initialises and at least one
// device can export dma-buf, or the error explaining why not (ErrNoCUDA without the cuda tag).
func Available() error {
	d, err := loadDriver()
	if err != nil {
		return err
	}
	return available(d)
}

// Buffer is CUDA device memory exported as a dma-buf. It implements dmabuf.Buffer but not
// dmabuf.Mapped: the CPU reaches it only through ReadAt and WriteAt, each one synchronous
// cuMemcpy, so callers should validate and fill in large ranges rather than per frag. A Buffer is
// safe for use by one goroutine at a time.
type Buffer struct {
	d      *driver
	dev    int32
	name   string
	ctx    uintptr
	dptr   uint64
	size   int64
	fd     int
	pcie   bool
	closed bool
}

var errClosed = errors.New("gpu: buffer is closed")

// CheckSize reports whether New would accept size, without loading anything: it must be a
// positive multiple of the host page size. It works in every build, so callers can validate flags
// before touching the NIC.
func CheckSize(size int64) error {
	return checkSize(size, int64(os.Getpagesize()))
}

func checkSize(size, pageSize int64) error {
	if size <= 0 {
		return fmt.Errorf("gpu: size %d must be positive", size)
	}
	// cuMemGetHandleForAddressRange wants a host-page aligned range.
	if size%pageSize != 0 {
		return fmt.Errorf("gpu: size %d is not a multiple of the host page size %d (use %d)",
			size, pageSize, (size+pageSize-1)/pageSize*pageSize)
	}
	return nil
}

func newBuffer(d *driver, size int64, device string, pageSize int64) (_ *Buffer, err error) {
	if err := checkSize(size, pageSize); err != nil {
		return nil, err
	}
	if err := d.check("cuInit", d.init(0)); err != nil {
		return nil, err
	}
	dev, err := d.device(device)
	if err != nil {
		return nil, err
	}
	b := &Buffer{d: d, dev: dev, name: d.deviceName(dev), size: size, fd: -1}
	what := "device " + b.describe()
	var dmabuf int32
	if err := d.check("cuDeviceGetAttribute(DMA_BUF_SUPPORTED) on "+what, d.deviceGetAttribute(&dmabuf, cuDeviceAttributeDMABufSupported, dev)); err != nil {
		return nil, err
	}
	if dmabuf == 0 {
		return nil, fmt.Errorf("gpu: %s cannot export dma-buf (CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED is 0: use the NVIDIA open kernel modules and a driver for CUDA 11.7 or later)", what)
	}

	// A context is current per OS thread, so every call that needs it runs on a locked thread
	// right after making it current.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.check("cuDevicePrimaryCtxRetain on "+what, d.primaryCtxRetain(&b.ctx, dev)); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.primaryCtxRelease(dev)
		}
	}()
	if err := d.check("cuCtxSetCurrent on "+what, d.ctxSetCurrent(b.ctx)); err != nil {
		return nil, err
	}
	if r := d.memAlloc(&b.dptr, uintptr(size)); r != cudaSuccess {
		e := d.errorf(r, "cuMemAlloc of %d bytes on %s", size, what)
		if r == cudaErrorOutOfMemory {
			return nil, fmt.Errorf("%w (use a smaller buffer or free GPU memory: nvidia-smi lists its users)", e)
		}
		return nil, e
	}
	defer func() {
		if err != nil {
			d.memFree(b.dptr)
		}
	}()
	if b.dptr%uint64(pageSize) != 0 {
		return nil, fmt.Errorf("gpu: cuMemAlloc on %s returned %#x, which is not host-page aligned, so it cannot be exported as a dma-buf", what, b.dptr)
	}
	var fd int32 = -1
	r := d.memGetHandleForAddressRange(&fd, b.dptr, uintptr(size), cuMemRangeHandleTypeDMABufFD, cuMemRangeFlagDMABufMappingTypePCIe)
	b.pcie = r == cudaSuccess
	if r != cudaSuccess {
		// Drivers before 12.8 do not know the PCIe mapping flag; the plain export works there.
		pcieErr := d.errorf(r, "with the PCIe mapping flag")
		if r2 := d.memGetHandleForAddressRange(&fd, b.dptr, uintptr(size), cuMemRangeHandleTypeDMABufFD, 0); r2 != cudaSuccess {
			err := fmt.Errorf("%w; %v", d.errorf(r2, "cuMemGetHandleForAddressRange(DMA_BUF_FD) of %d bytes on %s", size, what), pcieErr)
			if r2 == cudaErrorNotSupported {
				err = fmt.Errorf("%w (dma-buf export needs the NVIDIA open kernel modules and CUDA 11.7 or later)", err)
			}
			return nil, err
		}
	}
	b.fd = int(fd)
	// The driver's fd does not promise close-on-exec; child processes must not pin GPU memory.
	unix.CloseOnExec(b.fd)
	return b, nil
}

func available(d *driver) error {
	if err := d.check("cuInit", d.init(0)); err != nil {
		return err
	}
	var n int32
	if err := d.check("cuDeviceGetCount", d.deviceGetCount(&n)); err != nil {
		return err
	}
	if n == 0 {
		return errors.New("gpu: no CUDA devices (check nvidia-smi)")
	}
	var names []string
	for i := int32(0); i < n; i++ {
		var dev, v int32
		if d.deviceGet(&dev, i) != cudaSuccess {
			continue
		}
		if d.deviceGetAttribute(&v, cuDeviceAttributeDMABufSupported, dev) == cudaSuccess && v != 0 {
			return nil
		}
		names = append(names, strconv.Itoa(int(i))+" ("+d.deviceName(dev)+")")
	}
	return fmt.Errorf("gpu: no CUDA device can export dma-buf (%s: CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED is 0; use the NVIDIA open kernel modules and a driver for CUDA 11.7 or later)", strings.Join(names, ", "))
}

func (b *Buffer) describe() string {
	if b.name == "" {
		return strconv.Itoa(int(b.dev))
	}
	return strconv.Itoa(int(b.dev)) + " (" + b.name + ")"
}

// FD returns the dma-buf file descriptor to pass to bind-rx/bind-tx, or -1 after Close.
func (b *Buffer) FD() int { return b.fd }

// Size returns the buffer's length in bytes.
func (b *Buffer) Size() int64 { return b.size }

// Kind returns "cuda".
func (b *Buffer) Kind() string { return "cuda" }

// Device names the GPU the memory lives on: its ordinal and, when the driver reports it, its name.
func (b *Buffer) Device() string { return b.describe() }

// PCIeMapping reports whether the driver exported the dma-buf with the PCIe mapping type
// (CU_MEM_RANGE_FLAG_DMA_BUF_MAPPING_TYPE_PCIE, drivers 12.8 and later).
func (b *Buffer) PCIeMapping() bool { return b.pcie }

// ReadAt copies len(p) bytes at off from device memory into p with one synchronous
// cuMemcpyDtoH. Like io.ReaderAt it returns io.EOF when fewer than len(p) bytes remain. Each call
// costs a device round trip, so read large ranges. It allocates nothing.
func (b *Buffer) ReadAt(p []byte, off int64) (int, error) {
	if b.closed {
		return 0, errClosed
	}
	if off < 0 || off > b.size {
		return 0, fmt.Errorf("gpu: read at %d outside [0,%d]", off, b.size)
	}
	n := len(p)
	if rest := b.size - off; int64(n) > rest {
		n = int(rest)
	}
	if n > 0 {
		runtime.LockOSThread()
		r := b.d.ctxSetCurrent(b.ctx)
		if r == cudaSuccess {
			r = b.d.memcpyDtoH(&p[0], b.dptr+uint64(off), uintptr(n))
		}
		runtime.UnlockOSThread()
		if r != cudaSuccess {
			return 0, b.d.errorf(r, "cuMemcpyDtoH of %d bytes at %d", n, off)
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt copies p into device memory at off with one synchronous cuMemcpyHtoD. Writing past the
// end is an error and writes nothing. It allocates nothing.
func (b *Buffer) WriteAt(p []byte, off int64) (int, error) {
	if b.closed {
		return 0, errClosed
	}
	if off < 0 || off > b.size || int64(len(p)) > b.size-off {
		return 0, fmt.Errorf("gpu: write of %d bytes at %d outside [0,%d]", len(p), off, b.size)
	}
	if len(p) == 0 {
		return 0, nil
	}
	runtime.LockOSThread()
	r := b.d.ctxSetCurrent(b.ctx)
	if r == cudaSuccess {
		r = b.d.memcpyHtoD(b.dptr+uint64(off), &p[0], uintptr(len(p)))
	}
	runtime.UnlockOSThread()
	if r != cudaSuccess {
		return 0, b.d.errorf(r, "cuMemcpyHtoD of %d bytes at %d", len(p), off)
	}
	return len(p), nil
}

// Close closes the dma-buf fd, frees the device memory and releases the primary context. Unbind
// the NIC (close the binding) first: the device memory is freed here, whoever still maps it.
// Close is idempotent.
func (b *Buffer) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	if b.fd >= 0 {
		if err := unix.Close(b.fd); err != nil {
			errs = append(errs, fmt.Errorf("gpu: close dma-buf: %w", err))
		}
		b.fd = -1
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if r := b.d.ctxSetCurrent(b.ctx); r != cudaSuccess {
		errs = append(errs, b.d.errorf(r, "cuCtxSetCurrent"))
	} else if r := b.d.memFree(b.dptr); r != cudaSuccess {
		errs = append(errs, b.d.errorf(r, "cuMemFree of %d bytes", b.size))
	}
	if r := b.d.primaryCtxRelease(b.dev); r != cudaSuccess {
		errs = append(errs, b.d.errorf(r, "cuDevicePrimaryCtxRelease"))
	}
	return errors.Join(errs...)
}
