// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package gpu

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
)

// fakeCUDA is a driver table backed by Go memory: two devices, one device allocation region,
// real fds (of /dev/null) standing in for the exported dma-bufs, and counters that show whether
// every retain, allocation and fd was given back.
type fakeCUDA struct {
	initResult   cuResult
	devices      int32
	busIDs       map[string]int32
	dmabuf       []int32 // DMA_BUF_SUPPORTED per device
	allocResult  cuResult
	pcieResult   cuResult // result of an export with the PCIe flag
	exportResult cuResult // result of an export without it
	copyResult   cuResult
	alignOff     uint64 // added to allocation addresses, to fake a misaligned one

	mem      []byte
	base     uint64
	current  uintptr
	retained map[int32]int
	allocs   int
	exports  []uint64 // flags of each export attempt
}

const fakeBase = 0x7f0000000000

func newFake() *fakeCUDA {
	return &fakeCUDA{
		devices:  2,
		busIDs:   map[string]int32{"0000:3b:00.0": 0, "0000:5e:00.0": 1},
		dmabuf:   []int32{1, 1},
		retained: map[int32]int{},
	}
}

var fakeErrors = map[cuResult][2]string{
	cudaErrorInvalidValue:  {"CUDA_ERROR_INVALID_VALUE", "invalid argument"},
	cudaErrorOutOfMemory:   {"CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	cudaErrorNoDevice:      {"CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
	cudaErrorInvalidDevice: {"CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
	cudaErrorNotSupported:  {"CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
}

func (f *fakeCUDA) ctx(dev int32) uintptr { return uintptr(0x1000 + dev) }

func (f *fakeCUDA) driver() *driver {
	return &driver{
		init: func(flags uint32) cuResult { return f.initResult },
		deviceGetCount: func(n *int32) cuResult {
			*n = f.devices
			return cudaSuccess
		},
		deviceGet: func(dev *int32, ord int32) cuResult {
			if ord < 0 || ord >= f.devices {
				return cudaErrorInvalidDevice
			}
			*dev = ord
			return cudaSuccess
		},
		deviceGetByPCIBusID: func(dev *int32, id string) cuResult {
			d, ok := f.busIDs[id]
			if !ok {
				return cudaErrorInvalidValue
			}
			*dev = d
			return cudaSuccess
		},
		deviceGetAttribute: func(v *int32, attr, dev int32) cuResult {
			if attr != cuDeviceAttributeDMABufSupported {
				return cudaErrorInvalidValue
			}
			*v = f.dmabuf[dev]
			return cudaSuccess
		},
		deviceGetName: func(name []byte, dev int32) cuResult {
			copy(name, "Fake GPU\x00")
			return cudaSuccess
		},
		primaryCtxRetain: func(ctx *uintptr, dev int32) cuResult {
			f.retained[dev]++
			*ctx = f.ctx(dev)
			return cudaSuccess
		},
		primaryCtxRelease: func(dev int32) cuResult {
			f.retained[dev]--
			return cudaSuccess
		},
		ctxSetCurrent: func(ctx uintptr) cuResult {
			f.current = ctx
			return cudaSuccess
		},
		memAlloc: func(dptr *uint64, size uintptr) cuResult {
			if f.current == 0 {
				return cudaErrorInvalidValue
			}
			if f.allocResult != cudaSuccess {
				return f.allocResult
			}
			f.allocs++
			f.mem = make([]byte, size)
			f.base = fakeBase + f.alignOff
			*dptr = f.base
			return cudaSuccess
		},
		memFree: func(dptr uint64) cuResult {
			if dptr != f.base || f.mem == nil {
				return cudaErrorInvalidValue
			}
			f.allocs--
			f.mem = nil
			return cudaSuccess
		},
		memGetHandleForAddressRange: func(fd *int32, dptr uint64, size uintptr, typ int32, flags uint64) cuResult {
			f.exports = append(f.exports, flags)
			if typ != cuMemRangeHandleTypeDMABufFD || dptr != f.base || int(size) != len(f.mem) {
				return cudaErrorInvalidValue
			}
			r := f.exportResult
			if flags == cuMemRangeFlagDMABufMappingTypePCIe {
				r = f.pcieResult
			}
			if r != cudaSuccess {
				return r
			}
			n, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
			if err != nil {
				return cudaErrorOutOfMemory
			}
			*fd = int32(n)
			return cudaSuccess
		},
		memcpyHtoD: func(dst uint64, src *byte, n uintptr) cuResult {
			if f.copyResult != cudaSuccess {
				return f.copyResult
			}
			if f.current == 0 || dst < f.base || dst-f.base+uint64(n) > uint64(len(f.mem)) {
				return cudaErrorInvalidValue
			}
			copy(f.mem[dst-f.base:], unsafeBytes(src, n))
			return cudaSuccess
		},
		memcpyDtoH: func(dst *byte, src uint64, n uintptr) cuResult {
			if f.copyResult != cudaSuccess {
				return f.copyResult
			}
			if f.current == 0 || src < f.base || src-f.base+uint64(n) > uint64(len(f.mem)) {
				return cudaErrorInvalidValue
			}
			copy(unsafeBytes(dst, n), f.mem[src-f.base:])
			return cudaSuccess
		},
		errorName:   func(r cuResult) string { return fakeErrors[r][0] },
		errorString: func(r cuResult) string { return fakeErrors[r][1] },
	}
}

// balanced fails t unless every context retain, allocation and fd was given back.
func (f *fakeCUDA) balanced(t *testing.T, fds int) {
	t.Helper()
	for dev, n := range f.retained {
		if n != 0 {
			t.Errorf("device %d primary context retained %d times after the end", dev, n)
		}
	}
	if f.allocs != 0 {
		t.Errorf("%d device allocations not freed", f.allocs)
	}
	if got := testnet.OpenFDs(t); got != fds {
		t.Errorf("open fds %d -> %d", fds, got)
	}
}

func TestNewWriteReadClose(t *testing.T) {
	f := newFake()
	fds := testnet.OpenFDs(t)
	b, err := newBuffer(f.driver(), 1<<20, "1", 4096)
	if err != nil {
		t.Fatal(err)
	}
	if b.FD() < 0 || b.Size() != 1<<20 || b.Kind() != "cuda" || !b.PCIeMapping() || b.Device() != "1 (Fake GPU)" {
		t.Errorf("FD %d Size %d Kind %q PCIe %v Device %q", b.FD(), b.Size(), b.Kind(), b.PCIeMapping(), b.Device())
	}
	if flags, err := unix.FcntlInt(uintptr(b.FD()), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("dma-buf fd flags %#x, %v: not close-on-exec", flags, err)
	}
	msg := []byte("gpu payload")
	f.current = 0 // another goroutine's context on this thread: the Buffer must make its own current
	if n, err := b.WriteAt(msg, 1<<20-int64(len(msg))); n != len(msg) || err != nil {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	if !bytes.Equal(f.mem[1<<20-len(msg):], msg) {
		t.Fatalf("device memory holds %q", f.mem[1<<20-len(msg):])
	}
	f.current = 0
	p := make([]byte, len(msg))
	if n, err := b.ReadAt(p, 1<<20-int64(len(msg))); n != len(msg) || err != nil || !bytes.Equal(p, msg) {
		t.Fatalf("ReadAt = %d, %q, %v", n, p, err)
	}
	if n, err := b.ReadAt(make([]byte, 20), 1<<20-10); n != 10 || err != io.EOF {
		t.Errorf("short ReadAt = %d, %v; want 10, EOF", n, err)
	}
	if _, err := b.WriteAt(make([]byte, 2), 1<<20-1); err == nil {
		t.Error("write past the end succeeded")
	}
	if _, err := b.ReadAt(p, -1); err == nil {
		t.Error("read at -1 succeeded")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.ReadAt(p, 0); !errors.Is(err, errClosed) {
		t.Errorf("ReadAt after Close: %v", err)
	}
	f.balanced(t, fds)
}

func TestPCIeMappingFallback(t *testing.T) {
	f := newFake()
	f.pcieResult = cudaErrorInvalidValue
	fds := testnet.OpenFDs(t)
	b, err := newBuffer(f.driver(), 2<<20, "", 4096)
	if err != nil {
		t.Fatal(err)
	}
	if b.PCIeMapping() {
		t.Error("PCIeMapping true after the flag was refused")
	}
	if len(f.exports) != 2 || f.exports[0] != cuMemRangeFlagDMABufMappingTypePCIe || f.exports[1] != 0 {
		t.Errorf("export attempts with flags %v, want [1 0]", f.exports)
	}
	b.Close()
	f.balanced(t, fds)
}

func TestFailuresExplainAndLeakNothing(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(*fakeCUDA)
		size  int64
		dev   string
		want  []string
	}{
		{"no device", func(f *fakeCUDA) { f.initResult = cudaErrorNoDevice }, 4096, "0",
			[]string{"gpu: cuInit: CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected) (no usable NVIDIA GPU"}},
		{"no dma-buf", func(f *fakeCUDA) { f.dmabuf[0] = 0 }, 4096, "0",
			[]string{"gpu: device 0 (Fake GPU) cannot export dma-buf (CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED is 0", "open kernel modules"}},
		{"out of memory", func(f *fakeCUDA) { f.allocResult = cudaErrorOutOfMemory }, 1 << 30, "0",
			[]string{"gpu: cuMemAlloc of 1073741824 bytes on device 0 (Fake GPU): CUDA_ERROR_OUT_OF_MEMORY (out of memory) (use a smaller buffer"}},
		{"export unsupported", func(f *fakeCUDA) { f.pcieResult, f.exportResult = cudaErrorInvalidValue, cudaErrorNotSupported }, 4096, "0",
			[]string{"cuMemGetHandleForAddressRange(DMA_BUF_FD) of 4096 bytes on device 0 (Fake GPU): CUDA_ERROR_NOT_SUPPORTED (operation not supported)",
				"with the PCIe mapping flag: CUDA_ERROR_INVALID_VALUE (invalid argument)", "open kernel modules and CUDA 11.7"}},
		{"misaligned", func(f *fakeCUDA) { f.alignOff = 256 }, 4096, "0", []string{"not host-page aligned"}},
		{"ordinal out of range", nil, 4096, "2", []string{"gpu: device 2 out of range: this host has 2 CUDA devices"}},
		{"unknown bus id", nil, 4096, "0000:99:00.0",
			[]string{`cuDeviceGetByPCIBusId("0000:99:00.0"): CUDA_ERROR_INVALID_VALUE (invalid argument) (no CUDA device at that PCI bus id`}},
		{"garbage device", nil, 4096, "gpu0", []string{`device "gpu0" is neither a CUDA ordinal nor a PCI bus id`}},
		{"zero size", nil, 0, "0", []string{"size 0 must be positive"}},
		{"unaligned size", nil, 5000, "0", []string{"size 5000 is not a multiple of the host page size 4096 (use 8192)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			if tt.setup != nil {
				tt.setup(f)
			}
			fds := testnet.OpenFDs(t)
			b, err := newBuffer(f.driver(), tt.size, tt.dev, 4096)
			if b != nil || err == nil {
				t.Fatalf("newBuffer succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			f.balanced(t, fds)
		})
	}
}

func TestDeviceByPCIBusID(t *testing.T) {
	f := newFake()
	b, err := newBuffer(f.driver(), 4096, "0000:5e:00.0", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.dev != 1 {
		t.Errorf("0000:5e:00.0 resolved to device %d, want 1", b.dev)
	}
}

func TestCopyErrorCarriesDriverText(t *testing.T) {
	f := newFake()
	b, err := newBuffer(f.driver(), 4096, "0", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f.copyResult = cudaErrorInvalidValue
	_, err = b.ReadAt(make([]byte, 16), 0)
	var ce *Error
	if !errors.As(err, &ce) || ce.Result != int32(cudaErrorInvalidValue) || ce.Text != "invalid argument" {
		t.Fatalf("ReadAt error %v (%#v)", err, ce)
	}
	if want := "gpu: cuMemcpyDtoH of 16 bytes at 0: CUDA_ERROR_INVALID_VALUE (invalid argument)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestErrorWithoutNames(t *testing.T) {
	d := &driver{}
	if got, want := d.errorf(999, "cuFoo").Error(), "gpu: cuFoo: CUresult 999"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAvailableWithFake(t *testing.T) {
	f := newFake()
	if err := available(f.driver()); err != nil {
		t.Fatalf("available: %v", err)
	}
	f.dmabuf = []int32{0, 0}
	if err := available(f.driver()); err == nil || !strings.Contains(err.Error(), "0 (Fake GPU), 1 (Fake GPU): CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED is 0") {
		t.Errorf("available without dma-buf: %v", err)
	}
	f.devices = 0
	if err := available(f.driver()); err == nil || !strings.Contains(err.Error(), "no CUDA devices") {
		t.Errorf("available without devices: %v", err)
	}
}

func TestReadWriteAllocateNothing(t *testing.T) {
	f := newFake()
	b, err := newBuffer(f.driver(), 1<<20, "0", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p := make([]byte, 64<<10)
	if n := testing.AllocsPerRun(100, func() {
		b.WriteAt(p, 4096)
		b.ReadAt(p, 4096)
	}); n != 0 {
		t.Errorf("ReadAt+WriteAt allocate %.1f times per pair", n)
	}
}
