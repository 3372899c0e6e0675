// SPDX-License-Identifier: MIT

// Package pattern is the payload stream of a flow: a byte sequence whose value at stream offset k is
// a function of k alone, so it survives any segmentation, coalescing or frag split on the way. It
// generates and verifies that stream at memory speed and reports the first bad offset.
//
// The default stream is kperf's: byte k is 1 + k%255 (period 255, never zero, coprime with every
// page size so a stuck or repeated page shows up). Seq is the kernel selftest's `ncdevmem -v N`
// stream.
//
// Speed: a reference block holds the stream's first 16 KiB and one period more, so from any phase
// at least 16 KiB of the stream lies ahead in it. Verify is a sequence of bytes.Equal calls against
// that block (the runtime's vectorised memequal: wide vector loads and compares, no per-byte
// branches; about ten times faster here than a uint64 loop, see BenchmarkVerifyWords), and Fill a
// sequence of copies out of it. Only a chunk that differs is rescanned byte by byte to find the
// offset, which is off the fast path. Neither allocates.
package pattern

import (
	"bytes"
	"fmt"
)

// Period is the length of the default stream's period.
const Period = 255

// refChunk is the least length of one reference chunk (rounded up to whole periods): 16 KiB keeps the
// block in L1 while making the per-chunk overhead (one modulo, one call) negligible.
const refChunk = 16 << 10

// def is the default period-255 stream.
var def = newStream(func(k int) byte { return byte(1 + k%Period) }, 0, Period)

// Fill writes stream bytes [off, off+len(dst)) of the default stream into dst.
func Fill(dst []byte, off uint64) { def.fill(dst, off) }

// Verify returns -1 when b holds stream bytes [off, off+len(b)) of the default stream, otherwise the
// index in b of the first wrong byte. It allocates nothing.
func Verify(b []byte, off uint64) int { return def.verify(b, off) }

// At returns the default stream's byte at stream offset off.
func At(off uint64) byte { return byte(1 + off%Period) }

// Check verifies b at stream offset off of the default stream and returns nil or a *MismatchError
// naming flow, the stream offset of the first wrong byte, and the expected and actual bytes.
func Check(flow int, b []byte, off uint64) error {
	i := def.verify(b, off)
	if i < 0 {
		return nil
	}
	o := off + uint64(i)
	return &MismatchError{Flow: flow, Offset: o, Expected: At(o), Actual: b[i]}
}

// MismatchError is a payload validation failure: the first byte of a flow's stream that differs from
// the pattern.
type MismatchError struct {
	Flow     int    // flow ID
	Offset   uint64 // stream offset of the first wrong byte (bytes since the flow started)
	Expected byte
	Actual   byte
}

// Error reads like "flow 2: payload mismatch at stream offset 123456: expected 0x25, got 0x00".
func (e *MismatchError) Error() string {
	return fmt.Sprintf("flow %d: payload mismatch at stream offset %d: expected %#02x, got %#02x",
		e.Flow, e.Offset, e.Expected, e.Actual)
}

// stream is a byte sequence made of a prefix of pre bytes followed by a repeating period. ref holds
// the stream's first pre + (reps+1)*period bytes, with reps*period >= refChunk, so from any position
// at or past pre there is at least refChunk bytes of reference ahead of its phase.
type stream struct {
	ref    []byte
	pre    uint64
	period uint64
}

// newStream builds the reference block from at, the stream's value at absolute position k.
func newStream(at func(k int) byte, pre, period int) *stream {
	reps := (refChunk + period - 1) / period
	n := pre + (reps+1)*period
	ref := make([]byte, n)
	for k := range ref {
		ref[k] = at(k)
	}
	return &stream{ref: ref, pre: uint64(pre), period: uint64(period)}
}

// pos maps stream offset off to the index in ref holding the same byte and phase.
func (s *stream) pos(off uint64) int {
	if off < s.pre {
		return int(off)
	}
	return int(s.pre + (off-s.pre)%s.period)
}

// fillChunk bounds each copy in fill. The runtime's memmove copies 2048 bytes or more to a 16-byte
// aligned destination with REP MOVSQ, which crawls (several times slower, measured here) when the
// source is not 8-byte aligned as well, and a pattern phase lands anywhere. Below 2048 bytes it
// uses unaligned vector moves whose speed does not depend on alignment.
const fillChunk = 2040

func (s *stream) fill(dst []byte, off uint64) {
	for len(dst) > 0 {
		n := copy(dst[:min(len(dst), fillChunk)], s.ref[s.pos(off):])
		dst = dst[n:]
		off += uint64(n)
	}
}

func (s *stream) verify(b []byte, off uint64) int {
	done := 0
	for done < len(b) {
		r := s.ref[s.pos(off):]
		n := min(len(b)-done, len(r))
		if !bytes.Equal(b[done:done+n], r[:n]) {
			return done + firstDiff(b[done:done+n], r[:n])
		}
		done += n
		off += uint64(n)
	}
	return -1
}

// firstDiff returns the index of the first byte where a and b (of equal length) differ, or -1.
// It runs only after bytes.Equal reported a difference.
func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
