// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package selftest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/devmemtcp/ncdevmem/bench"
	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/internal/devmemsim"
	"github.com/devmemtcp/ncdevmem/legacy"
	"github.com/devmemtcp/ncdevmem/nic/nictest"
)

// The C tool's dma-buf size (16000 pages).
const simSize = 4096 * 16000

// devmemKernel is a devmem-capable NIC "eth1": the in-memory ethtool model plus the kernel's bind
// rules (empty queue nests refused; header split must be on; a bind pins its queues), with the
// devmem socket simulator in the data path of every invocation.
type devmemKernel struct {
	t     *testing.T
	model *nictest.Model
	nic   *nictest.NIC
	sim   devmemsim.Config

	mu          sync.Mutex
	invocations int
	// noDevmem makes every bind fail as on a NIC without devmem support.
	noDevmem bool
	// noHugeBind refuses -b binds (a kernel without rx-page-size).
	noHugeBind bool
}

func newDevmemKernel(t *testing.T) *devmemKernel {
	n := nictest.DevmemNIC(7)
	return &devmemKernel{t: t, model: nictest.New(map[string]*nictest.NIC{"eth1": n}), nic: n}
}

func (k *devmemKernel) system() *legacy.System {
	k.mu.Lock()
	k.invocations++
	k.mu.Unlock()
	cfg := k.sim
	cfg.Size, cfg.RXID, cfg.TXID = simSize, 4, 5
	sim, err := devmemsim.New(cfg)
	if err != nil {
		k.t.Fatal(err)
	}
	k.t.Cleanup(func() { sim.Close() })
	return &legacy.System{
		NIC:      k.model,
		StateDir: k.t.TempDir(),
		Alloc:    func(int64, bool) (dmabuf.Buffer, error) { return nopClose{sim.Buffer()}, nil },
		BindRX: func(req bind.RXRequest) (legacy.Binding, error) {
			if k.noDevmem {
				return nil, errors.New("bind-rx: Device doesn't support DMA")
			}
			if k.noHugeBind && req.RxPageSize > 4096 {
				return nil, errors.New("bind-rx: rx-page-size not supported")
			}
			return k.model.BindRX("eth1", req.Queues, 4)
		},
		BindRXEmpty: func(int, int, int) (legacy.Binding, error) {
			return nil, errors.New("bind-rx: missing attribute queue-id")
		},
		BindTX: func(int, int) (legacy.Binding, error) { return nictest.NewBinding(5), nil },
		RX:     sim,
		TX:     sim,
	}
}

// nopClose keeps the simulator's buffer open when the tool closes it.
type nopClose struct{ dmabuf.Buffer }

func (nopClose) Close() error { return nil }

// startPeer serves the peer role on loopback until the test ends.
func startPeer(t *testing.T, srv *bench.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// hugepagesFake records raises instead of touching /proc/sys.
type hugepagesFake struct {
	raised, restored int
}

func (h *hugepagesFake) raise(n int) (func() error, error) {
	h.raised = n
	return func() error { h.restored++; return nil }, nil
}

// simConfig is a run of every check against the simulated NIC and an in-process peer server on
// loopback: this host is 127.0.0.1, the peer 127.0.0.2, so devmem.py's fixed source port (= the
// data port) gives a 4-tuple distinct from the listener's.
func simConfig(t *testing.T, k *devmemKernel, h *hugepagesFake, peer string) Config {
	return Config{
		Ifname: "eth1", Peer: peer, Software: "test",
		Addr: netip.MustParseAddr("127.0.0.1"), PeerAddr: netip.MustParseAddr("127.0.0.2"),
		Timeout: 20 * time.Second, system: k.system, hugepages: h.raise,
	}
}

func runSelftest(t *testing.T, cfg Config) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	return code, out.String()
}

func TestSelftestAllPass(t *testing.T) {
	k := newDevmemKernel(t)
	before := k.nic.Clone()
	h := &hugepagesFake{}
	code, out := runSelftest(t, simConfig(t, k, h, startPeer(t, &bench.Server{})))
	want := `TAP version 13
1..6
ok 1 devmem.require_devmem
ok 2 devmem.check_rx
ok 3 devmem.check_tx
ok 4 devmem.check_tx_chunks
ok 5 devmem.check_rx_hds
ok 6 devmem.check_rx_large_niov
# Totals: pass:6 fail:0 xfail:0 xpass:0 skip:0 error:0
`
	if code != ExitPass || out != want {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	// 2 probes, rx, tx, tx_chunks, 12 HDS sizes, 6 large-niov sizes: one legacy run each.
	if k.invocations != 2+3+len(hdsSizes)+len(largeNiovSizes) {
		t.Errorf("%d invocations of the C tool's command line", k.invocations)
	}
	if h.raised != minHugepages || h.restored != 1 {
		t.Errorf("hugepages raised to %d and restored %d times, want %d and once", h.raised, h.restored, minHugepages)
	}
	if diff := cmp.Diff(before, k.nic); diff != "" {
		t.Errorf("NIC not restored (-before +after):\n%s", diff)
	}
}

func TestSelftestSkipsWithoutDevmem(t *testing.T) {
	k := newDevmemKernel(t)
	k.noDevmem = true
	before := k.nic.Clone()
	h := &hugepagesFake{}
	// The peer is never needed: a dead address proves it.
	cfg := simConfig(t, k, h, "127.0.0.1:1")
	code, out := runSelftest(t, cfg)
	if code != ExitSkip {
		t.Fatalf("exit %d, want %d:\n%s", code, ExitSkip, out)
	}
	for i, name := range []string{"require_devmem", "check_rx", "check_tx", "check_tx_chunks", "check_rx_hds", "check_rx_large_niov"} {
		line := "ok " + string(rune('1'+i)) + " devmem." + name + " # SKIP Test requires devmem support\n"
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	// The probe's reason is shown once, before the first skip.
	if strings.Count(out, "# ncdevmem -f eth1: exit 255") != 1 || !strings.Contains(out, "Device doesn't support DMA") {
		t.Errorf("probe diagnosis missing or repeated:\n%s", out)
	}
	if k.invocations != 1 || h.raised != 0 {
		t.Errorf("%d invocations, hugepages raised to %d: want one probe and no raise", k.invocations, h.raised)
	}
	if diff := cmp.Diff(before, k.nic); diff != "" {
		t.Errorf("NIC changed:\n%s", diff)
	}
}

func TestSelftestLargeNiovSkip(t *testing.T) {
	k := newDevmemKernel(t)
	k.noHugeBind = true
	h := &hugepagesFake{}
	cfg := simConfig(t, k, h, startPeer(t, &bench.Server{}))
	cfg.Only = []string{CheckRXLargeNiov, CheckRX}
	code, out := runSelftest(t, cfg)
	if code != ExitPass || !strings.Contains(out, "1..2\n") || !strings.Contains(out, "ok 1 devmem.check_rx\n") ||
		!strings.Contains(out, "ok 2 devmem.check_rx_large_niov # SKIP Test requires devmem support with rx page size 16384\n") ||
		!strings.Contains(out, "# ncdevmem -f eth1 -b 16384: exit 255") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if h.restored != 1 {
		t.Errorf("hugepages restored %d times", h.restored)
	}
}

func TestSelftestFailures(t *testing.T) {
	t.Run("frag on the wrong dma-buf", func(t *testing.T) {
		k := newDevmemKernel(t)
		k.sim.FragSize, k.sim.WrongIDAt = 100, 3
		cfg := simConfig(t, k, &hugepagesFake{}, startPeer(t, &bench.Server{}))
		cfg.Only = []string{CheckRX, CheckTX}
		code, out := runSelftest(t, cfg)
		if code != ExitFail || !strings.Contains(out, "not ok 1 devmem.check_rx\n") || !strings.Contains(out, "ok 2 devmem.check_tx\n") ||
			!strings.Contains(out, "# ncdevmem -l -f eth1 -s 127.0.0.1 -p ") || !strings.Contains(out, "received on wrong dmabuf_id") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("linear frags fail HDS", func(t *testing.T) {
		k := newDevmemKernel(t)
		k.sim.LinearEvery = 1
		cfg := simConfig(t, k, &hugepagesFake{}, startPeer(t, &bench.Server{}))
		cfg.Only = []string{CheckRXHDS}
		code, out := runSelftest(t, cfg)
		if code != ExitFail || !strings.Contains(out, "not ok 1 devmem.check_rx_hds\n") ||
			!strings.Contains(out, "# HDS failed for payload size 1\n") || !strings.Contains(out, "# HDS failed for payload size 8192\n") ||
			!strings.Contains(out, "SCM_DEVMEM_LINEAR") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("no TX completion", func(t *testing.T) {
		k := newDevmemKernel(t)
		k.sim.HoldCompletions = true
		cfg := simConfig(t, k, &hugepagesFake{}, startPeer(t, &bench.Server{}))
		cfg.Only = []string{CheckTX, CheckTXChunks}
		code, out := runSelftest(t, cfg)
		if code != ExitFail || !strings.Contains(out, "not ok 1 devmem.check_tx\n") || !strings.Contains(out, "not ok 2 devmem.check_tx_chunks\n") ||
			!strings.Contains(out, "did not receive tx completion") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("peer unreachable", func(t *testing.T) {
		k := newDevmemKernel(t)
		cfg := simConfig(t, k, &hugepagesFake{}, "127.0.0.1:1")
		cfg.Only = []string{CheckProbe, CheckRX, CheckTX}
		code, out := runSelftest(t, cfg)
		if code != ExitFail || !strings.Contains(out, "ok 1 devmem.require_devmem\n") || !strings.Contains(out, "not ok 2 devmem.check_rx\n") ||
			!strings.Contains(out, "not ok 3 devmem.check_tx\n") || strings.Count(out, "is `ncdevmem server` running there") != 2 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		k := newDevmemKernel(t)
		cfg := simConfig(t, k, &hugepagesFake{}, startPeer(t, &bench.Server{Key: []byte("0123456789abcdef")}))
		cfg.Only = []string{CheckTX}
		code, out := runSelftest(t, cfg)
		if code != ExitFail || !strings.Contains(out, "not ok 1 devmem.check_tx\n") || !strings.Contains(out, "# peer server") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("peer address not on the peer", func(t *testing.T) {
		k := newDevmemKernel(t)
		cfg := simConfig(t, k, &hugepagesFake{}, startPeer(t, &bench.Server{}))
		cfg.PeerAddr = netip.MustParseAddr("192.0.2.1") // TEST-NET-1: not configured here
		cfg.Only = []string{CheckRX, CheckTX}
		cfg.Timeout = 3 * time.Second
		code, out := runSelftest(t, cfg)
		if code != ExitFail || !strings.Contains(out, "not ok 1 devmem.check_rx\n") || !strings.Contains(out, "is the source address configured on the peer") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
}

func TestValidateAndParseOnly(t *testing.T) {
	good := Config{Ifname: "eth1", Peer: "h:18400"}
	for _, tt := range []struct {
		mod  func(c *Config)
		want string
	}{
		{func(c *Config) { c.Ifname = "" }, "no interface"},
		{func(c *Config) { c.Peer = "" }, "no peer"},
		{func(c *Config) { c.Peer = "h" }, `peer "h"`},
		{func(c *Config) { c.Port = 65530 }, "port 65530 out of range"},
		{func(c *Config) {
			c.Addr, c.PeerAddr = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")
		}, "different families"},
		{func(c *Config) { c.Only = []string{"rx", "bogus"} }, `unknown check "bogus"`},
	} {
		c := good
		tt.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", c, err, tt.want)
		}
	}
	if err := good.Validate(); err != nil {
		t.Errorf("good config: %v", err)
	}
	got, err := ParseOnly(" rx,tx, rx ,rx_hds")
	if err != nil || !cmp.Equal(got, []string{"rx", "tx", "rx_hds"}) {
		t.Errorf("ParseOnly: %v %v", got, err)
	}
	for _, s := range []string{"", ",", "rx,nope"} {
		if _, err := ParseOnly(s); err == nil {
			t.Errorf("ParseOnly(%q) accepted", s)
		}
	}
}

func TestTailWriter(t *testing.T) {
	w := tailWriter{marker: []byte(listenMarker), seen: make(chan struct{})}
	w.Write([]byte("using ifindex=7\nWaiting or conn"))
	select {
	case <-w.seen:
		t.Fatal("marker seen before it was complete")
	default:
	}
	w.Write([]byte("ection on ::1:5201\n"))
	select {
	case <-w.seen:
	default:
		t.Fatal("marker split across writes not seen")
	}
	for range 30000 {
		w.Write([]byte("recvmsg ret=4096\n"))
	}
	w.Write([]byte("ncdevmem: the end\n"))
	if tail := w.tail(2); tail != "(last 2 lines)\nrecvmsg ret=4096\nncdevmem: the end" || len(w.buf) > 2*stderrKeep {
		t.Errorf("tail %q, %d bytes kept", tail, len(w.buf))
	}
}

// BenchmarkTailWriter is the sink of the legacy tool's stderr, which gets a line per frag.
func BenchmarkTailWriter(b *testing.B) {
	w := tailWriter{marker: []byte(listenMarker), seen: make(chan struct{})}
	line := []byte("received frag_page=12, in_page_offset=0, frag_offset=49152, frag_size=4096, token=12, total_received=53248, dmabuf_id=4\n")
	for range 2 * stderrKeep / len(line) {
		w.Write(line) // reach the steady state: the buffer at its largest
	}
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		w.Write(line)
	}
}

func TestSelftestInterrupted(t *testing.T) {
	k := newDevmemKernel(t)
	before := k.nic.Clone()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := simConfig(t, k, &hugepagesFake{}, startPeer(t, &bench.Server{}))
	system := cfg.system
	// SIGINT arrives as the RX check starts its listener (the second invocation, after the probe).
	cfg.system = func() *legacy.System {
		if k.invocations == 1 {
			cancel()
		}
		return system()
	}
	var out bytes.Buffer
	start := time.Now()
	code, err := Run(ctx, cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if code != ExitFail || !strings.Contains(out.String(), "ok 1 devmem.require_devmem\n") ||
		!strings.Contains(out.String(), "not ok 2 devmem.check_rx\n# interrupted before it ran\nnot ok 3") ||
		!strings.Contains(out.String(), "# interrupted before it ran\nnot ok 6 devmem.check_rx_large_niov\n") {
		t.Errorf("exit %d:\n%s", code, out.String())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("interrupted run took %v", d)
	}
	if diff := cmp.Diff(before, k.nic); diff != "" {
		t.Errorf("NIC not restored:\n%s", diff)
	}
}
