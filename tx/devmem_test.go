// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package tx

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/internal/devmemsim"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/devmemtcp/ncdevmem/pattern"
)

// dmReceiver checks the stream arriving on c against the pattern and reports bytes and the first
// mismatch.
func dmReceiver(c net.Conn) chan error {
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		var off uint64
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if err := pattern.Check(0, buf[:n], off); err != nil {
					done <- err
					io.Copy(io.Discard, c)
					return
				}
				off += uint64(n)
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				done <- err
				return
			}
		}
	}()
	return done
}

type dmResult struct {
	e    *Devmem
	sim  *devmemsim.Sim
	st   *Stats
	err  error // Send's
	rerr error // the receiver's
}

// dmSend runs a devmem sender on a simulator for d over loopback TCP.
func dmSend(t *testing.T, d time.Duration, sc devmemsim.Config, ifname string, tune func(*DevmemConfig, *devmemsim.Sim)) dmResult {
	t.Helper()
	if sc.Size == 0 {
		sc.Size = 1 << 20
	}
	if sc.TXID == 0 {
		sc.TXID = 5
	}
	sim, err := devmemsim.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	if err := FillDevmem(sim.Buffer()); err != nil {
		t.Fatal(err)
	}
	cfg := DevmemConfig{Buf: sim.Buffer(), DmabufID: 5, Base: 1000, Length: 300000, WriteSize: 64 << 10, Ifname: "eth1", Sys: sim}
	if tune != nil {
		tune(&cfg, sim)
	}
	e, err := NewDevmem(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, dst := testnet.TCPPair(t)
	rc := testnet.RawConn(t, src)
	if ifname != "" {
		if err := Control(sim, ifname)("tcp", "", rc); err != nil {
			t.Fatal(err)
		}
	}
	done := dmReceiver(dst)
	src.SetWriteDeadline(time.Now().Add(d))
	var st Stats
	serr := e.Send(rc, &st)
	src.CloseWrite()
	return dmResult{e: e, sim: sim, st: &st, err: serr, rerr: <-done}
}

func TestDevmemSend(t *testing.T) {
	r := dmSend(t, 300*time.Millisecond, devmemsim.Config{}, "eth1", nil)
	if !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send: %v, want the deadline", r.err)
	}
	if r.rerr != nil {
		t.Fatal(r.rerr)
	}
	s := &r.e.Stats
	if r.st.Bytes.Load() != r.e.Offset() || r.e.Offset() < 1<<20 || s.Sends.Load() != r.st.ZCSends.Load() {
		t.Errorf("bytes %d, offset %d, sends %d/%d", r.st.Bytes.Load(), r.e.Offset(), s.Sends.Load(), r.st.ZCSends.Load())
	}
	sc := r.sim.Counters()
	if s.Completions.Load() == 0 || s.Completions.Load() > s.Sends.Load() || s.Completions.Load() != uint64(sc.Completed) ||
		r.st.ZCCopied.Load() != 0 || sc.Copied != 0 {
		t.Errorf("completions %d of %d sends (simulator %d), copied %d (simulator %d)",
			s.Completions.Load(), s.Sends.Load(), sc.Completed, r.st.ZCCopied.Load(), sc.Copied)
	}
	if r.e.Inflight() > r.e.ring {
		t.Errorf("%d bytes in flight on a %d-byte ring", r.e.Inflight(), r.e.ring)
	}
}

func TestDevmemSendVariants(t *testing.T) {
	for name, tc := range map[string]struct {
		sc   devmemsim.Config
		tune func(*DevmemConfig, *devmemsim.Sim)
		chk  func(*testing.T, dmResult)
	}{
		"short sends": {sc: devmemsim.Config{ShortEvery: 3}, chk: func(t *testing.T, r dmResult) {
			if r.e.Stats.ShortSends.Load() == 0 {
				t.Error("no short send counted")
			}
		}},
		"copied completions": {sc: devmemsim.Config{CopiedEvery: 2}, chk: func(t *testing.T, r dmResult) {
			// Exactly what the simulator put on the error queue, in both the engine's and the
			// caller's counters.
			sc := r.sim.Counters()
			if c := r.st.ZCCopied.Load(); sc.Copied == 0 || c != uint64(sc.Copied) || c != r.e.Stats.Copied.Load() {
				t.Errorf("copied: caller %d, engine %d, simulator %d (want equal, not 0)", c, r.e.Stats.Copied.Load(), sc.Copied)
			}
			if c := r.e.Stats.Completions.Load(); c != uint64(sc.Completed) || r.st.ZCCompleted.Load() != c {
				t.Errorf("completed: caller %d, engine %d, simulator %d", r.st.ZCCompleted.Load(), c, sc.Completed)
			}
		}},
		"ENOBUFS waits for completions": {sc: devmemsim.Config{NobufsEvery: 5}, chk: func(t *testing.T, r dmResult) {
			if r.e.Stats.Nobufs.Load() == 0 {
				t.Error("no ENOBUFS seen")
			}
		}},
		"chunked iovecs":             {tune: func(c *DevmemConfig, _ *devmemsim.Sim) { c.Chunk = 1000 }},
		"phase at base 0, tiny ring": {tune: func(c *DevmemConfig, _ *devmemsim.Sim) { c.Base, c.Length, c.WriteSize = 0, 1000, 333 }},
		"unmapped fill":              {tune: func(c *DevmemConfig, s *devmemsim.Sim) { FillDevmem(s.Buffer().Unmapped()) }},
	} {
		t.Run(name, func(t *testing.T) {
			r := dmSend(t, 200*time.Millisecond, tc.sc, "eth1", tc.tune)
			if !errors.Is(r.err, os.ErrDeadlineExceeded) || r.rerr != nil {
				t.Fatalf("Send: %v; receiver: %v", r.err, r.rerr)
			}
			if r.e.Offset() == 0 {
				t.Fatal("nothing sent")
			}
			if tc.chk != nil {
				tc.chk(t, r)
			}
		})
	}
}

// Without completions no region is reused: the flow sends one ring's worth and waits.
func TestDevmemSendWaitsForCompletions(t *testing.T) {
	r := dmSend(t, 300*time.Millisecond, devmemsim.Config{HoldCompletions: true}, "eth1", nil)
	if !errors.Is(r.err, os.ErrDeadlineExceeded) || r.rerr != nil {
		t.Fatalf("Send: %v; receiver: %v", r.err, r.rerr)
	}
	if r.e.Offset() != r.e.ring || r.e.Stats.Waits.Load() == 0 || r.e.Stats.Completions.Load() != 0 {
		t.Errorf("sent %d on a %d-byte ring, waits %d, completions %d", r.e.Offset(), r.e.ring, r.e.Stats.Waits.Load(), r.e.Stats.Completions.Load())
	}
}

func TestDevmemSendErrors(t *testing.T) {
	big, _ := dmabuf.NewHost(4 << 20)
	for name, tc := range map[string]struct {
		sc     devmemsim.Config
		ifname string
		tune   func(*DevmemConfig, *devmemsim.Sim)
		errno  unix.Errno
		want   string
	}{
		"no bind-tx":      {sc: devmemsim.Config{TXID: 9}, ifname: "eth1", errno: unix.EINVAL, want: "not a TX binding"},
		"no SO_ZEROCOPY":  {errno: unix.EINVAL, want: "SO_ZEROCOPY is off"},
		"route elsewhere": {sc: devmemsim.Config{RouteDev: "eth0", BindDev: "eth1"}, ifname: "eth1", errno: unix.ENODEV, want: "another device than eth1"},
		"offset past end": {ifname: "eth1", tune: func(c *DevmemConfig, _ *devmemsim.Sim) { c.Buf, c.Base, c.Length = big, 2<<20, 0 }, errno: unix.EFAULT, want: "outside the 4194304-byte dma-buf"},
	} {
		t.Run(name, func(t *testing.T) {
			r := dmSend(t, 5*time.Second, tc.sc, tc.ifname, tc.tune)
			if !errors.Is(r.err, tc.errno) || !strings.Contains(r.err.Error(), tc.want) {
				t.Fatalf("Send: %v, want %v mentioning %q", r.err, tc.errno, tc.want)
			}
		})
	}
	e := &Devmem{cfg: DevmemConfig{Buf: big, Ifname: "eth1"}, ring: 255}
	if err := e.sendError(unix.ENOBUFS, 10); !strings.Contains(err.Error(), "optmem_max") {
		t.Errorf("ENOBUFS: %v", err)
	}
}

func TestNewDevmemChecks(t *testing.T) {
	h, _ := dmabuf.NewHost(4096)
	for _, cfg := range []DevmemConfig{
		{},
		{Buf: h, WriteSize: 1, Base: 4000},
		{Buf: h, WriteSize: 1, Base: 1, Length: 4096},
		{Buf: h},
		{Buf: h, WriteSize: 1, Chunk: -1},
	} {
		if _, err := NewDevmem(cfg); err == nil {
			t.Errorf("NewDevmem(%+v) accepted", cfg)
		}
	}
}

func zcCmsg(lo, hi uint32, code uint8, origin uint8) []byte {
	b := make([]byte, unix.CmsgSpace(uapi.SizeofSockExtendedErr+16))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_IPV6, unix.IPV6_RECVERR
	h.SetLen(unix.CmsgLen(uapi.SizeofSockExtendedErr + 16))
	*(*unix.SockExtendedErr)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = unix.SockExtendedErr{Origin: origin, Code: code, Info: lo, Data: hi}
	return b
}

func TestZCIter(t *testing.T) {
	b := append(zcCmsg(3, 7, 0, unix.SO_EE_ORIGIN_ZEROCOPY), zcCmsg(8, 8, unix.SO_EE_CODE_ZEROCOPY_COPIED, unix.SO_EE_ORIGIN_ZEROCOPY)...)
	it := zcIter{rem: b}
	var got []zcRange
	for {
		r, ok, err := it.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, r)
	}
	if len(got) != 2 || got[0] != (zcRange{3, 7, false}) || got[1] != (zcRange{8, 8, true}) {
		t.Errorf("got %+v", got)
	}
	it = zcIter{rem: zcCmsg(1, 1, 0, 2 /* SO_EE_ORIGIN_LOCAL */)}
	if _, _, err := it.next(); err == nil {
		t.Error("a non-zerocopy error was taken for a completion")
	}
}

func TestDevmemComplete(t *testing.T) {
	e := &Devmem{recs: make([]uint64, maxInflight), done: make([]bool, maxInflight), st: &Stats{}}
	// Sequence numbers wrap at 2^32.
	e.seq, e.tseq = 1<<32-2, 1<<32-2
	for i := 0; i < 4; i++ {
		e.head += 100
		e.recs[e.seq%maxInflight] = e.head
		e.seq++
	}
	if err := e.complete(zcRange{lo: 0, hi: 1}); err != nil || e.tail != 0 {
		t.Fatalf("out-of-order completion: err %v, tail %d", err, e.tail)
	}
	if err := e.complete(zcRange{lo: 1<<32 - 2, hi: 1<<32 - 1}); err != nil || e.tail != 400 || e.Inflight() != 0 {
		t.Fatalf("err %v, tail %d, inflight %d", err, e.tail, e.Inflight())
	}
	if err := e.complete(zcRange{lo: 2, hi: 2}); err == nil {
		t.Error("completion of a send never made was accepted")
	}
}

func FuzzParseZerocopyCompletions(f *testing.F) {
	f.Add(zcCmsg(0, 5, 1, unix.SO_EE_ORIGIN_ZEROCOPY))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		it := zcIter{rem: b}
		for i := 0; i <= len(b); i++ {
			if _, ok, err := it.next(); !ok || err != nil {
				return
			}
		}
		t.Fatal("iterator did not advance")
	})
}

// nullSys accepts every send and completes all of them on the next error-queue read.
type nullSys struct {
	sent, done uint32
	comp       []byte
}

func (n *nullSys) Sendmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	t := 0
	for _, v := range unsafe.Slice((*rawIovec)(unsafe.Pointer(msg.Iov)), msg.Iovlen) {
		t += int(v.len)
	}
	n.sent++
	return t, nil
}

func (n *nullSys) Recvmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	if n.done == n.sent {
		return 0, unix.EAGAIN
	}
	b := unsafe.Slice(msg.Control, msg.Controllen)
	copy(b, n.comp)
	ee := (*unix.SockExtendedErr)(unsafe.Pointer(&b[unix.CmsgLen(0)]))
	ee.Info, ee.Data = n.done, n.sent-1
	n.done = n.sent
	msg.SetControllen(len(n.comp))
	msg.Flags = 0
	return 0, nil
}

func (n *nullSys) Setsockopt(int, int, int, []byte) (int, error) { return 0, nil }

type fakeRC struct{}

func (fakeRC) Control(f func(uintptr)) error    { f(0); return nil }
func (fakeRC) Read(f func(uintptr) bool) error  { f(0); return nil }
func (fakeRC) Write(f func(uintptr) bool) error { f(0); return nil }

var _ syscall.RawConn = fakeRC{}

// nullEngine is a devmem TX engine over nullSys: send runs the engine's work per sendmsg (64 KiB
// from the dma-buf: cmsg building, the send, completions read every few sends).
func nullEngine(tb testing.TB) (st *Stats, send func()) {
	tb.Helper()
	h, err := dmabuf.NewHost(64 << 20)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	ns := &nullSys{comp: zcCmsg(0, 0, 0, unix.SO_EE_ORIGIN_ZEROCOPY)}
	e, err := NewDevmem(DevmemConfig{Buf: h, DmabufID: 1, WriteSize: 64 << 10, Sys: ns})
	if err != nil {
		tb.Fatal(err)
	}
	st = &Stats{}
	e.st = st
	var rc syscall.RawConn = fakeRC{}
	return st, func() {
		e.wait, e.err = false, nil
		rc.Write(e.writeFn)
		if e.err != nil {
			tb.Fatal(e.err)
		}
		if e.wait {
			rc.Write(e.waitFn)
		}
	}
}

// BenchmarkDevmemSendmsg times nullEngine's sends; TestDevmemSendmsgAllocs holds them to zero
// allocations.
func BenchmarkDevmemSendmsg(b *testing.B) {
	st, send := nullEngine(b)
	b.SetBytes(64 << 10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		send()
	}
	b.StopTimer()
	if b.N > 2*devmemReapEvery && st.ZCCompleted.Load() == 0 {
		b.Fatal("no completions reaped")
	}
}

// TestDevmemSendmsgAllocs: building the devmem cmsg, sending and reading completions allocate
// nothing (benchmarks do not run in CI; this does).
func TestDevmemSendmsgAllocs(t *testing.T) {
	st, send := nullEngine(t)
	allocs := testing.AllocsPerRun(4*devmemReapEvery, send)
	if allocs != 0 || st.ZCCompleted.Load() == 0 {
		t.Fatalf("%v allocations per sendmsg (want 0), %d completions read (want some)", allocs, st.ZCCompleted.Load())
	}
}
