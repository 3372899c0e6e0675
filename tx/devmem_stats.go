// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package tx

import (
	"sync/atomic"

	"github.com/devmemtcp/ncdevmem/report"
)

// DevmemStats are a devmem TX flow's live counters.
type DevmemStats struct {
	Bytes       atomic.Uint64 // bytes the kernel accepted from the dma-buf
	Sends       atomic.Uint64 // sendmsg calls that sent something
	ShortSends  atomic.Uint64 // of which sent less than asked
	Completions atomic.Uint64 // sends reported complete on the error queue
	Copied      atomic.Uint64 // of which in ranges flagged SO_EE_CODE_ZEROCOPY_COPIED (an estimate: see parseZCCompletions)
	Waits       atomic.Uint64 // times the flow waited for completions (all regions in flight, or ENOBUFS)
	Nobufs      atomic.Uint64 // sendmsg calls refused with ENOBUFS while completions were pending
}

// AddTo adds the counters into d (the per-side total of all flows). A TX frag is one sendmsg.
func (s *DevmemStats) AddTo(d *report.Devmem) {
	d.DmabufBytes += s.Bytes.Load()
	d.Frags += s.Sends.Load()
}
