// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import "testing"

// The devmem RX hot path allocates nothing: cmsg parsing, the engine's work per recvmsg (frag
// accounting, validation, token batching) and SO_DEVMEM_DONTNEED. Benchmarks report allocs/op but
// do not run in CI; these tests do.

func TestCmsgParseAllocs(t *testing.T) {
	frags := make([]frag, DefaultMaxFrags)
	for i := range frags {
		frags[i] = frag{kind: fragDmabuf, offset: uint64(i) * 4096, size: 4096, token: uint32(i), id: 1}
	}
	frags[1].kind = fragLinear
	oob := buildCmsgs(frags)
	parsed := 0
	allocs := testing.AllocsPerRun(100, func() {
		parsed = 0
		it := newCmsgIter(oob)
		for {
			_, ok, err := it.next()
			if err != nil || !ok {
				break
			}
			parsed++
		}
	})
	if parsed != len(frags) || allocs != 0 {
		t.Fatalf("parsed %d of %d frags with %v allocations per batch, want all and 0", parsed, len(frags), allocs)
	}
}

// TestFragsAllocs: the exported walker (rx.Frags, used by the legacy tool) allocates nothing either.
func TestFragsAllocs(t *testing.T) {
	oob := buildCmsgs([]frag{{kind: fragDmabuf, size: 4096, token: 1, id: 1}, {kind: fragLinear, size: 100}})
	var got []Frag
	allocs := testing.AllocsPerRun(100, func() {
		got = got[:0]
		f := NewFrags(oob)
		for {
			fr, ok, err := f.Next()
			if err != nil || !ok {
				break
			}
			got = append(got, fr)
		}
	})
	if len(got) != 2 || !got[1].Linear || got[0].Token != 1 || allocs != 0 {
		t.Fatalf("frags %+v with %v allocations per walk, want 2 and 0", got, allocs)
	}
}

func TestDevmemRecvmsgAllocs(t *testing.T) {
	for _, validate := range []bool{false, true} {
		e, read, _ := replayEngine(t, validate)
		allocs := testing.AllocsPerRun(200, read)
		// AllocsPerRun makes one warm-up call besides the 200 it counts.
		if calls := e.Stats.DontneedCalls.Load(); allocs != 0 || calls < 201 {
			t.Errorf("validate=%v: %v allocations per recvmsg (want 0), %d DONTNEED calls for 201 recvmsgs",
				validate, allocs, calls)
		}
	}
}

func TestDontneedAllocs(t *testing.T) {
	for _, coalesce := range []bool{false, true} {
		e := &Devmem{batch: newTokenBatch(coalesce), sys: &replaySys{}}
		allocs := testing.AllocsPerRun(20, func() {
			for tok := uint32(0); tok < 1000; tok++ {
				if e.batch.Full() {
					if err := e.flush(); err != nil {
						t.Fatal(err)
					}
				}
				e.batch.Add(tok)
			}
			if err := e.flush(); err != nil {
				t.Fatal(err)
			}
		})
		if freed := e.Stats.Freed.Load(); allocs != 0 || freed != 21*1000 {
			t.Errorf("coalesce=%v: %v allocations per 1000 tokens (want 0), %d tokens freed (want 21000)",
				coalesce, allocs, freed)
		}
	}
}
