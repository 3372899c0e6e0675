// SPDX-License-Identifier: MIT

package pattern

import (
	"errors"
	"fmt"
	"testing"
)

// cSeq is the C selftest's validation loop, byte by byte, as the oracle for Seq.
type cSeq struct {
	n    int
	seed uint8
}

func (c *cSeq) next() byte {
	v := c.seed
	if v == 0 {
		v = '\n'
	}
	c.seed++
	if int(c.seed) == c.n {
		c.seed = 0
	}
	return v
}

func naive(off uint64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(1 + (off+uint64(i))%255)
	}
	return b
}

// offsets and lengths that straddle periods, reference chunks and the 64-bit range.
var (
	testOffs = []uint64{0, 1, 254, 255, 256, 16319, 16320, 16321, 16575, 16576, 1<<32 + 7, 1<<62 + 300}
	testLens = []int{0, 1, 7, 8, 254, 255, 256, 4096, 16320, 16321, 40000, 100000}
)

func TestFillMatchesDefinition(t *testing.T) {
	for _, off := range testOffs {
		for _, n := range testLens {
			got := make([]byte, n)
			Fill(got, off)
			want := naive(off, n)
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("Fill(len %d, off %d): byte %d = %#x, want %#x", n, off, i, got[i], want[i])
			}
			for i := 0; i < n; i += 997 {
				if a := At(off + uint64(i)); a != want[i] {
					t.Fatalf("At(%d) = %#x, want %#x", off+uint64(i), a, want[i])
				}
			}
		}
	}
}

func TestVerify(t *testing.T) {
	for _, off := range testOffs {
		for _, n := range testLens {
			b := naive(off, n)
			if i := Verify(b, off); i != -1 {
				t.Fatalf("Verify(len %d, off %d) = %d on a good buffer", n, off, i)
			}
			if n == 0 {
				continue
			}
			// The byte that follows in the stream, and a zero, are both wrong anywhere.
			for _, at := range []int{0, n / 3, n - 1} {
				for _, bad := range []byte{0, b[at] + 1} {
					old := b[at]
					b[at] = bad
					if i := Verify(b, off); i != at {
						t.Fatalf("Verify(len %d, off %d) with byte %d set to %#x = %d, want %d", n, off, at, bad, i, at)
					}
					b[at] = old
				}
			}
			// A shifted stream (one byte lost) is caught at its first byte.
			if i := Verify(b, off+1); i != 0 {
				t.Fatalf("Verify of a stream shifted by one = %d, want 0", i)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	b := naive(123400, 100)
	if err := Check(2, b, 123400); err != nil {
		t.Fatalf("Check on a good buffer: %v", err)
	}
	b[56] = 0
	err := Check(2, b, 123400)
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("Check returned %v, want a *MismatchError", err)
	}
	want := MismatchError{Flow: 2, Offset: 123456, Expected: byte(1 + 123456%255), Actual: 0}
	if *me != want {
		t.Fatalf("Check = %+v, want %+v", *me, want)
	}
	if got, w := me.Error(), "flow 2: payload mismatch at stream offset 123456: expected 0x25, got 0x00"; got != w {
		t.Fatalf("Error() = %q, want %q", got, w)
	}
}

func TestSeqMatchesC(t *testing.T) {
	for _, n := range []int{7, 2, 3, 254, 255, 256, 1000, 1, 0, -3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			q := NewSeq(n)
			if q.N() != n {
				t.Fatalf("N() = %d", q.N())
			}
			c := &cSeq{n: n, seed: 1}
			const total = 70000
			want := make([]byte, total)
			for i := range want {
				want[i] = c.next()
			}
			if n == 7 {
				if got := fmt.Sprintf("% x", want[:8]); got != "01 02 03 04 05 06 0a 01" {
					t.Fatalf("-v 7 starts %s, want the selftest's 01 02 03 04 05 06 0a 01", got)
				}
			}
			for _, off := range []uint64{0, 1, 200, 256, 511, 17000} {
				for _, l := range []int{1, 100, 5000, 40000} {
					if int(off)+l > total {
						continue
					}
					got := make([]byte, l)
					q.Fill(got, off)
					w := want[off : int(off)+l]
					if i := firstDiff(got, w); i >= 0 {
						t.Fatalf("Fill(off %d, len %d): byte %d = %#x, want %#x", off, l, i, got[i], w[i])
					}
					if i := q.Verify(w, off); i != -1 {
						t.Fatalf("Verify(off %d, len %d) = %d on a good buffer", off, l, i)
					}
					if q.At(off) != w[0] {
						t.Fatalf("At(%d) = %#x, want %#x", off, q.At(off), w[0])
					}
				}
			}
			// One flipped byte, found and reported.
			b := append([]byte(nil), want[1000:9000]...)
			b[4321] ^= 0x80
			err := q.Check(1, b, 1000)
			var me *MismatchError
			if !errors.As(err, &me) || me.Offset != 5321 || me.Expected != want[5321] || me.Actual != want[5321]^0x80 {
				t.Fatalf("Check = %v, want a mismatch at 5321", err)
			}
		})
	}
}

func TestVerifyAllocs(t *testing.T) {
	b := make([]byte, 64<<10)
	Fill(b, 77)
	q := NewSeq(7)
	qb := make([]byte, 64<<10)
	q.Fill(qb, 77)
	if n := testing.AllocsPerRun(100, func() {
		Verify(b, 77)
		Fill(b, 77)
		q.Verify(qb, 77)
		q.Fill(qb, 77)
		if Check(1, b, 77) != nil || q.Check(1, qb, 77) != nil {
			panic("Check failed on filled bytes")
		}
	}); n != 0 {
		t.Fatalf("Fill/Verify/Check allocate %v times per call, want 0", n)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(uint64(0), uint16(100), uint16(50), uint8(7))
	f.Add(uint64(1<<40+3), uint16(20000), uint16(16319), uint8(0))
	f.Add(uint64(254), uint16(1), uint16(0), uint8(255))
	f.Fuzz(func(t *testing.T, off uint64, n, flip uint16, seqN uint8) {
		b := make([]byte, n)
		Fill(b, off)
		if i := Verify(b, off); i != -1 {
			t.Fatalf("Verify(Fill(len %d, off %d)) = %d", n, off, i)
		}
		q := NewSeq(int(seqN))
		qb := make([]byte, n)
		q.Fill(qb, off)
		if i := q.Verify(qb, off); i != -1 {
			t.Fatalf("Seq(%d).Verify(Fill(len %d, off %d)) = %d", seqN, n, off, i)
		}
		if n == 0 {
			return
		}
		at := int(flip) % int(n)
		b[at] ^= 0xff
		qb[at] ^= 0xff
		if i := Verify(b, off); i != at {
			t.Fatalf("flipped byte %d of len %d at off %d: Verify = %d", at, n, off, i)
		}
		if i := q.Verify(qb, off); i != at {
			t.Fatalf("Seq(%d): flipped byte %d of len %d at off %d: Verify = %d", seqN, at, n, off, i)
		}
	})
}
