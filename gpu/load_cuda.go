// SPDX-License-Identifier: MIT

//go:build cuda && linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package gpu

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Compiled reports whether this binary was built with the cuda tag, so callers can refuse "cuda"
// memory up front.
const Compiled = true

// libcuda is the driver API library; it ships with the NVIDIA driver, not the CUDA toolkit.
const libcuda = "libcuda.so.1"

var loadOnce = sync.OnceValues(func() (*driver, error) { return load(libcuda) })

// loadDriver opens libcuda once per process and binds the entry points the package uses.
func loadDriver() (*driver, error) { return loadOnce() }

// load dlopens path and fills a driver table from it. Every entry point is looked up with Dlsym
// first, because purego.RegisterLibFunc panics on a missing symbol and an old driver lacks
// cuMemGetHandleForAddressRange.
func load(path string) (*driver, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("gpu: load %s: %w (install the NVIDIA driver: %s ships with it, not with the CUDA toolkit)", path, err, libcuda)
	}
	l := &loader{h: h, path: path}
	d := &driver{}
	var (
		getName     func(name *byte, n int32, dev int32) cuResult
		errorName   func(r cuResult, s **byte) cuResult
		errorString func(r cuResult, s **byte) cuResult
	)
	// Driver API names and signatures from cuda.h; the _v2 symbols are what the macros expand to.
	l.bind(&d.init, "cuInit")
	l.bind(&d.deviceGetCount, "cuDeviceGetCount")
	l.bind(&d.deviceGet, "cuDeviceGet")
	l.bind(&d.deviceGetByPCIBusID, "cuDeviceGetByPCIBusId")
	l.bind(&d.deviceGetAttribute, "cuDeviceGetAttribute")
	l.bind(&getName, "cuDeviceGetName")
	l.bind(&d.primaryCtxRetain, "cuDevicePrimaryCtxRetain")
	l.bind(&d.primaryCtxRelease, "cuDevicePrimaryCtxRelease_v2")
	l.bind(&d.memAlloc, "cuMemAlloc_v2")
	l.bind(&d.memFree, "cuMemFree_v2")
	l.bind(&d.memGetHandleForAddressRange, "cuMemGetHandleForAddressRange")
	l.bind(&errorName, "cuGetErrorName")
	l.bind(&errorString, "cuGetErrorString")
	d.ctxSetCurrent = hotCtxSetCurrent(l.sym("cuCtxSetCurrent"))
	d.memcpyHtoD = hotMemcpyHtoD(l.sym("cuMemcpyHtoD_v2"))
	d.memcpyDtoH = hotMemcpyDtoH(l.sym("cuMemcpyDtoH_v2"))
	if l.err != nil {
		purego.Dlclose(h)
		return nil, l.err
	}
	d.deviceGetName = func(name []byte, dev int32) cuResult {
		return getName(&name[0], int32(len(name)), dev)
	}
	d.errorName = func(r cuResult) string { return errorText(errorName, r) }
	d.errorString = func(r cuResult) string { return errorText(errorString, r) }
	return d, nil
}

type loader struct {
	h    uintptr
	path string
	err  error
}

// sym returns the address of name, recording the first missing symbol as the load error.
func (l *loader) sym(name string) uintptr {
	if l.err != nil {
		return 0
	}
	addr, err := purego.Dlsym(l.h, name)
	if err != nil || addr == 0 {
		l.err = fmt.Errorf("gpu: %s lacks %s (the NVIDIA driver is too old: install one for CUDA 11.7 or later): %v", l.path, name, err)
		return 0
	}
	return addr
}

// bind points the Go func *fptr at the C function name through purego's reflective call path;
// fine for the setup calls, too slow and allocating for the data path (see the hot* adaptors).
func (l *loader) bind(fptr any, name string) {
	if addr := l.sym(name); addr != 0 {
		purego.RegisterFunc(fptr, addr)
	}
}

// The data path calls go through purego.SyscallN directly: RegisterFunc's reflective calls
// allocate, and ReadAt/WriteAt must not. SyscallN is go:uintptrescapes, so a variadic argument
// list built at the call site is heap-allocated on every call; the argument arrays come from a
// pool instead. Storing a pointer as a uintptr before the call is safe here because the buffers
// reach these adaptors through func values and interfaces, which makes them heap objects, and
// the Go heap does not move; runtime.KeepAlive keeps them alive across the call (the C side does
// not retain them). A CUresult is a C int, so only the low 32 bits of the return register count.

var argPool = sync.Pool{New: func() any { return new([3]uintptr) }}

func hotCall(addr uintptr, a0, a1, a2 uintptr, n int) cuResult {
	a := argPool.Get().(*[3]uintptr)
	a[0], a[1], a[2] = a0, a1, a2
	r, _, _ := purego.SyscallN(addr, a[:n]...)
	argPool.Put(a)
	return cuResult(int32(r))
}

func hotCtxSetCurrent(addr uintptr) func(ctx uintptr) cuResult {
	return func(ctx uintptr) cuResult { return hotCall(addr, ctx, 0, 0, 1) }
}

func hotMemcpyHtoD(addr uintptr) func(dst uint64, src *byte, n uintptr) cuResult {
	return func(dst uint64, src *byte, n uintptr) cuResult {
		r := hotCall(addr, uintptr(dst), uintptr(unsafe.Pointer(src)), n, 3)
		runtime.KeepAlive(src)
		return r
	}
}

func hotMemcpyDtoH(addr uintptr) func(dst *byte, src uint64, n uintptr) cuResult {
	return func(dst *byte, src uint64, n uintptr) cuResult {
		r := hotCall(addr, uintptr(unsafe.Pointer(dst)), uintptr(src), n, 3)
		runtime.KeepAlive(dst)
		return r
	}
}

// errorText calls cuGetErrorName/cuGetErrorString, which point *s at a static C string.
func errorText(fn func(cuResult, **byte) cuResult, r cuResult) string {
	var s *byte
	if fn(r, &s) != cudaSuccess || s == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(s), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(s, n))
}
