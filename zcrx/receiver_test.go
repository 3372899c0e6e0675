// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package zcrx

import (
	"errors"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/devmemtcp/ncdevmem/pattern"
)

// fakeKernel lays out a ring and an ifq in Go memory exactly as the kernel's mmaps would be, so
// the completion path can be driven without a NIC: the test plays the kernel's side of the CQ
// (posting 32-byte CQEs) and of the refill ring (consuming entries by moving its head).
type fakeKernel struct {
	r      *Receiver
	q      *Ifq
	cqMem  []uint64
	sqMem  []uint64
	rqMem  []uint64
	cqTail uint32
}

const fakeCQ = 64

func newFake(t testing.TB, areaPages int, rqEntries uint32) *fakeKernel {
	fk := &fakeKernel{}
	// CQ: head, tail, then the CQEs (32 bytes each) at offset 64.
	fk.cqMem = make([]uint64, (64+fakeCQ*32)/8)
	cq := unsafe.Pointer(&fk.cqMem[0])
	fk.sqMem = make([]uint64, (64+8*uapi.SizeofIoUringSqe)/8)
	sq := unsafe.Pointer(&fk.sqMem[0])
	ring := &Ring{fd: -1,
		cqHead: (*uint32)(cq), cqTail: (*uint32)(unsafe.Add(cq, 4)), cqMask: fakeCQ - 1, cqes: unsafe.Add(cq, 64),
		sqHead: (*uint32)(sq), sqTail: (*uint32)(unsafe.Add(sq, 4)), sqMask: 7, sqEntries: 8, sqes: unsafe.Add(sq, 64),
	}
	area := make([]byte, areaPages*pageSize)
	fk.rqMem = make([]uint64, (128+int(rqEntries)*16)/8)
	rq := unsafe.Pointer(&fk.rqMem[0])
	fk.q = &Ifq{ID: 3, BufLen: pageSize, token: 5 << uapi.IORING_ZCRX_AREA_SHIFT, area: area,
		rqHead: (*uint32)(rq), rqTail: (*uint32)(unsafe.Add(rq, 64)), rqes: unsafe.Add(rq, 128),
		rqMask: rqEntries - 1, entries: rqEntries}
	fk.r = &Receiver{ring: ring, ifq: fk.q, batch: 4, park: make([]uapi.IoUringZcrxRqe, rqEntries)}
	return fk
}

// post appends one CQE as the kernel would.
func (fk *fakeKernel) post(ud uint64, res int32, flags uint32, off uint64) {
	c := (*cqe)(unsafe.Add(fk.r.ring.cqes, uintptr(fk.cqTail&(fakeCQ-1))*32))
	c.UserData, c.Res, c.Flags, c.zc.Off = ud, res, flags, off
	fk.cqTail++
	atomic.StoreUint32(fk.r.ring.cqTail, fk.cqTail)
}

func (fk *fakeKernel) rqe(i uint32) uapi.IoUringZcrxRqe {
	return *(*uapi.IoUringZcrxRqe)(unsafe.Add(fk.q.rqes, uintptr(i&fk.q.rqMask)*16))
}

func (fk *fakeKernel) addFlow(id int, verify func([]byte, uint64) error) *Flow {
	f := &Flow{id: id, fd: 100 + id, verify: verify, every: 1, live: new(atomic.Uint64), done: make(chan struct{}), armed: true}
	fk.r.flows = append(fk.r.flows, f)
	fk.r.armed++
	return f
}

func check(id int) func([]byte, uint64) error {
	return func(p []byte, off uint64) error { return pattern.Check(id, p, off) }
}

func TestReapValidatesAndReturnsInBatches(t *testing.T) {
	fk := newFake(t, 16, 64)
	f := fk.addFlow(0, check(0))
	// Ten completions of 1000 bytes at scattered area offsets; the pattern written where each lands.
	var stream uint64
	for i := range 10 {
		off := uint64(i*pageSize + 96)
		pattern.Fill(fk.q.area[off:off+1000], stream)
		stream += 1000
		fk.post(kindData, 1000, uapi.IORING_CQE_F_MORE, off|fk.q.token)
	}
	if !fk.r.reap() {
		t.Fatal("reap stalled with an empty refill ring")
	}
	s := fk.r.snapshot()
	if s.Bytes != 10000 || s.Completions != 10 || f.live.Load() != 10000 {
		t.Fatalf("bytes %d completions %d live %d, want 10000 10 10000", s.Bytes, s.Completions, f.live.Load())
	}
	// Batch of 4: publications at 4, 8, then the rest at the end of the reap.
	if s.RefillBatches != 3 || s.RefillEntries != 10 {
		t.Fatalf("refill batches %d entries %d, want 3 and 10", s.RefillBatches, s.RefillEntries)
	}
	if got := atomic.LoadUint32(fk.q.rqTail); got != 10 {
		t.Fatalf("refill tail %d, want 10", got)
	}
	for i := range uint32(10) {
		e := fk.rqe(i)
		want := uint64(int(i)*pageSize+96) | fk.q.token
		if e.Off != want || e.Len != 1000 {
			t.Fatalf("rqe %d = {%#x %d}, want {%#x 1000}", i, e.Off, e.Len, want)
		}
	}
	if f.off != 10000 || f.ended {
		t.Fatalf("flow offset %d ended %v", f.off, f.ended)
	}
	// EOF: the final CQE without F_MORE and res 0.
	fk.post(kindData, 0, 0, 0)
	fk.r.reap()
	select {
	case <-f.Done():
	default:
		t.Fatal("flow not done after EOF")
	}
	if f.Err() != nil {
		t.Fatalf("EOF gave %v", f.Err())
	}
}

// TestValidateBeforeReturn: a completion is validated before its buffer is published back, so
// the kernel cannot reuse (and the NIC overwrite) a buffer still being checked.
func TestValidateBeforeReturn(t *testing.T) {
	fk := newFake(t, 4, 16)
	fk.r.batch = 1 // every return is published at once
	var tailAtVerify uint32
	fk.addFlow(0, func(p []byte, off uint64) error {
		tailAtVerify = atomic.LoadUint32(fk.q.rqTail)
		return nil
	})
	fk.post(kindData, 100, uapi.IORING_CQE_F_MORE, fk.q.token)
	fk.r.reap()
	if tailAtVerify != 0 || atomic.LoadUint32(fk.q.rqTail) != 1 {
		t.Fatalf("refill tail %d while validating (want 0), %d after (want 1)", tailAtVerify, atomic.LoadUint32(fk.q.rqTail))
	}
}

func TestReapCatchesCorruption(t *testing.T) {
	fk := newFake(t, 4, 16)
	f := fk.addFlow(2, check(2))
	pattern.Fill(fk.q.area[:3000], 0)
	fk.q.area[1234] ^= 0xff
	fk.post(kindData, 3000, uapi.IORING_CQE_F_MORE, fk.q.token)
	fk.r.reap()
	<-f.Done()
	var me *pattern.MismatchError
	if !errors.As(f.Err(), &me) || me.Flow != 2 || me.Offset != 1234 {
		t.Fatalf("got %v, want a mismatch of flow 2 at offset 1234", f.Err())
	}
	// The buffer still goes back, and the flow's request is cancelled.
	if fk.r.C.RefillEntries.Load() != 1 {
		t.Fatalf("corrupt buffer not returned")
	}
	if fk.r.ring.pending() != 1 {
		t.Fatalf("no ASYNC_CANCEL queued for the failed flow")
	}
}

func TestReapRefusesOffsetOutsideArea(t *testing.T) {
	fk := newFake(t, 1, 16)
	f := fk.addFlow(0, nil)
	fk.post(kindData, 200, uapi.IORING_CQE_F_MORE, uint64(pageSize-100)|fk.q.token)
	fk.r.reap()
	<-f.Done()
	if !errors.Is(f.Err(), errBadOffset) {
		t.Fatalf("got %v, want errBadOffset", f.Err())
	}
}

func TestRefillPressureParksAndNeverLoses(t *testing.T) {
	fk := newFake(t, 64, 4) // a refill ring of 4 entries, a park of 4
	fk.r.batch = 2
	f := fk.addFlow(0, check(0))
	var stream uint64
	post := func(i int) {
		off := uint64(i%64) * pageSize
		pattern.Fill(fk.q.area[off:off+500], stream)
		stream += 500
		fk.post(kindData, 500, uapi.IORING_CQE_F_MORE, off|fk.q.token)
	}
	for i := range 10 {
		post(i)
	}
	// 4 fit the ring, 4 are parked, the ninth waits in the CQ.
	if fk.r.reap() {
		t.Fatal("reap did not report the stall")
	}
	if got := fk.r.C.Completions.Load(); got != 8 {
		t.Fatalf("completions %d, want 8 before the kernel consumed anything", got)
	}
	if fk.r.C.RefillStalls.Load() != 4 {
		t.Fatalf("stalls %d, want 4", fk.r.C.RefillStalls.Load())
	}
	// The kernel takes all four: the parked ones move in, then the rest of the CQ.
	atomic.StoreUint32(fk.q.rqHead, 4)
	if !fk.r.reap() {
		t.Fatal("still stalled after the kernel consumed the ring")
	}
	atomic.StoreUint32(fk.q.rqHead, 8)
	fk.r.reap()
	atomic.StoreUint32(fk.q.rqHead, 10)
	fk.r.reap()
	if got := fk.r.C.RefillEntries.Load(); got != 10 {
		t.Fatalf("returned %d buffers, want all 10", got)
	}
	if f.off != 5000 || f.ended {
		t.Fatalf("offset %d ended %v (err %v)", f.off, f.ended, f.err)
	}
}

func TestReapRearmsAfterENOSPC(t *testing.T) {
	fk := newFake(t, 4, 16)
	f := fk.addFlow(0, nil)
	fk.post(kindData, -int32(unix.ENOSPC), 0, 0)
	fk.r.reap()
	if f.ended || !f.armed || fk.r.C.Rearms.Load() != 1 || fk.r.ring.pending() != 1 {
		t.Fatalf("ended %v armed %v rearms %d pending %d", f.ended, f.armed, fk.r.C.Rearms.Load(), fk.r.ring.pending())
	}
	s := (*uapi.IoUringSqe)(fk.r.ring.sqes)
	if s.Opcode != uapi.IORING_OP_RECV_ZC || s.Ioprio != uapi.IORING_RECV_MULTISHOT || s.ZcrxIfqIdx != 3 || s.Fd != 100 {
		t.Fatalf("re-armed SQE %+v", *s)
	}
	fk.post(kindData, -int32(unix.ECONNRESET), 0, 0)
	fk.r.reap()
	<-f.Done()
	if !errors.Is(f.Err(), unix.ECONNRESET) {
		t.Fatalf("got %v", f.Err())
	}
}

// TestHandleAllocatesNothing enforces zero allocations per completion: validation, the refill
// entry and the counters included.
func TestHandleAllocatesNothing(t *testing.T) {
	fk := newFake(t, 16, 1024)
	f := fk.addFlow(0, check(0))
	fk.r.batch = 16
	off := uint64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		pattern.Fill(fk.q.area[:1448], f.off) // the "NIC" writes the next bytes
		fk.post(kindData, 1448, uapi.IORING_CQE_F_MORE, off|fk.q.token)
		fk.r.reap()
		atomic.StoreUint32(fk.q.rqHead, atomic.LoadUint32(fk.q.rqTail)) // the kernel takes them back
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per completion, want 0", allocs)
	}
	if f.ended {
		t.Fatalf("flow ended: %v", f.err)
	}
}

func BenchmarkHandle(b *testing.B) {
	fk := newFake(b, 16, 1024)
	f := fk.addFlow(0, check(0))
	fk.r.batch = 32
	b.ReportAllocs()
	b.SetBytes(1448)
	for b.Loop() {
		pattern.Fill(fk.q.area[:1448], f.off)
		fk.post(kindData, 1448, uapi.IORING_CQE_F_MORE, fk.q.token)
		fk.r.reap()
		atomic.StoreUint32(fk.q.rqHead, atomic.LoadUint32(fk.q.rqTail))
	}
}

func TestCheckArea(t *testing.T) {
	for _, tc := range []struct {
		size int64
		ok   bool
	}{{MinAreaSize, true}, {MaxAreaSize, true}, {MaxAreaSize + pageSize, false}, {MinAreaSize - pageSize, false}, {MinAreaSize + 1, false}} {
		if err := CheckArea(tc.size); (err == nil) != tc.ok {
			t.Errorf("CheckArea(%d) = %v, want ok=%v", tc.size, err, tc.ok)
		}
	}
}

func TestRefillBatchFitsTheArea(t *testing.T) {
	for _, tc := range []struct {
		want    int
		entries uint32
		bufs    int
		batch   uint32
	}{
		{0, 65536, 16000, DefaultBatch}, // the default area: the default batch
		{32, 256, 64, 4},                // 256 KiB: a sixteenth of 64 buffers
		{32, 64, 16, 1},                 // 64 KiB: every return at once
		{8, 65536, 16000, 8},            // asked smaller
		{64, 16, 16000, 16},             // never more than the refill ring
	} {
		if got := refillBatch(tc.want, tc.entries, tc.bufs); got != tc.batch {
			t.Errorf("refillBatch(%d, %d, %d) = %d, want %d", tc.want, tc.entries, tc.bufs, got, tc.batch)
		}
	}
}

func TestSnapshotAddSub(t *testing.T) {
	var s Snapshot
	s.Add(Snapshot{Bytes: 10, Completions: 2, RefillBatches: 1, CopyKnown: true, CopyBytes: 3})
	s.Add(Snapshot{Bytes: 5, Completions: 1, RefillStalls: 4, CopyKnown: true, CopyBytes: 1})
	if want := (Snapshot{Bytes: 15, Completions: 3, RefillBatches: 1, RefillStalls: 4, CopyKnown: true, CopyBytes: 4}); s != want {
		t.Errorf("sum %+v, want %+v", s, want)
	}
	s.Add(Snapshot{Bytes: 1}) // a receiver whose kernel keeps no copy counters
	if s.CopyKnown {
		t.Error("copy counters known with one receiver that has none")
	}
	d := s.Sub(Snapshot{Bytes: 6, Completions: 1})
	if d.Bytes != 10 || d.Completions != 2 || d.RefillStalls != 4 {
		t.Errorf("difference %+v", d)
	}
}
