// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"sync/atomic"

	"github.com/devmemtcp/ncdevmem/report"
)

// FragHistLe are the upper bounds (bytes, inclusive) of the frag size histogram's buckets; the
// last bucket catches everything up to the largest frag_size a u32 can carry.
var FragHistLe = [...]uint64{256, 512, 1024, 2048, 4095, 4096, 8192, 16384, 65536, 1<<32 - 1}

// DevmemStats are a devmem flow's live counters (read concurrently by the bench's samplers).
type DevmemStats struct {
	DmabufBytes      atomic.Uint64 // payload bytes left in the dma-buf (SCM_DEVMEM_DMABUF)
	LinearBytes      atomic.Uint64 // payload bytes copied into the iov (SCM_DEVMEM_LINEAR and unsplit packets)
	Frags            atomic.Uint64 // SCM_DEVMEM_DMABUF frags
	LinearFrags      atomic.Uint64 // SCM_DEVMEM_LINEAR frags
	Unsplit          atomic.Uint64 // recvmsgs of plain bytes on a bound queue (packets the NIC did not split)
	Ctrunc           atomic.Uint64 // recvmsgs flagged MSG_CTRUNC (by a non-devmem cmsg; no token is lost)
	PageAlignedFrags atomic.Uint64 // dma-buf frags starting on a niov boundary
	Tokens           atomic.Uint64 // frag tokens received
	DontneedCalls    atomic.Uint64 // SO_DEVMEM_DONTNEED calls
	DontneedTokens   atomic.Uint64 // tokens handed to those calls
	Freed            atomic.Uint64 // frags the kernel said it freed
	ShortDontneed    atomic.Uint64 // calls (after one retry) that freed fewer frags than asked
	Recvmsgs         atomic.Uint64 // recvmsg calls that returned data
	ControlGrows     atomic.Uint64 // control buffer regrown after ETOOSMALL
	Validated        atomic.Uint64 // frags whose payload was checked
	Hist             [len(FragHistLe)]atomic.Uint64
}

// histBucket is the index of the FragHistLe bucket size falls in.
func histBucket(size uint32) int {
	for i, le := range FragHistLe {
		if uint64(size) <= le {
			return i
		}
	}
	return len(FragHistLe) - 1
}

// fragCounts are one recvmsg's counts, added to DevmemStats in one go.
type fragCounts struct {
	frags, dmabufBytes, aligned, linearFrags, linearBytes, validated, unsplit uint64
	hist                                                                      [len(FragHistLe)]uint64
}

func (s *DevmemStats) publish(c *fragCounts) {
	if c.frags > 0 {
		s.Frags.Add(c.frags)
		s.Tokens.Add(c.frags)
		s.DmabufBytes.Add(c.dmabufBytes)
		s.PageAlignedFrags.Add(c.aligned)
		for i, n := range c.hist {
			if n > 0 {
				s.Hist[i].Add(n)
			}
		}
	}
	if c.linearFrags > 0 {
		s.LinearFrags.Add(c.linearFrags)
	}
	if c.unsplit > 0 {
		s.Unsplit.Add(c.unsplit)
	}
	if c.linearBytes > 0 {
		s.LinearBytes.Add(c.linearBytes)
	}
	if c.validated > 0 {
		s.Validated.Add(c.validated)
	}
}

// AddTo adds the counters into d (the per-side total of all flows).
func (s *DevmemStats) AddTo(d *report.Devmem) {
	d.DmabufBytes += s.DmabufBytes.Load()
	d.LinearBytes += s.LinearBytes.Load()
	d.Frags += s.Frags.Load()
	d.PageAlignedFrags += s.PageAlignedFrags.Load()
	d.Tokens += s.Tokens.Load()
	d.DontneedCalls += s.DontneedCalls.Load()
	d.ShortDontneed += s.ShortDontneed.Load()
	if d.FragHist == nil {
		d.FragHist = make([]report.HistBucket, len(FragHistLe))
		for i, le := range FragHistLe {
			d.FragHist[i].Le = le
		}
	}
	for i := range FragHistLe {
		if i < len(d.FragHist) {
			d.FragHist[i].Count += s.Hist[i].Load()
		}
	}
}
