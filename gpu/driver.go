// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package gpu

import (
	"fmt"
	"strconv"
	"strings"
)

// CUDA driver API values (cuda.h). They are the driver's, not the kernel's, so they live here
// rather than in internal/uapi.
const (
	cudaSuccess            cuResult = 0
	cudaErrorInvalidValue  cuResult = 1
	cudaErrorOutOfMemory   cuResult = 2
	cudaErrorNoDevice      cuResult = 100
	cudaErrorInvalidDevice cuResult = 101
	cudaErrorNotSupported  cuResult = 801

	cuDeviceAttributeDMABufSupported    = 124 // CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED
	cuMemRangeHandleTypeDMABufFD        = 1   // CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD
	cuMemRangeFlagDMABufMappingTypePCIe = 1   // CU_MEM_RANGE_FLAG_DMA_BUF_MAPPING_TYPE_PCIE (12.8+)
)

// cuResult is a CUresult.
type cuResult int32

// driver is the table of libcuda entry points this package uses, with Go types the loader binds
// to the C ABI. The cuda-tagged loader fills it from libcuda.so.1; tests fill it with fakes, so
// all the logic runs without a GPU.
type driver struct {
	init                        func(flags uint32) cuResult
	deviceGetCount              func(n *int32) cuResult
	deviceGet                   func(dev *int32, ordinal int32) cuResult
	deviceGetByPCIBusID         func(dev *int32, busID string) cuResult
	deviceGetAttribute          func(v *int32, attr int32, dev int32) cuResult
	deviceGetName               func(name []byte, dev int32) cuResult
	primaryCtxRetain            func(ctx *uintptr, dev int32) cuResult
	primaryCtxRelease           func(dev int32) cuResult
	ctxSetCurrent               func(ctx uintptr) cuResult
	memAlloc                    func(dptr *uint64, size uintptr) cuResult
	memFree                     func(dptr uint64) cuResult
	memGetHandleForAddressRange func(fd *int32, dptr uint64, size uintptr, handleType int32, flags uint64) cuResult
	memcpyHtoD                  func(dst uint64, src *byte, n uintptr) cuResult
	memcpyDtoH                  func(dst *byte, src uint64, n uintptr) cuResult
	// errorName and errorString return cuGetErrorName's and cuGetErrorString's text, or "" for
	// an unknown code.
	errorName   func(r cuResult) string
	errorString func(r cuResult) string
}

// Error is a failed CUDA driver call: the call, the CUresult, and the driver's own words.
type Error struct {
	Op     string // the call and what it was for
	Result int32  // the CUresult
	Name   string // cuGetErrorName, e.g. CUDA_ERROR_OUT_OF_MEMORY
	Text   string // cuGetErrorString, e.g. "out of memory"
}

// Error formats the failure as "gpu: OP: NAME (TEXT)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("gpu: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Name != "" {
		b.WriteString(e.Name)
	} else {
		b.WriteString("CUresult ")
		b.WriteString(strconv.Itoa(int(e.Result)))
	}
	if e.Text != "" {
		b.WriteString(" (")
		b.WriteString(e.Text)
		b.WriteString(")")
	}
	return b.String()
}

// errorf builds the *Error for result r of the call described by format.
func (d *driver) errorf(r cuResult, format string, args ...any) *Error {
	e := &Error{Op: fmt.Sprintf(format, args...), Result: int32(r)}
	if d.errorName != nil {
		e.Name = d.errorName(r)
	}
	if d.errorString != nil {
		e.Text = d.errorString(r)
	}
	return e
}

// check turns a non-success result of op into an error with advice for the common causes.
func (d *driver) check(op string, r cuResult) error {
	if r == cudaSuccess {
		return nil
	}
	err := d.errorf(r, "%s", op)
	switch r {
	case cudaErrorNoDevice:
		return fmt.Errorf("%w (no usable NVIDIA GPU: check nvidia-smi and that this user can open /dev/nvidia*)", err)
	}
	return err
}

// device resolves the --device string: a CUDA ordinal, or a PCI bus id.
func (d *driver) device(s string) (int32, error) {
	if s == "" {
		s = "0"
	}
	var dev int32
	if ord, err := strconv.ParseInt(s, 10, 32); err == nil {
		var n int32
		if err := d.check("cuDeviceGetCount", d.deviceGetCount(&n)); err != nil {
			return 0, err
		}
		if ord < 0 || ord >= int64(n) {
			return 0, fmt.Errorf("gpu: device %d out of range: this host has %d CUDA devices (use an ordinal below %d or a PCI bus id; nvidia-smi -L lists them)", ord, n, n)
		}
		if err := d.check("cuDeviceGet("+s+")", d.deviceGet(&dev, int32(ord))); err != nil {
			return 0, err
		}
		return dev, nil
	}
	if !strings.Contains(s, ":") {
		return 0, fmt.Errorf("gpu: device %q is neither a CUDA ordinal nor a PCI bus id like 0000:3b:00.0", s)
	}
	if r := d.deviceGetByPCIBusID(&dev, s); r != cudaSuccess {
		err := d.errorf(r, "cuDeviceGetByPCIBusId(%q)", s)
		if r == cudaErrorInvalidValue || r == cudaErrorInvalidDevice {
			return 0, fmt.Errorf("%w (no CUDA device at that PCI bus id: nvidia-smi --query-gpu=pci.bus_id --format=csv lists them)", err)
		}
		return 0, err
	}
	return dev, nil
}

// deviceName returns the device's marketing name, or "" if the driver will not say.
func (d *driver) deviceName(dev int32) string {
	var buf [256]byte
	if d.deviceGetName == nil || d.deviceGetName(buf[:], dev) != cudaSuccess {
		return ""
	}
	for i, c := range buf {
		if c == 0 {
			return string(buf[:i])
		}
	}
	return string(buf[:])
}
