// SPDX-License-Identifier: MIT

//go:build cuda && linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package gpu

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"
)

func TestLoadMissingLibrary(t *testing.T) {
	_, err := load("libcuda-ncdevmem-missing.so.1")
	if err == nil || !strings.Contains(err.Error(), "gpu: load libcuda-ncdevmem-missing.so.1: ") ||
		!strings.Contains(err.Error(), "install the NVIDIA driver") {
		t.Fatalf("load: %v", err)
	}
}

// TestNewHere runs New against whatever this host has: with no libcuda (these machines) it must
// explain that, never claim the tag is missing.
func TestNewHere(t *testing.T) {
	b, err := New(2<<20, "0")
	if err == nil {
		defer b.Close()
		if b.FD() < 0 {
			t.Fatalf("FD %d", b.FD())
		}
		p := bytes.Repeat([]byte{0xa5}, 4096)
		if _, err := b.WriteAt(p, 4096); err != nil {
			t.Fatal(err)
		}
		q := make([]byte, 4096)
		if _, err := b.ReadAt(q, 4096); err != nil || !bytes.Equal(p, q) {
			t.Fatalf("read back differs (err %v)", err)
		}
		return
	}
	if errors.Is(err, ErrNoCUDA) {
		t.Fatalf("New in a cuda build: %v", err)
	}
	// Only two answers mean "no GPU to test here": libcuda is absent, or it finds no device. Any
	// other failure on a host whose driver loads is a broken binding and fails the test.
	// NCDEVMEM_REQUIRE_GPU=1 (a GPU host's CI) turns those two into failures as well.
	noGPU := ""
	if _, lerr := loadDriver(); lerr != nil {
		noGPU = "no libcuda on this host: " + lerr.Error()
	} else if strings.Contains(err.Error(), "CUDA_ERROR_NO_DEVICE") || strings.Contains(err.Error(), "no CUDA devices") {
		noGPU = "libcuda loads but finds no GPU: " + err.Error()
	}
	if noGPU == "" {
		t.Fatalf("libcuda loads, yet New failed: %v", err)
	}
	if os.Getenv("NCDEVMEM_REQUIRE_GPU") == "1" {
		t.Fatalf("NCDEVMEM_REQUIRE_GPU=1 but %s", noGPU)
	}
	t.Skip(noGPU)
}

func TestLoadLacksSymbol(t *testing.T) {
	// libc loads but has none of the driver API: the first missing entry point is named.
	_, err := load("libc.so.6")
	if err == nil || !strings.Contains(err.Error(), "lacks cuInit") {
		t.Fatalf("load(libc.so.6): %v", err)
	}
}

// libc gives real C functions with the same register shapes as the CUDA calls, so the purego
// bindings (argument kinds, named result types, string arguments, the SyscallN adaptors and
// their allocations) are checked for real without a GPU.
func libc(t testing.TB) *loader {
	t.Helper()
	h, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW)
	if err != nil {
		t.Skipf("no libc.so.6: %v", err)
	}
	t.Cleanup(func() { purego.Dlclose(h) })
	return &loader{h: h, path: "libc.so.6"}
}

func TestBindingsAgainstLibc(t *testing.T) {
	l := libc(t)
	var abs func(int32) cuResult
	l.bind(&abs, "abs")
	// strcpy(char *dst, const char *src) has cuDeviceGetByPCIBusId's shape (int*, const char*).
	var strcpy func(dst *int32, src string) cuResult
	l.bind(&strcpy, "strcpy")
	htod := hotMemcpyHtoD(l.sym("memcpy"))
	dtoh := hotMemcpyDtoH(l.sym("memcpy"))
	if l.err != nil {
		t.Fatal(l.err)
	}
	if got := abs(-801); got != cudaErrorNotSupported {
		t.Errorf("abs(-801) = %d", got)
	}
	var word int32
	strcpy(&word, "abc")
	if got := unsafe.Slice((*byte)(unsafe.Pointer(&word)), 4); !bytes.Equal(got, []byte("abc\x00")) {
		t.Errorf("string argument arrived as %q", got)
	}
	src := []byte("device memory")
	dst := make([]byte, len(src))
	dtoh(&dst[0], uint64(uintptr(unsafe.Pointer(&src[0]))), uintptr(len(src)))
	if !bytes.Equal(dst, src) {
		t.Errorf("DtoH adaptor copied %q", dst)
	}
	clear(dst)
	htod(uint64(uintptr(unsafe.Pointer(&dst[0]))), &src[0], uintptr(len(src)))
	if !bytes.Equal(dst, src) {
		t.Errorf("HtoD adaptor copied %q", dst)
	}
	setCurrent := hotCtxSetCurrent(l.sym("getpid")) // any C function; the argument is ignored
	if n := testing.AllocsPerRun(100, func() {
		dtoh(&dst[0], uint64(uintptr(unsafe.Pointer(&src[0]))), uintptr(len(src)))
		htod(uint64(uintptr(unsafe.Pointer(&dst[0]))), &src[0], uintptr(len(src)))
		setCurrent(0)
	}); n != 0 {
		t.Errorf("the SyscallN adaptor allocates %.1f times per call", n)
	}
}

func BenchmarkHotCallOverhead(b *testing.B) {
	l := libc(b)
	dtoh := hotMemcpyDtoH(l.sym("memcpy"))
	if l.err != nil {
		b.Fatal(l.err)
	}
	src, dst := make([]byte, 64), make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		dtoh(&dst[0], uint64(uintptr(unsafe.Pointer(&src[0]))), 64)
	}
}
