// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package dmabuf

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/gpu"
	"github.com/devmemtcp/ncdevmem/udmabuf"
)

// The providers cannot import this package, so their conformance is asserted here.
var (
	_ Mapped = (*udmabuf.Buffer)(nil)
	_ Buffer = (*gpu.Buffer)(nil)
	_ Mapped = (*Host)(nil)
)

func TestOpenHost(t *testing.T) {
	b, err := Open("host", 8192, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Kind() != "host" || b.Size() != 8192 || b.FD() != -1 {
		t.Errorf("Kind %q Size %d FD %d", b.Kind(), b.Size(), b.FD())
	}
	if _, ok := b.(Mapped); !ok {
		t.Error("host buffer is not Mapped")
	}
}

func TestOpenBadOptions(t *testing.T) {
	for _, tt := range []struct {
		kind string
		o    OpenOptions
		want string
	}{
		{"gpu", OpenOptions{}, `unknown memory kind "gpu" (want host, udmabuf or cuda)`},
		{"", OpenOptions{}, `unknown memory kind ""`},
		{"host", OpenOptions{Hugetlb: true}, "hugetlb backing applies only to udmabuf memory, not host"},
		{"cuda", OpenOptions{Hugetlb: true}, "hugetlb backing applies only to udmabuf memory, not cuda"},
		{"udmabuf", OpenOptions{Device: "1"}, `a GPU device ("1") applies only to cuda memory, not udmabuf`},
	} {
		b, err := Open(tt.kind, 4096, tt.o)
		if b != nil || !errors.Is(err, ErrBadOptions) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q, %+v) = %v, %v; want ErrBadOptions with %q", tt.kind, tt.o, b, err, tt.want)
		}
		if err := Validate(tt.kind, 4096, tt.o); !errors.Is(err, ErrBadOptions) {
			t.Errorf("Validate(%q, %+v) = %v; want ErrBadOptions", tt.kind, tt.o, err)
		}
		if err := CheckKind(tt.kind, tt.o); !errors.Is(err, ErrBadOptions) {
			t.Errorf("CheckKind(%q, %+v) = %v; want ErrBadOptions", tt.kind, tt.o, err)
		}
	}
}

// TestOpenUdmabufHere: on a host without /dev/udmabuf (this one) Open says so and returns a
// nil Buffer, not an interface holding a nil pointer.
func TestOpenUdmabufHere(t *testing.T) {
	if _, err := os.Stat(udmabuf.DevicePath); err == nil {
		t.Skipf("%s exists here; the udmabuf package's TestRealUdmabuf covers it", udmabuf.DevicePath)
	}
	b, err := Open("udmabuf", 1<<20, OpenOptions{})
	if b != nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "modprobe udmabuf") {
		t.Fatalf("Open(udmabuf) = %v, %v", b, err)
	}
	if err := Validate("udmabuf", 1<<20, OpenOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Validate(udmabuf) = %v", err)
	}
}

func TestOpenCUDA(t *testing.T) {
	b, err := Open("cuda", 1<<20, OpenOptions{Device: "0"})
	if err == nil {
		b.Close()
		t.Skip("a dma-buf capable GPU is present; nothing to check about its absence")
	}
	if b != nil {
		t.Fatalf("failed Open returned a non-nil Buffer %#v", b)
	}
	verr := Validate("cuda", 1<<20, OpenOptions{})
	if !gpu.Compiled {
		if !errors.Is(err, ErrNoCUDA) || err.Error() != "built without CUDA support: rebuild with -tags cuda" {
			t.Errorf("Open(cuda) without the tag: %v", err)
		}
		if !errors.Is(verr, ErrNoCUDA) {
			t.Errorf("Validate(cuda) without the tag: %v", verr)
		}
		if err := CheckKind("cuda", OpenOptions{Device: "0"}); !errors.Is(err, ErrNoCUDA) {
			t.Errorf("CheckKind(cuda) without the tag: %v", err)
		}
		return
	}
	if err := CheckKind("cuda", OpenOptions{Device: "0"}); err != nil {
		t.Errorf("CheckKind(cuda) in a cuda build: %v", err)
	}
	if errors.Is(err, ErrNoCUDA) || verr != nil {
		t.Errorf("cuda build: Open %v, Validate %v", err, verr)
	}
}

func TestCheckKindLooksAtNothing(t *testing.T) {
	for _, k := range []string{"host", "udmabuf"} {
		if err := CheckKind(k, OpenOptions{Hugetlb: k == "udmabuf"}); err != nil {
			t.Errorf("CheckKind(%s): %v", k, err)
		}
	}
}

func TestValidateSizes(t *testing.T) {
	if err := Validate("host", 0, OpenOptions{}); err == nil {
		t.Error("Validate(host, 0) passed")
	}
	if err := Validate("host", 100, OpenOptions{}); err != nil {
		t.Errorf("Validate(host, 100): %v", err)
	}
	if err := Validate("udmabuf", 100, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "page size") {
		t.Errorf("Validate(udmabuf, 100): %v", err)
	}
	if gpu.Compiled {
		if err := Validate("cuda", 100, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "page size") {
			t.Errorf("Validate(cuda, 100): %v", err)
		}
	}
}
