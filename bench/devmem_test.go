// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/internal/devmemsim"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/nic/nictest"
	"github.com/devmemtcp/ncdevmem/report"
)

func TestDevmemHandles(t *testing.T) {
	dp := devmemDatapath{}
	for _, tc := range []struct {
		spec   TestSpec
		role   Role
		handle bool
	}{
		{TestSpec{DevmemRX: true}, RoleTarget, true},
		{TestSpec{DevmemRX: true}, RoleSource, false},
		{TestSpec{DevmemTX: true}, RoleSource, true},
		{TestSpec{}, RoleTarget, false},
	} {
		if got := dp.Handles(&tc.spec, tc.role); got != tc.handle {
			t.Errorf("Handles(%+v, %s) = %v", tc.spec, tc.role, got)
		}
	}
	// This build's datapaths serve a devmem spec with devmem for both roles.
	spec := &TestSpec{DevmemRX: true, DevmemTX: true}
	for _, r := range []Role{RoleTarget, RoleSource} {
		if dp := selectDatapath(builtinDatapaths(), spec, r); dp.Name() != "devmem" {
			t.Errorf("%s of a devmem spec: datapath %s", r, dp.Name())
		}
	}
}

func TestRXQueues(t *testing.T) {
	qs := func(n int) []bind.Queue {
		var out []bind.Queue
		for i := 0; i < n; i++ {
			out = append(out, bind.Queue{ID: uint32(i), Type: bind.QueueRX}, bind.Queue{ID: uint32(i), Type: bind.QueueTX})
		}
		return out
	}
	for _, tc := range []struct {
		spec TestSpec
		n    int
		want []uint32
		err  string
	}{
		{TestSpec{}, 16, []uint32{15}, ""},
		{TestSpec{NumRXQueues: 4}, 16, []uint32{12, 13, 14, 15}, ""},
		{TestSpec{Queues: []int{3, 5}}, 16, []uint32{3, 5}, ""},
		{TestSpec{Queues: []int{16}}, 16, nil, "queue 16 out of range (eth1 has 16 RX queues"},
		{TestSpec{}, 1, nil, "eth1 has 1 RX queue(s)"},
		{TestSpec{NumRXQueues: 4}, 4, nil, "ethtool -L eth1 combined 5"},
	} {
		got, err := rxQueues(&tc.spec, &net.Interface{Name: "eth1"}, qs(tc.n))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v on %d queues: %v, want %q", tc.spec, tc.n, err, tc.err)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, tc.want) {
			t.Errorf("%+v on %d queues: %v, %v; want %v", tc.spec, tc.n, got, err, tc.want)
		}
	}
}

// On the loopback device the advice is to name a NIC: `ethtool -L lo` cannot work.
func TestRxQueuesLoopbackAdvice(t *testing.T) {
	lo := &net.Interface{Name: "lo", Flags: net.FlagLoopback | net.FlagUp}
	one := []bind.Queue{{ID: 0, Type: bind.QueueRX}, {ID: 0, Type: bind.QueueTX}}
	for _, spec := range []TestSpec{{}, {Queues: []int{1}}} {
		_, err := rxQueues(&spec, lo, one)
		if err == nil || strings.Contains(err.Error(), "ethtool -L") || !strings.Contains(err.Error(), "name a NIC with -f") {
			t.Errorf("%+v on lo: %v, want advice to name a NIC and no ethtool -L", spec, err)
		}
	}
}

func TestDevmemWindow(t *testing.T) {
	var w window
	if w.report() != nil {
		t.Error("report before the window ended")
	}
	hist := func(c ...uint64) []report.HistBucket {
		var h []report.HistBucket
		for i, v := range c {
			h = append(h, report.HistBucket{Le: uint64(1024 << i), Count: v})
		}
		return h
	}
	w.start(&report.Devmem{DmabufBytes: 100, Frags: 2, Tokens: 2, DontneedCalls: 1, FragHist: hist(1, 1)},
		hwStats{qstats: map[string]uint64{"rx-bytes": 1000, "rx-packets": 5}, pp: map[string]uint64{"alloc-fast": 7}})
	w.end(&report.Devmem{DmabufBytes: 300, LinearBytes: 9, Frags: 6, Tokens: 6, DontneedCalls: 2, ShortDontneed: 1, FragHist: hist(2, 4)},
		hwStats{qstats: map[string]uint64{"rx-bytes": 5000, "rx-packets": 3, "rx-alloc-fail": 1}})
	want := &report.Devmem{DmabufBytes: 200, LinearBytes: 9, Frags: 4, Tokens: 4, DontneedCalls: 1, ShortDontneed: 1,
		FragHist: hist(1, 3), Qstats: map[string]uint64{"rx-bytes": 4000}}
	if diff := cmp.Diff(want, w.report()); diff != "" {
		t.Errorf("window report (-want +got):\n%s", diff)
	}
}

// TestRootDevmemRunOnVeth runs the devmem RX and TX setup on a veth, which supports none of it:
// each attempt fails at the first unsupported step with advice and leaves the veth, the state
// directory and the buffers as they were.
func TestRootDevmemRunOnVeth(t *testing.T) {
	testnet.Require(t)
	_, b := testnet.Pair(t)
	if err := b.Command("ethtool", "-L", "veth0", "rx", "2", "tx", "2").Run(); err != nil {
		t.Logf("ethtool -L veth0 rx 2 tx 2: %v (the veth keeps one queue)", err)
	}
	stateDir := t.TempDir()
	local := netip.AddrPortFrom(b.Addr, 5201)
	var sims []*devmemsim.Sim
	useSim := func(k *devmemKernel) {
		k.validate = func(string, int64) error { return nil }
		k.open = func(_ string, size int64) (dmabuf.Buffer, error) {
			s, err := devmemsim.New(devmemsim.Config{Size: size})
			if err != nil {
				return nil, err
			}
			sims = append(sims, s)
			return s.Buffer(), nil
		}
	}

	for _, tc := range []struct {
		name string
		spec TestSpec
		role Role
		sim  bool
		want []string
	}{
		{name: "rx udmabuf", spec: TestSpec{DevmemRX: true, Queues: []int{1}}, role: RoleTarget,
			want: []string{"--rx-mem udmabuf"}},
		{name: "rx host memory", spec: TestSpec{DevmemRX: true, RxMem: "host"}, role: RoleTarget,
			want: []string{"no dma-buf", "--rx-mem udmabuf"}},
		{name: "rx nic setup", spec: TestSpec{DevmemRX: true, Queues: []int{1}}, role: RoleTarget, sim: true,
			want: []string{"veth0"}},
		{name: "rx no setup", spec: TestSpec{DevmemRX: true, Queues: []int{1}, NoSetup: true}, role: RoleTarget, sim: true,
			want: []string{"bind-rx veth0"}},
		{name: "rx dry run", spec: TestSpec{DevmemRX: true, Queues: []int{1}, DryRun: true}, role: RoleTarget,
			want: []string{"veth0"}},
		{name: "tx", spec: TestSpec{DevmemTX: true, Flows: 1, WriteSize: 4096}, role: RoleSource, sim: true,
			want: []string{"bind-tx", "veth0"}},
		{name: "no such interface", spec: TestSpec{DevmemRX: true, Ifname: "nosuch0"}, role: RoleTarget,
			want: []string{"nosuch0", "check -f"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := runningKernel()
			if tc.sim {
				useSim(k)
			}
			spec := tc.spec
			if spec.Ifname == "" {
				spec.Ifname = "veth0"
			}
			spec.StateDir, spec.Flows, spec.ReadSize = stateDir, max(spec.Flows, 1), 64<<10
			before := b.LinkState(t, "veth0")
			err := b.Do(func() error {
				fl, err := devmemDatapath{}.Setup(context.Background(), Setup{Spec: &spec, Role: tc.role, Local: local,
					Logf: func(f string, a ...any) { t.Logf("note: "+f, a...) }, sys: k})
				if err == nil {
					fl.Close()
					return errors.New("setup succeeded on a veth")
				}
				return err
			})
			t.Logf("error: %v", err)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if after := b.LinkState(t, "veth0"); after != before {
				t.Errorf("veth changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if ents, _ := os.ReadDir(stateDir); len(ents) != 0 {
				t.Errorf("state dir holds %d entries after a failed setup", len(ents))
			}
		})
	}
	for _, s := range sims {
		s.Close()
	}
}

// fakeNetdev is a device with one RX queue (or rx of them) and no statistics.
type fakeNetdev struct{ rx int }

func (f fakeNetdev) Queues(int) ([]bind.Queue, error) {
	var qs []bind.Queue
	for i := range max(f.rx, 1) {
		qs = append(qs, bind.Queue{ID: uint32(i), Type: bind.QueueRX}, bind.Queue{ID: uint32(i), Type: bind.QueueTX})
	}
	return qs, nil
}
func (fakeNetdev) QstatsQueues(int) ([]bind.Qstats, error) { return nil, nil }
func (fakeNetdev) PagePools(int) ([]bind.PagePool, error)  { return nil, nil }
func (fakeNetdev) PagePoolStats(int) ([]bind.PagePoolStats, error) {
	return nil, errors.New("page-pool-stats-get: operation not supported")
}
func (fakeNetdev) Close() error { return nil }

type fakeBinding struct{ id uint32 }

func (b fakeBinding) ID() uint32 { return b.id }
func (fakeBinding) Close() error { return nil }

// simKernel is a kernel that runs the devmem datapath on the simulator: one simulated socket
// shared by the flows (RX), or serving the one flow (TX). The function returns the simulator.
func simKernel(t *testing.T, cfg devmemsim.Config) (*devmemKernel, func() *devmemsim.Sim) {
	t.Helper()
	cfg.RXID, cfg.TXID = 1, 1
	var sim *devmemsim.Sim
	h := runningKernel()
	h.validate = func(string, int64) error { return nil }
	h.open = func(_ string, size int64) (dmabuf.Buffer, error) {
		var err error
		cfg.Size = size
		if sim, err = devmemsim.New(cfg); err != nil {
			return nil, err
		}
		return sim.Buffer(), nil
	}
	h.dial = func() (netdevClient, error) { return fakeNetdev{}, nil }
	h.bindRX = func(int, []uint32, int) (binding, error) { return fakeBinding{1}, nil }
	h.bindTX = func(int, int) (binding, error) { return fakeBinding{1}, nil }
	// The engines take the seam when the flows are made, after open: hand them a forwarder.
	fw := &simForward{sim: &sim}
	h.rxSys, h.txSys = fw, fw
	t.Cleanup(func() {
		if sim != nil {
			sim.Close()
		}
	})
	return h, func() *devmemsim.Sim { return sim }
}

type simForward struct{ sim **devmemsim.Sim }

func (f *simForward) Recvmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	return (*f.sim).Recvmsg(fd, msg, flags)
}
func (f *simForward) Sendmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	return (*f.sim).Sendmsg(fd, msg, flags)
}
func (f *simForward) Setsockopt(fd, level, name int, val []byte) (int, error) {
	return (*f.sim).Setsockopt(fd, level, name, val)
}
func (f *simForward) GetsockoptInt(fd, level, name int) (int, error) {
	return (*f.sim).GetsockoptInt(fd, level, name)
}

// TestDevmemRunSimulated is a whole devmem RX run (client, two servers, two flows, validation)
// with the simulator standing in for the devmem kernel, on loopback.
func TestDevmemRunSimulated(t *testing.T) {
	k, _ := simKernel(t, devmemsim.Config{})
	key := []byte("0123456789abcdef")
	src, _ := startServer(t, &Server{Key: key, Software: "test", sys: k})
	dst, _ := startServer(t, &Server{Key: key, Software: "test", sys: k})
	cl := &Client{Src: src, Dst: dst, Key: key, Software: "test"}
	spec := quickSpec(2, 500*time.Millisecond)
	spec.DevmemRX, spec.Ifname, spec.Queues, spec.NoSetup, spec.DmabufSize = true, "lo", []int{0}, true, 4<<20
	out := dmRunOnce(t, cl, spec)
	run := &out.Runs[0]
	dmCheckRun(t, run, 2)
	d := run.Target.Devmem
	if d == nil {
		t.Fatal("no devmem counters in the target's report")
	}
	var rxBytes uint64
	for _, f := range run.Target.Flows {
		rxBytes += f.Bytes
	}
	t.Logf("devmem counters: %+v", *d)
	// A frag the iov cuts in two comes back as two, the second not aligned (the kernel does the
	// same, about once per recvmsg): most, not all, are page aligned.
	if d.Frags == 0 || d.Tokens != d.Frags || d.DontneedCalls == 0 || d.PageAlignedFrags < d.Frags*9/10 || d.DmabufBytes == 0 {
		t.Errorf("devmem counters %+v", *d)
	}
	// The counters cover the same window as the flows' bytes (give or take one recvmsg per flow).
	if diff := int64(d.DmabufBytes) - int64(rxBytes); diff < -2*int64(spec.ReadSize) || diff > 2*int64(spec.ReadSize) {
		t.Errorf("dma-buf bytes %d vs flow bytes %d in the window", d.DmabufBytes, rxBytes)
	}
	if !strings.Contains(strings.Join(out.Notes, "\n"), "no page-pool-stats counters") {
		t.Errorf("the missing page-pool statistics were not noted: %q", out.Notes)
	}
}

// TestDevmemTXRunSimulated is a devmem TX run on the simulator: the target validates every byte
// the simulator read out of the dma-buf at the engine's offsets.
func TestDevmemTXRunSimulated(t *testing.T) {
	k, simOf := simKernel(t, devmemsim.Config{CopiedEvery: 50})
	key := []byte("0123456789abcdef")
	src, _ := startServer(t, &Server{Key: key, Software: "test", sys: k})
	dst, _ := startServer(t, &Server{Key: key, Software: "test", sys: k})
	cl := &Client{Src: src, Dst: dst, Key: key, Software: "test"}
	spec := quickSpec(1, 500*time.Millisecond)
	spec.DevmemTX, spec.Ifname, spec.DmabufSize = true, "lo", 1<<20
	out := dmRunOnce(t, cl, spec)
	run := &out.Runs[0]
	dmCheckRun(t, run, 1)
	d := run.Source.Devmem
	if d == nil || d.DmabufBytes == 0 || d.Frags == 0 {
		t.Fatalf("source devmem counters: %+v", d)
	}
	// The completions the engine counted are the ones the simulator handed out, copied ones too
	// (how many are copied depends on merging: the kernel folds a COPIED flag into a range).
	zc := run.Source.Flows[0].ZC
	if zc == nil {
		t.Fatalf("source flow has no zerocopy counters")
	}
	c := simOf().Counters()
	if zc.Completions != uint64(c.Completed) || zc.Copied != uint64(c.Copied) {
		t.Fatalf("zerocopy counters %+v; the simulator completed %d, %d of them copied", *zc, c.Completed, c.Copied)
	}
}

// dmCheckRun checks that every flow moved bytes in both directions' reports.
func dmCheckRun(t *testing.T, run *report.Run, flows int) {
	t.Helper()
	if len(run.Source.Flows) != flows || len(run.Target.Flows) != flows {
		t.Fatalf("got %d source and %d target flows, want %d", len(run.Source.Flows), len(run.Target.Flows), flows)
	}
	for i := range flows {
		s, d := run.Source.Flows[i], run.Target.Flows[i]
		if s.Bytes == 0 || d.Bytes == 0 || d.Bytes > s.Bytes {
			t.Errorf("flow %d: source sent %d bytes, target received %d", i, s.Bytes, d.Bytes)
		}
	}
}

// dmRunOnce runs one test and fails t on any error.
func dmRunOnce(t *testing.T, cl *Client, spec TestSpec) *Outcome {
	t.Helper()
	out, err := cl.Run(context.Background(), spec, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestShareKeepsMapped(t *testing.T) {
	h, _ := dmabuf.NewHost(8192)
	var mu sync.Mutex
	s := share(h, &mu)
	m, ok := s.(dmabuf.Mapped)
	if !ok || len(m.Bytes()) != 8192 || m.BeginCPU(false) != nil || m.EndCPU(false) != nil {
		t.Fatal("a shared host buffer lost its mapping")
	}
	if _, err := s.WriteAt([]byte{7}, 100); err != nil || h.Bytes()[100] != 7 {
		t.Fatalf("WriteAt through the share: %v", err)
	}
	s.Close()
	if h.Bytes() == nil {
		t.Error("a flow's Close freed the shared buffer")
	}
	sim, _ := devmemsim.New(devmemsim.Config{Size: 4096})
	defer sim.Close()
	if _, ok := share(sim.Buffer().Unmapped(), &mu).(dmabuf.Mapped); ok {
		t.Error("an unmapped buffer became Mapped")
	}
}

// The session reads a devmem data connection's hello through DataConn: the bytes come out of the
// (simulated) dma-buf, and the stream after them is left for the engine.
func TestDevmemDataConn(t *testing.T) {
	k, sim := simKernel(t, devmemsim.Config{})
	spec := quickSpec(1, time.Second)
	spec.DevmemRX, spec.Ifname, spec.Queues, spec.NoSetup, spec.DmabufSize = true, "lo", []int{0}, true, 1<<20
	fl, err := devmemDatapath{}.Setup(context.Background(), Setup{Spec: &spec, Role: RoleTarget, Local: netip.MustParseAddrPort("127.0.0.1:1"), sys: k})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dc, err := fl.(interface {
		DataConn(*net.TCPConn) (net.Conn, error)
	}).DataConn(s)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello flow 0"))
	dc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 12)
	if _, err := io.ReadFull(dc, got); err != nil || string(got) != "hello flow 0" {
		t.Fatalf("hello = %q, %v", got, err)
	}
	if cn := sim().Counters(); cn.Frags == 0 || cn.Held != 0 {
		t.Errorf("simulator counters %+v: want the hello delivered as frags and every token returned", cn)
	}
}

// closeSignal is a buffer that says when it is closed.
type closeSignal struct {
	dmabuf.Buffer
	closed chan struct{}
}

func (c closeSignal) Close() error { close(c.closed); return c.Buffer.Close() }

// TestServerStopDuringDevmemSetup (issue 14): a server told to stop while it prepares a devmem
// target for a remote client ends within a second with the NIC restored, although the dma-buf
// allocation it is in does not return; the buffer that comes later is freed.
func TestServerStopDuringDevmemSetup(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	n := nictest.DevmemNIC(lo.Index)
	before := n.Clone()
	model := nictest.New(map[string]*nictest.NIC{"lo": n})
	k := runningKernel()
	k.nic = model
	k.validate = func(string, int64) error { return nil }
	k.dial = func() (netdevClient, error) { return fakeNetdev{rx: 8}, nil }
	allocating, release, freed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	k.open = func(_ string, size int64) (dmabuf.Buffer, error) {
		close(allocating)
		<-release // an allocation that takes as long as the test wants
		b, err := dmabuf.NewHost(size)
		return closeSignal{b, freed}, err
	}
	dst, stopDst := startServer(t, &Server{sys: k})
	src, _ := startServer(t, &Server{})
	spec := quickSpec(1, time.Second)
	spec.DevmemRX, spec.Ifname, spec.Queues, spec.DmabufSize, spec.StateDir = true, "lo", []int{7}, 1<<20, t.TempDir()
	ran := make(chan error, 1)
	go func() {
		_, err := (&Client{Src: src, Dst: dst}).Run(context.Background(), spec, 1, 0)
		ran <- err
	}()
	select {
	case <-allocating:
	case err := <-ran:
		t.Fatalf("the run ended before the allocation: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the target never started allocating its dma-buf")
	}
	if n.SplitConfig == before.SplitConfig {
		t.Fatal("the NIC was not prepared before the allocation")
	}
	t0 := time.Now()
	stopped := make(chan struct{})
	go func() { stopDst(); close(stopped) }()
	select {
	case <-stopped:
		t.Logf("server stopped %v into a devmem setup", time.Since(t0).Round(time.Millisecond))
	case <-time.After(time.Second):
		close(release)
		<-stopped
		t.Fatalf("the server took %v to stop (it waited for the allocation), want under 1 s", time.Since(t0))
	}
	if diff := cmp.Diff(before, n, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("NIC not restored when the server stopped (-before +after):\n%s", diff)
	}
	if err := nic.CheckClean(spec.StateDir, "lo"); err != nil {
		t.Errorf("journal left: %v", err)
	}
	if err := <-ran; err == nil {
		t.Error("the client's run succeeded against a stopped target")
	}
	close(release)
	select {
	case <-freed:
	case <-time.After(10 * time.Second):
		t.Error("the dma-buf allocated after the stop was never freed")
	}
}

func TestDevmemReadSize(t *testing.T) {
	for _, c := range []struct {
		read       int
		hold, want int64
	}{
		{512 << 10, 16 << 20, 512 << 10}, // a large buffer: --read-size as given
		{512 << 10, 512 << 10, 64 << 10}, // 1 MiB dma-buf, one flow: an eighth of its half
		{512 << 10, 16 << 10, 4096},      // never under a page
		{1024, 64 << 10, 1024},           // a small --read-size stays
	} {
		if got := devmemReadSize(c.read, c.hold); int64(got) != c.want {
			t.Errorf("devmemReadSize(%d, %d) = %d, want %d", c.read, c.hold, got, c.want)
		}
	}
}
