// SPDX-License-Identifier: MIT

package pattern

// Seq is the payload stream of the kernel selftest's `ncdevmem -v N` (tools/testing/selftests/
// drivers/net/hw/ncdevmem.c): one u8 seed starting at 1 runs across frags and recvmsg calls; each byte
// is the seed, or '\n' when the seed is 0; then the seed increments and resets to 0 when it equals
// N. With 2 <= N <= 255 that is bytes 1..N-1 then '\n', period N. Other N behave exactly as the C
// tool's u8 arithmetic does (N >= 256 or N < 0: period 256; N == 1: bytes 1..255 then '\n'
// forever). The C tool does not validate at all with N == 0; Seq does not special-case it.
type Seq struct {
	n int
	s *stream
}

// NewSeq returns the `-v n` stream.
func NewSeq(n int) *Seq {
	// Run the C tool's u8 state machine until its state repeats: the visited values are the prefix
	// and the period, whatever n is.
	var vals []byte
	first := map[uint8]int{}
	seed := uint8(1)
	for {
		if i, ok := first[seed]; ok {
			pre, period := i, len(vals)-i
			return &Seq{n: n, s: newStream(func(k int) byte {
				if k < pre {
					return vals[k]
				}
				return vals[pre+(k-pre)%period]
			}, pre, period)}
		}
		first[seed] = len(vals)
		v := seed
		if v == 0 {
			v = '\n'
		}
		vals = append(vals, v)
		seed++
		if int(seed) == n {
			seed = 0
		}
	}
}

// N returns the n the stream was made with.
func (q *Seq) N() int { return q.n }

// Fill writes stream bytes [off, off+len(dst)) into dst.
func (q *Seq) Fill(dst []byte, off uint64) { q.s.fill(dst, off) }

// Verify returns -1 when b holds stream bytes [off, off+len(b)), otherwise the index in b of the first
// wrong byte. It allocates nothing.
func (q *Seq) Verify(b []byte, off uint64) int { return q.s.verify(b, off) }

// At returns the stream's byte at stream offset off.
func (q *Seq) At(off uint64) byte { return q.s.ref[q.s.pos(off)] }

// Check verifies b at stream offset off and returns nil or a *MismatchError for flow.
func (q *Seq) Check(flow int, b []byte, off uint64) error {
	i := q.s.verify(b, off)
	if i < 0 {
		return nil
	}
	o := off + uint64(i)
	return &MismatchError{Flow: flow, Offset: o, Expected: q.At(o), Actual: b[i]}
}
