// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/internal/devmemsim"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/pattern"
)

func dmVerify(p []byte, off uint64) error { return pattern.Check(0, p, off) }

// dmRun streams n pattern bytes over loopback TCP (corrupting none: the simulator injects faults)
// into a devmem engine sitting on a simulator, and returns the engine, the simulator and Receive's
// result.
func dmRun(t *testing.T, n int, sc devmemsim.Config, tune func(*DevmemConfig, *devmemsim.Sim)) (*Devmem, *devmemsim.Sim, *Stats, error) {
	t.Helper()
	if sc.Size == 0 {
		sc.Size = 256 << 10
	}
	sim, err := devmemsim.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	cfg := DevmemConfig{Buf: sim.Buffer(), DmabufID: 1, ReadSize: 64 << 10, Verify: dmVerify, Sys: sim,
		Ifname: "eth1", Queues: []uint32{14, 15}, Rule: "flow-type tcp4 dst-ip 198.18.0.2 dst-port 5201 -> queue 14"}
	if tune != nil {
		tune(&cfg, sim)
	}
	e, err := NewDevmem(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, s := testnet.TCPPair(t)
	errc := make(chan error, 1)
	go func() { errc <- sendPattern(c, n, -1) }()
	s.SetReadDeadline(time.Now().Add(20 * time.Second))
	var st Stats
	rerr := e.Receive(testnet.RawConn(t, s), &st)
	s.Close() // unblock the sender when the receiver stopped early
	<-errc
	return e, sim, &st, rerr
}

func TestDevmemReceiveValidates(t *testing.T) {
	const n = 8<<20 + 12345
	e, sim, st, err := dmRun(t, n, devmemsim.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := sim.Counters()
	s := &e.Stats
	if st.Bytes.Load() != n || e.Offset() != n || s.DmabufBytes.Load() != n {
		t.Errorf("bytes = %d, offset %d, dmabuf bytes %d; want %d", st.Bytes.Load(), e.Offset(), s.DmabufBytes.Load(), n)
	}
	// A frag the iov cut in two comes back as two frags, the second not aligned: at most one
	// per recvmsg.
	if s.Frags.Load() != uint64(c.Frags) || s.Validated.Load() != s.Frags.Load() || s.PageAlignedFrags.Load()+s.Recvmsgs.Load() < s.Frags.Load() {
		t.Errorf("frags %d (sim %d), validated %d, page aligned %d", s.Frags.Load(), c.Frags, s.Validated.Load(), s.PageAlignedFrags.Load())
	}
	if c.Held != 0 || c.FreeNiovs != 64 || s.Freed.Load() != s.Tokens.Load() {
		t.Errorf("after EOF the sim still has %d tokens held, %d free niovs; engine freed %d of %d", c.Held, c.FreeNiovs, s.Freed.Load(), s.Tokens.Load())
	}
	if c.Stalls != 0 {
		t.Errorf("%d stalls: the engine let the buffer run out", c.Stalls)
	}
	if s.ShortDontneed.Load() != 0 {
		t.Errorf("%d short DONTNEED calls", s.ShortDontneed.Load())
	}
	// Tokens come back promptly, so the kernel's lowest-free allocation makes runs and the engine
	// needs far fewer calls than one per 128 tokens.
	// One call per batch at most: consecutive tokens share a range, so no batch overflows.
	if calls, recvs := s.DontneedCalls.Load(), s.Recvmsgs.Load(); calls == 0 || calls > recvs+1 {
		t.Errorf("%d DONTNEED calls for %d recvmsgs", calls, recvs)
	}
	var d = new(struct{ hist uint64 })
	for i := range s.Hist {
		d.hist += s.Hist[i].Load()
	}
	if d.hist != s.Frags.Load() {
		t.Errorf("histogram holds %d frags, want %d", d.hist, s.Frags.Load())
	}
}

func TestDevmemReceiveUnmapped(t *testing.T) {
	const n = 3 << 20
	e, _, _, err := dmRun(t, n, devmemsim.Config{FragOffset: 64, FragSize: 3000}, func(c *DevmemConfig, s *devmemsim.Sim) {
		c.Buf = s.Buffer().Unmapped()
		c.Chunk = 5000 // smaller than some runs, larger than a frag
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Offset() != n || e.Stats.Validated.Load() != e.Stats.Frags.Load() {
		t.Errorf("offset %d, validated %d of %d frags", e.Offset(), e.Stats.Validated.Load(), e.Stats.Frags.Load())
	}
	if e.Stats.PageAlignedFrags.Load() != 0 {
		t.Errorf("%d frags counted page aligned at niov offset 64", e.Stats.PageAlignedFrags.Load())
	}
}

func TestDevmemReceiveCorrupt(t *testing.T) {
	for _, unmapped := range []bool{false, true} {
		t.Run(fmt.Sprint("unmapped=", unmapped), func(t *testing.T) {
			const bad = 1<<20 + 77
			_, _, _, err := dmRun(t, 2<<20, devmemsim.Config{CorruptAt: bad + 1}, func(c *DevmemConfig, s *devmemsim.Sim) {
				if unmapped {
					c.Buf = s.Buffer().Unmapped()
				}
			})
			var me *pattern.MismatchError
			if !errors.As(err, &me) || me.Offset != bad {
				t.Fatalf("err = %v, want a mismatch at stream offset %d", err, bad)
			}
		})
	}
}

func TestDevmemReceiveLinear(t *testing.T) {
	const n = 2 << 20
	e, _, _, err := dmRun(t, n, devmemsim.Config{LinearEvery: 3, CorruptAt: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &e.Stats
	if s.LinearFrags.Load() == 0 || s.LinearBytes.Load()+s.DmabufBytes.Load() != n {
		t.Errorf("linear frags %d, linear bytes %d + dmabuf bytes %d != %d", s.LinearFrags.Load(), s.LinearBytes.Load(), s.DmabufBytes.Load(), n)
	}
	if s.Validated.Load() != s.Frags.Load()+s.LinearFrags.Load() {
		t.Errorf("validated %d frags, want all %d", s.Validated.Load(), s.Frags.Load()+s.LinearFrags.Load())
	}

	// A corrupted byte inside a LINEAR frag is caught too.
	_, _, _, err = dmRun(t, n, devmemsim.Config{LinearEvery: 1, CorruptAt: 9000 + 1}, nil)
	var me *pattern.MismatchError
	if !errors.As(err, &me) || me.Offset != 9000 || !strings.Contains(err.Error(), "linear") {
		t.Errorf("err = %v, want a linear-frag mismatch at 9000", err)
	}

	e, _, _, err = dmRun(t, n, devmemsim.Config{LinearEvery: 5}, func(c *DevmemConfig, _ *devmemsim.Sim) { c.FailLinear = true })
	var le *LinearError
	if !errors.As(err, &le) || le.Offset != e.Offset() || e.Stats.Frags.Load() != 4 || !strings.Contains(err.Error(), "ethtool -g eth1") {
		t.Errorf("err = %v after %d frags, want a LinearError at the 5th frag (stream offset %d)", err, e.Stats.Frags.Load(), e.Offset())
	}
}

// TestDevmemReceiveUnsplit: packets the NIC did not split arrive on the bound queue as plain
// bytes; the engine validates them in stream order with the dma-buf frags around them and counts
// them as linear (fidelity row 1), on the simulator that now produces the mixed stream.
func TestDevmemReceiveUnsplit(t *testing.T) {
	const n = 2<<20 + 77
	onBound := func(c *DevmemConfig, _ *devmemsim.Sim) {
		c.QueueOfNapi = func(id uint32) (int, error) { return int(id) - 8179, nil } // napi 8193: queue 14
	}
	e, sim, st, err := dmRun(t, n, devmemsim.Config{UnsplitEvery: 7, FragSize: 1448, NapiID: 8193}, onBound)
	if err != nil {
		t.Fatal(err)
	}
	s := &e.Stats
	if st.Bytes.Load() != n || s.Unsplit.Load() == 0 || s.LinearBytes.Load()+s.DmabufBytes.Load() != n {
		t.Errorf("bytes %d, unsplit recvmsgs %d, linear %d + dma-buf %d (want %d)", st.Bytes.Load(), s.Unsplit.Load(), s.LinearBytes.Load(), s.DmabufBytes.Load(), n)
	}
	if c := sim.Counters(); c.Held != 0 || c.Drops != 0 {
		t.Errorf("%d tokens held after EOF, %d drops", c.Held, c.Drops)
	}
	// The same stream on an unbound queue (napi 8192: queue 13) is a steering error.
	_, _, _, err = dmRun(t, n, devmemsim.Config{UnsplitEvery: 7, FragSize: 1448, NapiID: 8192}, onBound)
	var se *SteeringError
	if !errors.As(err, &se) || se.Queue != 13 {
		t.Errorf("unsplit bytes on queue 13: %v, want a steering error", err)
	}
}

func TestDevmemReceiveSteering(t *testing.T) {
	napi := func(c *DevmemConfig, _ *devmemsim.Sim) {
		c.QueueOfNapi = func(id uint32) (int, error) {
			if id == 8193 {
				return 3, nil
			}
			return -1, fmt.Errorf("napi %d not found", id)
		}
	}
	_, _, _, err := dmRun(t, 1<<20, devmemsim.Config{WrongIDAt: 40, NapiID: 8193}, napi)
	var se *SteeringError
	if !errors.As(err, &se) || se.Queue != 3 || !strings.Contains(se.Reason, "id 2") {
		t.Fatalf("err = %v, want a steering error naming queue 3 and dma-buf id 2", err)
	}
	for _, want := range []string{"rx queue 3 (napi 8193)", "dma-buf 1 (queues 14-15)", "dst-port 5201", "ethtool -n eth1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}

	// Data with no devmem cmsg at all: the flow hit an unbound queue.
	_, _, _, err = dmRun(t, 1<<20, devmemsim.Config{Plain: true, NapiID: 77}, napi)
	if !errors.As(err, &se) || se.Queue != -1 || se.NapiID != 77 || !strings.Contains(err.Error(), "without a devmem cmsg") ||
		!strings.Contains(err.Error(), "napi 77 not found") {
		t.Fatalf("err = %v, want a no-cmsg steering error with the napi lookup failure", err)
	}
}

func TestDevmemReceiveSampleAndShort(t *testing.T) {
	e, _, _, err := dmRun(t, 4<<20, devmemsim.Config{ShortEvery: 3}, func(c *DevmemConfig, _ *devmemsim.Sim) { c.Every = 4 })
	if err != nil {
		t.Fatal(err)
	}
	f, v := e.Stats.Frags.Load(), e.Stats.Validated.Load()
	if v != (f+3)/4 {
		t.Errorf("validated %d of %d frags with sample:4", v, f)
	}
}

// A flow that would hold more tokens than the buffer has drains the freelist: the simulated NIC
// stalls, and the engine, seeing no data, hands its tokens back and continues.
func TestDevmemReceiveStallRecovers(t *testing.T) {
	const n = 2 << 20
	e, sim, _, err := dmRun(t, n, devmemsim.Config{Size: 64 << 10, RTO: 5 * time.Millisecond}, func(c *DevmemConfig, _ *devmemsim.Sim) { c.HoldBytes = 1 << 40 })
	if err != nil {
		t.Fatal(err)
	}
	if c := sim.Counters(); c.Stalls == 0 || c.Drops == 0 || e.Offset() != n {
		t.Errorf("stalls %d, drops %d, offset %d: want drops, stalls and the whole stream", c.Stalls, c.Drops, e.Offset())
	}
}

func TestDevmemReceiveGrowsControl(t *testing.T) {
	e, _, _, err := dmRun(t, 1<<20, devmemsim.Config{}, func(c *DevmemConfig, _ *devmemsim.Sim) { c.MaxFrags = 1 })
	if err != nil || e.Stats.ControlGrows.Load() != 0 {
		t.Fatalf("err %v, grows %d", err, e.Stats.ControlGrows.Load())
	}
	sim, err := devmemsim.New(devmemsim.Config{Size: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	e, err = NewDevmem(DevmemConfig{Buf: sim.Buffer(), DmabufID: 1, ReadSize: 64 << 10, Verify: dmVerify, Sys: sim})
	if err != nil {
		t.Fatal(err)
	}
	e.oob = make([]byte, 16) // smaller than one cmsg: the kernel answers ETOOSMALL
	c, s := testnet.TCPPair(t)
	go sendPattern(c, 1<<20, -1)
	var st Stats
	if err := e.Receive(testnet.RawConn(t, s), &st); err != nil {
		t.Fatal(err)
	}
	if e.Stats.ControlGrows.Load() == 0 || e.Offset() != 1<<20 {
		t.Errorf("grows %d, offset %d", e.Stats.ControlGrows.Load(), e.Offset())
	}
}

func TestDevmemReceiveDeadline(t *testing.T) {
	sim, err := devmemsim.New(devmemsim.Config{Size: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	e, err := NewDevmem(DevmemConfig{Buf: sim.Buffer(), DmabufID: 1, ReadSize: 64 << 10, Verify: dmVerify, Sys: sim})
	if err != nil {
		t.Fatal(err)
	}
	c, s := testnet.TCPPair(t)
	b := make([]byte, 10000)
	pattern.Fill(b, 0)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var st Stats
	err = e.Receive(testnet.RawConn(t, s), &st)
	if !errors.Is(err, os.ErrDeadlineExceeded) || st.Bytes.Load() != 10000 {
		t.Fatalf("err = %v after %d bytes, want the deadline after 10000", err, st.Bytes.Load())
	}
	if c := sim.Counters(); c.Held != 0 {
		t.Errorf("%d tokens still held after Receive returned", c.Held)
	}
}

func TestNewDevmemChecks(t *testing.T) {
	h, _ := dmabuf.NewHost(4096)
	for _, cfg := range []DevmemConfig{
		{},
		{Buf: h},
		{Buf: h, ReadSize: 1, MaxFrags: 1 << 30},
	} {
		if _, err := NewDevmem(cfg); err == nil {
			t.Errorf("NewDevmem(%+v) accepted", cfg)
		}
	}
}

func TestQueueList(t *testing.T) {
	for in, want := range map[string]string{"": "none", "14,15": "14-15", "0,2,4,5": "0,2,4-5", "7": "7"} {
		var q []uint32
		for _, f := range strings.Split(in, ",") {
			if f != "" {
				var v uint32
				fmt.Sscan(f, &v)
				q = append(q, v)
			}
		}
		if got := QueueList(q); got != want {
			t.Errorf("QueueList(%v) = %q, want %q", q, got, want)
		}
	}
}
