// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"encoding/binary"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/devmemsim"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/devmemtcp/ncdevmem/pattern"
)

// buildCmsgs encodes frags as the kernel lays them out in the control buffer.
func buildCmsgs(frags []frag) []byte {
	b := make([]byte, len(frags)*cmsgSpace)
	for i, f := range frags {
		c := b[i*cmsgSpace:]
		h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
		h.Level = unix.SOL_SOCKET
		h.Type = unix.SCM_DEVMEM_DMABUF
		if f.kind == fragLinear {
			h.Type = unix.SCM_DEVMEM_LINEAR
		}
		h.SetLen(unix.CmsgLen(uapi.SizeofDmabufCmsg))
		d := c[unix.CmsgLen(0):]
		binary.NativeEndian.PutUint64(d, f.offset)
		binary.NativeEndian.PutUint32(d[8:], f.size)
		binary.NativeEndian.PutUint32(d[12:], f.token)
		binary.NativeEndian.PutUint32(d[16:], f.id)
	}
	return b
}

func TestCmsgIter(t *testing.T) {
	want := []frag{
		{kind: fragDmabuf, offset: 4096, size: 4000, token: 7, id: 3},
		{kind: fragLinear, size: 66},
		{kind: fragDmabuf, offset: 1 << 33, size: 1, token: 1<<31 - 1, id: 3},
	}
	b := buildCmsgs(want)
	// A foreign cmsg in the middle is skipped.
	other := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&other[0]))
	h.Level, h.Type = unix.SOL_IP, unix.IP_TOS
	h.SetLen(unix.CmsgLen(4))
	b = append(b[:cmsgSpace:cmsgSpace], append(other, b[cmsgSpace:]...)...)
	it := newCmsgIter(b)
	var got []frag
	for {
		f, ok, err := it.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if f.kind != fragOther {
			got = append(got, f)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d frags, want %d", len(got), len(want))
	}
	for i := range want {
		if want[i].kind == fragLinear {
			got[i].offset, got[i].token, got[i].id = 0, 0, 0
		}
		if got[i] != want[i] {
			t.Errorf("frag %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// A devmem cmsg too short for struct dmabuf_cmsg, and a length running past the buffer.
	short := buildCmsgs(want[:1])
	(*unix.Cmsghdr)(unsafe.Pointer(&short[0])).SetLen(unix.CmsgLen(8))
	if _, _, err := (&cmsgIter{rem: short}).next(); err == nil {
		t.Error("short dmabuf_cmsg accepted")
	}
	long := buildCmsgs(want[:1])
	(*unix.Cmsghdr)(unsafe.Pointer(&long[0])).SetLen(1000)
	if _, _, err := (&cmsgIter{rem: long}).next(); err == nil {
		t.Error("overlong cmsg accepted")
	}
}

func FuzzParseDevmemCmsgs(f *testing.F) {
	f.Add(buildCmsgs([]frag{{kind: fragDmabuf, offset: 4096, size: 4096, token: 1, id: 1}, {kind: fragLinear, size: 10}}))
	f.Add([]byte{})
	f.Add(make([]byte, 17))
	f.Fuzz(func(t *testing.T, b []byte) {
		it := newCmsgIter(b)
		for i := 0; ; i++ {
			f, ok, err := it.next()
			if err != nil || !ok {
				return
			}
			if i > len(b) {
				t.Fatalf("iterator did not advance")
			}
			_ = f
		}
	})
}

// BenchmarkCmsgParse measures decoding one frag's cmsg (ns/op is per frag).
func BenchmarkCmsgParse(b *testing.B) {
	frags := make([]frag, DefaultMaxFrags)
	for i := range frags {
		frags[i] = frag{kind: fragDmabuf, offset: uint64(i) * 4096, size: 4096, token: uint32(i), id: 1}
	}
	oob := buildCmsgs(frags)
	b.ReportAllocs()
	b.ResetTimer()
	var sum uint64
	for i := 0; i < b.N; i += len(frags) {
		it := newCmsgIter(oob)
		for {
			f, ok, err := it.next()
			if err != nil || !ok {
				break
			}
			sum += uint64(f.size)
		}
	}
	if sum == 0 {
		b.Fatal("nothing parsed")
	}
}

// replaySys answers every recvmsg with the same kernel-built batch of frags and frees any tokens,
// so a benchmark measures the engine alone.
type replaySys struct {
	oob []byte
	n   int
}

func (r *replaySys) Recvmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	copy(unsafe.Slice(msg.Control, msg.Controllen), r.oob)
	msg.SetControllen(len(r.oob))
	msg.Flags = 0
	return r.n, nil
}

func (r *replaySys) Setsockopt(fd, level, name int, val []byte) (int, error) {
	n := 0
	for i := 0; i+8 <= len(val); i += 8 {
		n += int(binary.NativeEndian.Uint32(val[i+4:]))
	}
	return n, nil
}

func (r *replaySys) GetsockoptInt(fd, level, name int) (int, error) { return 0, nil }

// fakeRC runs each Read callback once on fd 0.
type fakeRC struct{}

func (fakeRC) Control(f func(uintptr)) error    { f(0); return nil }
func (fakeRC) Read(f func(uintptr) bool) error  { f(0); return nil }
func (fakeRC) Write(f func(uintptr) bool) error { f(0); return nil }

var _ syscall.RawConn = fakeRC{}

// replayEngine is a devmem engine whose every recvmsg returns 16 frags of 4 KiB (a 64 KiB read)
// through replaySys, with validation of the frags on or off. read runs one recvmsg's worth of
// engine work: parse, count, validate, queue tokens, return them.
func replayEngine(tb testing.TB, validate bool) (e *Devmem, read func(), bytes int) {
	tb.Helper()
	sim, err := devmemsim.New(devmemsim.Config{Size: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sim.Close() })
	frags := make([]frag, 16)
	for i := range frags {
		frags[i] = frag{kind: fragDmabuf, offset: uint64(i) * 4096, size: 4096, token: uint32(i), id: 1}
	}
	rs := &replaySys{oob: buildCmsgs(frags), n: 16 * 4096}
	cfg := DevmemConfig{Buf: sim.Buffer(), DmabufID: 1, ReadSize: 64 << 10, Sys: rs, HoldBytes: 1}
	if validate {
		// Every frag holds stream bytes 0..4095, so verify against offset 0 each time.
		cfg.Verify = func(p []byte, _ uint64) error { return pattern.Check(0, p, 0) }
		for i := range frags {
			pattern.Fill(sim.Buffer().Bytes()[i*4096:(i+1)*4096], 0)
		}
	}
	e, err = NewDevmem(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	e.st = &Stats{}
	var rc syscall.RawConn = fakeRC{}
	read = func() {
		e.eof, e.err = false, nil
		if err := rc.Read(e.readFn); err != nil || e.err != nil {
			tb.Fatal(err, e.err)
		}
	}
	return e, read, rs.n
}

// BenchmarkDevmemRecvmsg times one recvmsg's worth of engine work (replayEngine);
// TestDevmemRecvmsgAllocs holds it to zero allocations.
func BenchmarkDevmemRecvmsg(b *testing.B) {
	for _, validate := range []bool{false, true} {
		b.Run(map[bool]string{false: "novalidate", true: "validate"}[validate], func(b *testing.B) {
			e, read, n := replayEngine(b, validate)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				read()
			}
			b.StopTimer()
			if e.Stats.DontneedCalls.Load() < uint64(b.N) {
				b.Fatalf("%d DONTNEED calls for %d recvmsgs", e.Stats.DontneedCalls.Load(), b.N)
			}
		})
	}
}

// BenchmarkDontneedCalls counts SO_DEVMEM_DONTNEED calls per 10,000 tokens through the simulator,
// for scattered tokens with coalescing off (at most 128 per call: 79 calls) and for consecutive
// tokens with coalescing on (up to 1024 per call).
func BenchmarkDontneedCalls(b *testing.B) {
	for _, coalesce := range []bool{false, true} {
		b.Run(map[bool]string{false: "coalesce=off", true: "coalesce=on"}[coalesce], func(b *testing.B) {
			b.ReportAllocs()
			var calls, freed uint64
			for i := 0; i < b.N; i++ {
				e := &Devmem{batch: newTokenBatch(coalesce), sys: &replaySys{}}
				for tok := uint32(0); tok < 10000; tok++ {
					if e.batch.Full() {
						if err := e.flush(); err != nil {
							b.Fatal(err)
						}
					}
					e.batch.Add(tok)
				}
				if err := e.flush(); err != nil {
					b.Fatal(err)
				}
				calls += e.Stats.DontneedCalls.Load()
				freed += e.Stats.Freed.Load()
			}
			if freed != uint64(b.N)*10000 {
				b.Fatalf("freed %d tokens, want %d", freed, uint64(b.N)*10000)
			}
			b.ReportMetric(float64(calls)/float64(b.N), "calls/10k-tokens")
		})
	}
}

// BenchmarkValidateMmap is payload validation straight from an mmap'd (memfd) buffer, as the
// engine does for udmabuf under DMA_BUF_IOCTL_SYNC.
func BenchmarkValidateMmap(b *testing.B) {
	sim, err := devmemsim.New(devmemsim.Config{Size: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	buf := sim.Buffer().Bytes()
	pattern.Fill(buf, 0)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for off := 0; off < len(buf); off += 4096 {
			if err := pattern.Check(0, buf[off:off+4096], uint64(off)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDevmemReceiveSim is the whole receive path on loopback TCP with the simulator in the
// kernel's place: recvmsg, frags written into and validated from the memfd buffer, tokens
// returned. One op is 64 KiB of stream; allocs/op covers the engine, the simulator and the
// sender goroutine.
func BenchmarkDevmemReceiveSim(b *testing.B) {
	sim, err := devmemsim.New(devmemsim.Config{Size: 4 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	e, err := NewDevmem(DevmemConfig{Buf: sim.Buffer(), DmabufID: 1, ReadSize: 256 << 10, Verify: dmVerify, Sys: sim})
	if err != nil {
		b.Fatal(err)
	}
	c, s := testnet.TCPPair(b)
	const chunk = 64 << 10
	total := b.N * chunk
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	go sendPattern(c, total, -1)
	var st Stats
	if err := e.Receive(testnet.RawConn(b, s), &st); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if st.Bytes.Load() != uint64(total) {
		b.Fatalf("received %d of %d bytes", st.Bytes.Load(), total)
	}
	b.ReportMetric(float64(e.Stats.Recvmsgs.Load())/float64(b.N), "recvmsg/op")
}
