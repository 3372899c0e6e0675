// SPDX-License-Identifier: MIT

package pattern

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// The figures the issue asks for: Verify and Fill against copy of the same size. Run with
// `go test -run '^$' -bench . ./pattern/`; b.SetBytes makes the MB/s column comparable.

// reportGBps adds a GB/s column (10^9 bytes per second), the unit the figures use.
func reportGBps(b *testing.B, n int) {
	if sec := b.Elapsed().Seconds(); sec > 0 {
		b.ReportMetric(float64(n)*float64(b.N)/sec/1e9, "GB/s")
	}
}

var benchSizes = []struct {
	name string
	n    int
}{{"4KiB", 4 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

// benchSizesDo times op on a buffer of each bench size, prepared by prep (nil: zeros).
func benchSizesDo(b *testing.B, prep func(buf []byte), op func(b *testing.B, buf []byte)) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			buf := make([]byte, s.n)
			if prep != nil {
				prep(buf)
			}
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				op(b, buf)
			}
			reportGBps(b, s.n)
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	benchSizesDo(b, func(buf []byte) { Fill(buf, 12345) }, func(b *testing.B, buf []byte) {
		if Verify(buf, 12345) != -1 {
			b.Fatal("mismatch")
		}
	})
}

func BenchmarkFill(b *testing.B) {
	benchSizesDo(b, nil, func(_ *testing.B, buf []byte) { Fill(buf, 12345) })
}

func BenchmarkCopy(b *testing.B) {
	src := make([]byte, benchSizes[len(benchSizes)-1].n)
	Fill(src, 0)
	benchSizesDo(b, nil, func(_ *testing.B, dst []byte) { copy(dst, src) })
}

func BenchmarkSeqVerify(b *testing.B) {
	q := NewSeq(7)
	benchSizesDo(b, func(buf []byte) { q.Fill(buf, 99) }, func(b *testing.B, buf []byte) {
		if q.Verify(buf, 99) != -1 {
			b.Fatal("mismatch")
		}
	})
}

func BenchmarkSeqFill(b *testing.B) {
	q := NewSeq(7)
	benchSizesDo(b, nil, func(_ *testing.B, buf []byte) { q.Fill(buf, 99) })
}

// verifyWords is the textbook alternative Verify was measured against: a uint64 loop over a
// 255*8-byte reference block (8 periods, so every word's phase repeats after 255 words). It is kept
// here only so the benchmark shows why Verify uses bytes.Equal instead.
func verifyWords(b []byte, off uint64) bool {
	const blk = Period * 8
	p := int(off % Period)
	ref := def.ref[p : p+blk]
	for len(b) >= blk {
		x := b[:blk]
		for j := 0; j+32 <= blk; j += 32 {
			if binary.LittleEndian.Uint64(x[j:])^binary.LittleEndian.Uint64(ref[j:])|
				binary.LittleEndian.Uint64(x[j+8:])^binary.LittleEndian.Uint64(ref[j+8:])|
				binary.LittleEndian.Uint64(x[j+16:])^binary.LittleEndian.Uint64(ref[j+16:])|
				binary.LittleEndian.Uint64(x[j+24:])^binary.LittleEndian.Uint64(ref[j+24:]) != 0 {
				return false
			}
		}
		// blk is 2040 = 63*32 + 24: the last three words.
		for j := blk - 24; j < blk; j += 8 {
			if binary.LittleEndian.Uint64(x[j:]) != binary.LittleEndian.Uint64(ref[j:]) {
				return false
			}
		}
		b = b[blk:]
	}
	return bytes.Equal(b, ref[:len(b)])
}

func BenchmarkVerifyWords(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			buf := make([]byte, s.n)
			Fill(buf, 12345)
			if !verifyWords(buf, 12345) {
				b.Fatal("verifyWords rejects a good buffer")
			}
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				if !verifyWords(buf, 12345) {
					b.Fatal("mismatch")
				}
			}
			reportGBps(b, s.n)
		})
	}
}
