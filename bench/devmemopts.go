// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"fmt"
	"math/bits"
	"os"

	"github.com/devmemtcp/ncdevmem/dmabuf"
)

// The devmem RX options that reach the shared setup path (package devmem) as they are:
// --rx-page-size (TestSpec.RxPageSize, devmem.Config.RxPageSize) and --rss-context
// (TestSpec.RSSContext, devmem.Config.UseRSSContext).

// MaxRxPageSize bounds --rx-page-size: the largest net_iov a driver is asked for (the kernel
// checks what the device supports; this only keeps a typo from reaching it).
const MaxRxPageSize = 1 << 21

// hugeSize is the hugetlb page a udmabuf is backed with when the net_iovs are larger than a page.
const hugeSize = 2 << 20

// checkDevmemOpts checks --rx-page-size and --rss-context.
func (s *TestSpec) checkDevmemOpts() []error {
	var errs []error
	if s.RxPageSize != 0 {
		switch {
		case !s.DevmemRX:
			errs = append(errs, fmt.Errorf("--rx-page-size only applies to devmem RX: add --devmem-rx"))
		case bits.OnesCount32(s.RxPageSize) != 1 || s.RxPageSize < 4096 || s.RxPageSize > MaxRxPageSize:
			errs = append(errs, fmt.Errorf("--rx-page-size %d: want a power of two from 4096 to %d", s.RxPageSize, MaxRxPageSize))
		}
	}
	switch s.RSSContext {
	case "", "auto", "on", "off":
	default:
		errs = append(errs, fmt.Errorf("--rss-context %q: want auto, on or off", s.RSSContext))
	}
	if s.RSSContext != "" && s.RSSContext != "auto" && (!s.DevmemRX || s.NoSetup) {
		errs = append(errs, fmt.Errorf("--rss-context only applies to devmem RX runs that prepare the NIC: add --devmem-rx, drop --no-setup"))
	}
	return errs
}

// useRSSContext is --rss-context for devmem.Config.UseRSSContext: nil (auto: a context when the
// driver has them), or forced on or off.
func useRSSContext(spec *TestSpec) *bool {
	var v bool
	switch spec.RSSContext {
	case "on":
		v = true
	case "off":
	default:
		return nil
	}
	return &v
}

// rxAlloc returns the devmem target's dma-buf allocation. With net_iovs larger than a page a
// udmabuf is backed by 2 MiB hugetlb pages (its size rounded up to them), as the C tool does for
// -b: the kernel needs every scatterlist entry aligned to the net_iov size.
func rxAlloc(k *devmemKernel, kind string, size int64, rxPageSize uint32) func() (dmabuf.Buffer, error) {
	if kind != "udmabuf" || int(rxPageSize) <= os.Getpagesize() {
		return func() (dmabuf.Buffer, error) { return k.open(kind, size) }
	}
	size = (size + hugeSize - 1) / hugeSize * hugeSize
	return func() (dmabuf.Buffer, error) {
		b, err := dmabuf.Open(kind, size, dmabuf.OpenOptions{Hugetlb: true})
		if err != nil {
			return nil, fmt.Errorf("--rx-page-size %d needs a udmabuf on 2 MiB hugetlb pages (%d of them: raise vm.nr_hugepages): %w", rxPageSize, size/hugeSize, err)
		}
		return b, nil
	}
}
