// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package dmabuf

import (
	"errors"
	"fmt"

	"github.com/devmemtcp/ncdevmem/gpu"
	"github.com/devmemtcp/ncdevmem/udmabuf"
)

// Kinds lists the memory kinds Open accepts.
var Kinds = []string{"host", "udmabuf", "cuda"}

// ErrBadOptions is wrapped by Open and Validate errors that come from the request itself (an
// unknown kind, an option that does not apply to the kind): usage errors, exit status 2.
var ErrBadOptions = errors.New("bad memory options")

// ErrNoCUDA is gpu.ErrNoCUDA, returned for "cuda" by binaries built without the cuda tag; also a
// usage error.
var ErrNoCUDA = gpu.ErrNoCUDA

// OpenOptions are the provider-specific choices of Open.
type OpenOptions struct {
	// Hugetlb backs a udmabuf with 2 MiB hugetlb pages (udmabuf only).
	Hugetlb bool
	// Device selects the GPU for cuda memory: a CUDA ordinal ("0") or a PCI bus id
	// ("0000:3b:00.0"); empty means device 0 (cuda only).
	Device string
}

// CheckKind checks kind and o without looking at this host: the kind is known, the options apply
// to it, and cuda memory is compiled in. It suits a client validating flags for memory that a
// server on another host will allocate. Errors wrap ErrBadOptions or are ErrNoCUDA.
func CheckKind(kind string, o OpenOptions) error {
	if err := checkOptions(kind, o); err != nil {
		return err
	}
	if kind == "cuda" && !gpu.Compiled {
		return ErrNoCUDA
	}
	return nil
}

// Validate checks kind, size and o the way Open would on this host, without allocating anything,
// so a command can refuse bad flags before it touches the NIC. For udmabuf it also checks that
// /dev/udmabuf can be opened and that size is within the kernel's size limit.
func Validate(kind string, size int64, o OpenOptions) error {
	if err := CheckKind(kind, o); err != nil {
		return err
	}
	switch kind {
	case "host":
		if size <= 0 {
			return fmt.Errorf("host buffer: size %d must be positive", size)
		}
		return nil
	case "udmabuf":
		return udmabuf.Check(size, udmabuf.Options{Hugetlb: o.Hugetlb})
	default: // cuda
		return gpu.CheckSize(size)
	}
}

// Open allocates size bytes of memory of the given kind: "host" (plain memory, FD -1), "udmabuf"
// (host pages as a dma-buf; the result also implements Mapped) or "cuda" (GPU memory as a
// dma-buf, only in binaries built with -tags cuda). Errors name the cause and the fix; those
// caused by the request wrap ErrBadOptions or are ErrNoCUDA. On error nothing is left allocated.
func Open(kind string, size int64, o OpenOptions) (Buffer, error) {
	if err := checkOptions(kind, o); err != nil {
		return nil, err
	}
	// Each case returns the concrete pointer only when it is non-nil, so a failed allocation is a
	// nil Buffer rather than an interface holding a nil pointer.
	switch kind {
	case "host":
		h, err := NewHost(size)
		if err != nil {
			return nil, err
		}
		return h, nil
	case "udmabuf":
		b, err := udmabuf.New(size, udmabuf.Options{Hugetlb: o.Hugetlb})
		if err != nil {
			return nil, err
		}
		return b, nil
	default: // cuda
		b, err := gpu.New(size, o.Device)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
}

func checkOptions(kind string, o OpenOptions) error {
	switch kind {
	case "host", "udmabuf", "cuda":
	default:
		return fmt.Errorf("%w: unknown memory kind %q (want host, udmabuf or cuda)", ErrBadOptions, kind)
	}
	if o.Hugetlb && kind != "udmabuf" {
		return fmt.Errorf("%w: hugetlb backing applies only to udmabuf memory, not %s", ErrBadOptions, kind)
	}
	if o.Device != "" && kind != "cuda" {
		return fmt.Errorf("%w: a GPU device (%q) applies only to cuda memory, not %s", ErrBadOptions, o.Device, kind)
	}
	return nil
}
