// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/proto"
	"github.com/devmemtcp/ncdevmem/report"
	"github.com/devmemtcp/ncdevmem/rx"
	"github.com/devmemtcp/ncdevmem/tx"
)

// startServer serves on a loopback port until the test ends or stop is called.
func startServer(t *testing.T, srv *Server) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func quickSpec(flows int, d time.Duration) TestSpec {
	s := DefaultSpec()
	s.Flows, s.Duration = flows, d
	s.NoPin = true // two shared cores: do not fight over them in unit tests
	return s
}

func checkRun(t *testing.T, run *report.Run, flows int) {
	t.Helper()
	if len(run.Source.Flows) != flows || len(run.Target.Flows) != flows {
		t.Fatalf("got %d source and %d target flows, want %d", len(run.Source.Flows), len(run.Target.Flows), flows)
	}
	var tx, rx uint64
	for i := range flows {
		s, d := run.Source.Flows[i], run.Target.Flows[i]
		if s.Dir != "tx" || d.Dir != "rx" || s.ID != i || d.ID != i || s.Bytes == 0 || d.Bytes == 0 || s.USec == 0 {
			t.Errorf("flow %d: source %+v, target %+v", i, s, d)
		}
		if s.TCP == nil || d.TCP == nil {
			t.Errorf("flow %d: no TCP_INFO", i)
		}
		tx += s.Bytes
		rx += d.Bytes
	}
	// The target's window opens before the source starts and closes before the source stops, so
	// it counts less than was sent (how much less depends on the start-up skew, large under -race
	// with windows this short), never more.
	if rx > tx || rx == 0 {
		t.Errorf("source sent %d bytes, target received %d in its window", tx, rx)
	}
}

func TestRunLoopback(t *testing.T) {
	key := []byte("0123456789abcdef")
	src, _ := startServer(t, &Server{Key: key, Software: "test"})
	dst, _ := startServer(t, &Server{Key: key, Software: "test"})
	var progress strings.Builder
	cl := &Client{Src: src, Dst: dst, Key: key, Software: "test", Progress: &progress}
	spec := quickSpec(2, 600*time.Millisecond)
	spec.Interval = 200 * time.Millisecond
	out, err := cl.Run(context.Background(), spec, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Runs) != 2 || out.Runs[0].Index != 0 || out.Runs[1].Index != 1 {
		t.Fatalf("got %d runs, want 2 after 1 warm-up", len(out.Runs))
	}
	for i := range out.Runs {
		checkRun(t, &out.Runs[i], 2)
		if n := len(out.Runs[i].Intervals); n < 2 {
			t.Errorf("run %d: %d intervals, want about 3", i, n)
		}
	}
	if out.Env["source"] == nil || out.Env["target"] == nil {
		t.Errorf("environment not captured: %v", out.Env)
	}
	if !strings.Contains(progress.String(), "Gbits/sec") {
		t.Errorf("no progress lines: %q", progress.String())
	}
}

func TestRunPinned(t *testing.T) {
	src, _ := startServer(t, &Server{Software: "test"})
	dst, _ := startServer(t, &Server{Software: "test"})
	spec := quickSpec(1, 300*time.Millisecond)
	spec.NoPin, spec.CPUsSrc, spec.CPUsDst = false, []int{0}, []int{0}
	out, err := (&Client{Src: src, Dst: dst}).Run(context.Background(), spec, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	run := out.Runs[0]
	if run.Source.Flows[0].AppCPU != 0 || run.Target.Flows[0].AppCPU != 0 {
		t.Errorf("app CPUs %d/%d, want 0", run.Source.Flows[0].AppCPU, run.Target.Flows[0].AppCPU)
	}
	found := false
	for _, c := range run.Target.CPUs {
		if c.CPU == 0 && strings.Contains(c.Role, "app") {
			found = true
		}
	}
	if !found {
		t.Errorf("target CPUs %+v lack app CPU 0", run.Target.CPUs)
	}
	spec.CPUsDst = []int{4096}
	if _, err := (&Client{Src: src, Dst: dst}).Run(context.Background(), spec, 1, 0); err == nil || !strings.Contains(err.Error(), "CPU 4096 does not exist") {
		t.Errorf("bad CPU: %v", err)
	}
}

func TestRunCorruptedStream(t *testing.T) {
	src, _ := startServer(t, &Server{Software: "test", CorruptAt: 1_000_001})
	dst, _ := startServer(t, &Server{Software: "test"})
	_, err := (&Client{Src: src, Dst: dst}).Run(context.Background(), quickSpec(1, 2*time.Second), 1, 0)
	want := "flow 0: payload mismatch at stream offset 1000000"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "target server") {
		t.Fatalf("got %v, want %q from the target", err, want)
	}
	// The target is free again and serves a clean test.
	src2, _ := startServer(t, &Server{Software: "test"})
	if _, err := (&Client{Src: src2, Dst: dst}).Run(context.Background(), quickSpec(1, 200*time.Millisecond), 1, 0); err != nil {
		t.Errorf("next test: %v", err)
	}
}

func TestRunSourceDies(t *testing.T) {
	src, stopSrc := startServer(t, &Server{Software: "test"})
	dst, _ := startServer(t, &Server{Software: "test"})
	// The source stops at the window's first interval line: mid-window, data flowing.
	spec := quickSpec(2, 5*time.Second)
	spec.Interval = 200 * time.Millisecond
	var once sync.Once
	start := time.Now()
	inWindow := writerFunc(func() { once.Do(func() { go stopSrc() }) })
	_, err := (&Client{Src: src, Dst: dst, Progress: inWindow}).Run(context.Background(), spec, 1, 0)
	if err == nil || !strings.Contains(err.Error(), "source server "+src) || !(strings.Contains(err.Error(), "closed") || strings.Contains(err.Error(), "shutting down")) {
		t.Fatalf("got %v, want the source server named as gone (%v)", err, time.Since(start))
	}
	if time.Since(start) > 4*time.Second {
		t.Errorf("the client took %v to notice", time.Since(start))
	}
	src2, _ := startServer(t, &Server{Software: "test"})
	out, err := (&Client{Src: src2, Dst: dst}).Run(context.Background(), quickSpec(1, 200*time.Millisecond), 1, 0)
	if err != nil {
		t.Fatalf("target did not serve the next test: %v", err)
	}
	checkRun(t, &out.Runs[0], 1)
}

// writerFunc calls f on every write.
type writerFunc func()

func (f writerFunc) Write(p []byte) (int, error) { f(); return len(p), nil }

// TestAcquireWaitsForRelease: a client that finds the server busy is let in as soon as the holder
// releases it (no polling), and refused after busyGrace when the holder stays.
func TestAcquireWaitsForRelease(t *testing.T) {
	s := &Server{}
	if ok, _ := s.acquire("a", []byte("a")); !ok {
		t.Fatal("an idle server refused")
	}
	if ok, _ := s.acquire("a2", []byte("a")); !ok {
		t.Fatal("the holder's second connection was refused")
	}
	got := make(chan bool)
	go func() {
		ok, _ := s.acquire("b", []byte("b"))
		got <- ok
	}()
	s.release()
	select {
	case <-got:
		t.Fatal("b got the server while a still held one connection")
	default:
	}
	t0 := time.Now()
	s.release()
	if ok := <-got; !ok {
		t.Fatal("b was refused after a released the server")
	}
	if d := time.Since(t0); d > busyGrace/2 {
		t.Errorf("b waited %v after the release", d)
	}
	t0 = time.Now()
	ok, busy := s.acquire("c", []byte("c"))
	if ok || !strings.HasPrefix(busy, "b since ") || time.Since(t0) < busyGrace {
		t.Errorf("c: got %v, busy %q after %v; want a refusal naming b after %v", ok, busy, time.Since(t0), busyGrace)
	}
}

func TestServerBusyAndGarbage(t *testing.T) {
	dst, _ := startServer(t, &Server{Software: "test"})
	// Garbage, a half handshake and an oversized frame must not hurt the server.
	for _, junk := range []string{"GET / HTTP/1.1\r\n\r\n", "\xff\xff\xff\xff", "\x00\x00\x00\x05{}{}{"} {
		c, err := net.Dial("tcp", dst)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(junk))
		io.Copy(io.Discard, c)
		c.Close()
	}
	first, err := (&Client{Software: "test"}).dial(context.Background(), RoleTarget, dst)
	if err != nil {
		t.Fatal(err)
	}
	// The server took the first client before welcoming it, so the second one finds it busy.
	second, err := (&Client{Software: "test"}).dial(context.Background(), RoleTarget, dst)
	if err != nil {
		t.Fatal(err)
	}
	second.c.Send(typePrepare, &prepareMsg{Role: RoleTarget, Spec: quickSpec(1, time.Second)})
	err = second.c.Expect(typeReady, nil)
	var re *proto.RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "server busy: running a test for 127.0.0.1:") {
		t.Errorf("second client got %v, want server busy", err)
	}
	second.c.Close()
	// A bad spec gets a clear answer and the session stays usable.
	bad := quickSpec(0, time.Second)
	first.c.Send(typePrepare, &prepareMsg{Role: RoleTarget, Spec: bad})
	if err := first.c.Expect(typeReady, nil); err == nil || !strings.Contains(err.Error(), "--flows 0") {
		t.Errorf("bad spec: %v", err)
	}
	first.c.Close()
	src, _ := startServer(t, &Server{Software: "test"})
	if _, err := (&Client{Src: src, Dst: dst, Software: "test"}).Run(context.Background(), quickSpec(1, 200*time.Millisecond), 1, 0); err != nil {
		t.Errorf("after garbage and a busy refusal: %v", err)
	}
}

func TestRunKeyMismatch(t *testing.T) {
	src, _ := startServer(t, &Server{Key: []byte("0123456789abcdef")})
	dst, _ := startServer(t, &Server{Key: []byte("0123456789abcdef")})
	_, err := (&Client{Src: src, Dst: dst, Key: []byte("fedcba9876543210")}).Run(context.Background(), quickSpec(1, time.Second), 1, 0)
	if err == nil || !strings.Contains(err.Error(), "target server "+dst+": authentication failed") {
		t.Errorf("got %v", err)
	}
	// Servers with different keys: the data connections are refused.
	src2, _ := startServer(t, &Server{Key: []byte("fedcba9876543210")})
	_, err = (&Client{Src: src2, Dst: dst, Key: []byte("0123456789abcdef")}).Run(context.Background(), quickSpec(1, time.Second), 1, 0)
	if err == nil {
		t.Error("source with another key connected data flows")
	}
}

func TestRunConnectRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := (&Client{Src: addr, Dst: addr}).Run(context.Background(), quickSpec(1, time.Second), 1, 0)
	if err == nil || !strings.Contains(err.Error(), "is `ncdevmem server` running there") {
		t.Errorf("got %v", err)
	}
}

// fakeDevmem stands in for the devmem datapath to prove the selection and the dry-run path.
type fakeDevmem struct{ closed chan Role }

func (fakeDevmem) Name() string { return "fake-devmem" }
func (fakeDevmem) Handles(s *TestSpec, r Role) bool {
	return (r == RoleTarget && s.DevmemRX) || (r == RoleSource && s.DevmemTX)
}
func (f fakeDevmem) Setup(_ context.Context, s Setup) (Flows, error) {
	s.Logf("would bind %s queues %v", s.Spec.Ifname, s.Spec.Queues)
	if !s.Local.IsValid() {
		return nil, errors.New("no listen address")
	}
	return &fakeFlows{f: f, role: s.Role}, nil
}

type fakeFlows struct {
	f    fakeDevmem
	role Role
}

func (*fakeFlows) Control(string, string, syscall.RawConn) error    { return nil }
func (*fakeFlows) Receiver(int, syscall.RawConn) (rx.Engine, error) { return nil, errors.New("fake") }
func (*fakeFlows) Sender(int, syscall.RawConn) (tx.Engine, error)   { return nil, errors.New("fake") }
func (*fakeFlows) WindowStart() error                               { return nil }
func (*fakeFlows) WindowEnd() error                                 { return nil }
func (*fakeFlows) Report() *report.Devmem                           { return nil }
func (f *fakeFlows) Close() error                                   { f.f.closed <- f.role; return nil }

func TestDatapathSelection(t *testing.T) {
	spec := quickSpec(1, time.Second)
	spec.DevmemRX, spec.Ifname, spec.Queues = true, "eth1", []int{14, 15}
	if dp := selectDatapath(nil, &spec, RoleSource); dp.Name() != "host" {
		t.Errorf("source of a devmem-rx test: %s, want host", dp.Name())
	}
	fake := fakeDevmem{closed: make(chan Role, 4)}
	if dp := selectDatapath([]Datapath{fake}, &spec, RoleTarget); dp.Name() != "fake-devmem" {
		t.Fatalf("target of a devmem-rx test: %s, want fake-devmem", dp.Name())
	}
	src, _ := startServer(t, &Server{dps: []Datapath{fake}})
	dst, _ := startServer(t, &Server{dps: []Datapath{fake}})
	spec.DryRun = true
	out, err := (&Client{Src: src, Dst: dst}).Run(context.Background(), spec, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Runs) != 0 || len(out.Notes) != 1 || out.Notes[0] != "target: would bind eth1 queues [14 15]" {
		t.Errorf("dry run: %d runs, notes %q", len(out.Runs), out.Notes)
	}
	if r := <-fake.closed; r != RoleTarget {
		t.Errorf("closed %s", r)
	}
	// A datapath that fails to make an engine fails the test cleanly and is torn down.
	spec.DryRun = false
	_, err = (&Client{Src: src, Dst: dst}).Run(context.Background(), spec, 1, 0)
	if err == nil || !strings.Contains(err.Error(), "flow 0: fake") {
		t.Errorf("engine failure: %v", err)
	}
	if r := <-fake.closed; r != RoleTarget {
		t.Errorf("closed %s", r)
	}
}

func TestRunPaced(t *testing.T) {
	src, _ := startServer(t, &Server{})
	dst, _ := startServer(t, &Server{})
	spec := quickSpec(2, time.Second)
	spec.PaceBytes = 5e6 // 40 Mbit/s per flow
	out, err := (&Client{Src: src, Dst: dst}).Run(context.Background(), spec, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range out.Runs[0].Target.Flows {
		// The first window of data leaves unpaced; beyond that the rate must hold.
		if f.Gbps > 0.08 || f.Gbps < 0.01 {
			t.Errorf("flow %d: %.3f Gbps, want about 0.04 under --pace 0.04", f.ID, f.Gbps)
		}
	}
}

// serversAndClient starts a source and a target server and connects a client to both: the test
// speaks the protocol itself.
func serversAndClient(t *testing.T) (src, dst string, s, d *endpoint) {
	t.Helper()
	src, _ = startServer(t, &Server{})
	dst, _ = startServer(t, &Server{})
	cl := &Client{}
	var err error
	if d, err = cl.dial(context.Background(), RoleTarget, dst); err != nil {
		t.Fatal(err)
	}
	if s, err = cl.dial(context.Background(), RoleSource, src); err != nil {
		t.Fatal(err)
	}
	return src, dst, s, d
}

// TestClientCrash drops both control connections mid-test without a word: the servers must tear
// down and serve the next client.
func TestClientCrash(t *testing.T) {
	src, dst, s, d := serversAndClient(t)
	spec := quickSpec(2, 30*time.Second)
	spec.Interval = 100 * time.Millisecond
	var tr readyMsg
	d.c.Send(typePrepare, &prepareMsg{Role: RoleTarget, Spec: spec})
	if err := d.c.Expect(typeReady, &tr); err != nil {
		t.Fatal(err)
	}
	s.c.Send(typePrepare, &prepareMsg{Role: RoleSource, Spec: spec, Target: net.JoinHostPort("127.0.0.1", fmt.Sprint(tr.DataPort)), Session: tr.Session})
	if err := s.c.Expect(typeReady, nil); err != nil {
		t.Fatal(err)
	}
	d.c.Send(typeStart, nil)
	d.c.Expect(typeStarted, nil)
	s.c.Send(typeStart, nil)
	// Crash once the target's window has counted bytes: its first progress message says so.
	if err := d.c.Expect(typeProgress, nil); err != nil {
		t.Fatal(err)
	}
	d.c.Close()
	s.c.Close()
	start := time.Now()
	if _, err := (&Client{Src: src, Dst: dst}).Run(context.Background(), quickSpec(1, 200*time.Millisecond), 1, 0); err != nil {
		t.Fatalf("after a client crash: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("servers took %v to recover", time.Since(start))
	}
}

// TestRunOneServerBothRoles uses one server as source and target (kperf's localhost default):
// the same client may hold it twice, another client still may not.
func TestRunOneServerBothRoles(t *testing.T) {
	addr, _ := startServer(t, &Server{})
	out, err := (&Client{Src: addr, Dst: addr}).Run(context.Background(), quickSpec(2, 300*time.Millisecond), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, &out.Runs[0], 2)
}

// TestSilentDataConnection: a connection to the data port that never identifies itself must
// neither hold up the real flows nor the start.
func TestSilentDataConnection(t *testing.T) {
	_, _, s, d := serversAndClient(t)
	defer d.c.Close()
	defer s.c.Close()
	spec := quickSpec(2, 300*time.Millisecond)
	var tr readyMsg
	d.c.Send(typePrepare, &prepareMsg{Role: RoleTarget, Spec: spec})
	if err := d.c.Expect(typeReady, &tr); err != nil {
		t.Fatal(err)
	}
	data := net.JoinHostPort("127.0.0.1", fmt.Sprint(tr.DataPort))
	silent, err := net.Dial("tcp", data)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	s.c.Send(typePrepare, &prepareMsg{Role: RoleSource, Spec: spec, Target: data, Session: tr.Session})
	if err := s.c.Expect(typeReady, nil); err != nil {
		t.Fatal(err)
	}
	d.c.Send(typeStart, nil)
	if err := d.c.Expect(typeStarted, nil); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("a silent data connection delayed the test by %v", time.Since(start))
	}
	s.c.Send(typeStart, nil)
	var r resultMsg
	for _, e := range []*endpoint{s, d} {
		for {
			m, err := e.c.RecvWithin(5 * time.Second)
			if err != nil {
				t.Fatalf("%s: %v", e.role, err)
			}
			if m.Type == typeResult {
				m.Decode(&r)
				break
			}
		}
		if r.Error != "" || len(r.Side.Flows) != 2 {
			t.Errorf("%s: %q, %d flows", e.role, r.Error, len(r.Side.Flows))
		}
	}
}

// TestAppCPURules: kperf's rule between two hosts (net CPU + --pin-off), explicit lists first, and
// on a shared host the two ends of a flow kept on different CPUs.
func TestAppCPURules(t *testing.T) {
	spec := DefaultSpec()
	// Two hosts: net CPU + offset, modulo the CPU count.
	for _, tc := range []struct{ net, off, ncpu, want int }{{3, 0, 8, 3}, {3, 2, 8, 5}, {7, 2, 8, 1}, {1, -2, 8, 7}, {-1, 0, 8, -1}} {
		spec.PinOff = tc.off
		if got := appCPU(&spec, RoleTarget, 0, tc.net, tc.ncpu, false, []int{0, 1, 2, 3, 4, 5, 6, 7}); got != tc.want {
			t.Errorf("two hosts, net %d off %d: got %d, want %d", tc.net, tc.off, got, tc.want)
		}
	}
	spec.PinOff = 0
	// Shared host: whatever the net CPU says, flow i's source and target never share a CPU.
	for _, allowed := range [][]int{{0, 1}, {0, 1, 2, 3}, {2, 5, 7}, {0, 1, 2, 3, 4, 5, 6, 7}} {
		for i := range 8 {
			s := appCPU(&spec, RoleSource, i, 0, 8, true, allowed)
			d := appCPU(&spec, RoleTarget, i, 0, 8, true, allowed)
			if s == d || !contains(allowed, s) || !contains(allowed, d) {
				t.Errorf("shared host, CPUs %v, flow %d: source %d, target %d", allowed, i, s, d)
			}
		}
	}
	// Explicit lists and --no-pin win everywhere.
	spec.CPUsSrc, spec.CPUsDst = []int{4}, []int{4}
	if s, d := appCPU(&spec, RoleSource, 0, 1, 8, true, []int{0, 1}), appCPU(&spec, RoleTarget, 0, 1, 8, true, []int{0, 1}); s != 4 || d != 4 {
		t.Errorf("explicit lists on a shared host: %d/%d", s, d)
	}
	spec.CPUsSrc, spec.CPUsDst, spec.NoPin = nil, nil, true
	if got := appCPU(&spec, RoleSource, 0, 1, 8, true, []int{0, 1}); got != -1 {
		t.Errorf("--no-pin: pinned to %d", got)
	}
}

func contains(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// TestRunSharedHostPlacement: the default placement on loopback (both servers on this kernel)
// pins each flow's source and target workers to different CPUs, reports where the threads and
// the softirqs ran, and warns about nothing; pinning both ends to one CPU by hand is warned
// about, because the loopback softirq runs on the sender's CPU too.
func TestRunSharedHostPlacement(t *testing.T) {
	if len(allowedCPUs()) < 2 {
		t.Skipf("this process may run on %d CPU(s); keeping two ends apart needs two", len(allowedCPUs()))
	}
	src, _ := startServer(t, &Server{Software: "test"})
	dst, _ := startServer(t, &Server{Software: "test"})
	for _, flows := range []int{1, 2} {
		spec := DefaultSpec()
		spec.Flows, spec.Duration = flows, 500*time.Millisecond
		out, err := (&Client{Src: src, Dst: dst}).Run(context.Background(), spec, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		run := &out.Runs[0]
		checkRun(t, run, flows)
		if !run.SharedHost || len(run.Warnings) != 0 {
			t.Errorf("%d flows: shared host %v, warnings %q", flows, run.SharedHost, run.Warnings)
		}
		for i := range flows {
			s, d := run.Source.Flows[i], run.Target.Flows[i]
			if s.AppCPU < 0 || d.AppCPU < 0 || s.AppCPU == d.AppCPU {
				t.Errorf("%d flows, flow %d: source pinned to %d, target to %d", flows, i, s.AppCPU, d.AppCPU)
			}
			// A pinned thread is seen on its CPU only; the target's data softirq was seen somewhere.
			if fmt.Sprint(s.ThreadCPUs) != fmt.Sprint([]int{s.AppCPU}) || fmt.Sprint(d.ThreadCPUs) != fmt.Sprint([]int{d.AppCPU}) || len(d.SoftirqCPUs) == 0 {
				t.Errorf("%d flows, flow %d: source thread on %v, target thread on %v, data softirq on %v", flows, i, s.ThreadCPUs, d.ThreadCPUs, d.SoftirqCPUs)
			}
		}
	}
	spec := DefaultSpec()
	spec.Duration, spec.CPUsSrc, spec.CPUsDst = 500*time.Millisecond, []int{0}, []int{0}
	out, err := (&Client{Src: src, Dst: dst}).Run(context.Background(), spec, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	run := &out.Runs[0]
	if len(run.Warnings) != 1 || !strings.Contains(run.Warnings[0], "all ran on CPU 0") {
		t.Errorf("both ends on CPU 0: warnings %q (data softirq on %v)", run.Warnings, run.Target.Flows[0].SoftirqCPUs)
	}
	if !strings.Contains(strings.Join(out.Notes, "\n"), "warning: flow 0: the source app, the target app and the data softirq all ran on CPU 0") {
		t.Errorf("the warning was not printed: %q", out.Notes)
	}
	var b strings.Builder
	report.WriteText(&b, &report.Result{Runs: []report.Run{*run}})
	if !strings.Contains(b.String(), "== Placement (source and target share one host)\n  flow 0: source thread CPU 0 (pinned to 0)") || !strings.Contains(b.String(), "  warning: flow 0:") {
		t.Errorf("text report:\n%s", b.String())
	}
}

// closeFails is host memory for every role (whatever the spec's devmem flags), whose Close fails
// with err (succeeds when nil).
type closeFails struct{ err error }

func (closeFails) Name() string                 { return "close-fails" }
func (closeFails) Handles(*TestSpec, Role) bool { return true }
func (d closeFails) Setup(ctx context.Context, s Setup) (Flows, error) {
	f, err := hostDatapath{}.Setup(ctx, s)
	return &closeFailsFlows{Flows: f, err: d.err}, err
}

type closeFailsFlows struct {
	Flows
	err error
}

func (f *closeFailsFlows) Close() error { return f.err }

// expectRestored reads e's next message, which must be restored with error want.
func expectRestored(t *testing.T, e *endpoint, want string) {
	t.Helper()
	var m restoredMsg
	if err := e.c.Expect(typeRestored, &m); err != nil || m.Error != want {
		t.Errorf("%s: restored %+v, %v; want error %q", e.role, m, err, want)
	}
}

// TestServerRestored: restored follows the result of a test, the ready of a dry run, the abort of
// a prepared test and the error of one that failed after setup; it carries the failure of Close on
// one line with the way to finish the job by hand, and a Run that sees it fails, naming the target.
func TestServerRestored(t *testing.T) {
	closeErr := errors.New("restore eth1: hds-thresh 0 -> 256: device or resource busy\nunbind queues 14-15: no such device")
	wantErr := "restore eth1: hds-thresh 0 -> 256: device or resource busy; unbind queues 14-15: no such device; run `ncdevmem cleanup -f eth1` on that host"
	src, _ := startServer(t, &Server{})
	dst, _ := startServer(t, &Server{dps: []Datapath{closeFails{closeErr}}})
	cl := &Client{}
	d, err := cl.dial(context.Background(), RoleTarget, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer d.c.Close()
	s, err := cl.dial(context.Background(), RoleSource, src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.c.Close()
	// The target's datapath is devmem to the spec (so it names an interface), host memory in fact.
	spec := quickSpec(1, 300*time.Millisecond)
	spec.DevmemRX, spec.Ifname, spec.Queues = true, "eth1", []int{14, 15}
	// prepare prepares the target and returns the source's prepare.
	prepare := func(spec TestSpec) *prepareMsg {
		t.Helper()
		var tr readyMsg
		d.c.Send(typePrepare, &prepareMsg{Role: RoleTarget, Spec: spec})
		if err := d.c.Expect(typeReady, &tr); err != nil {
			t.Fatal(err)
		}
		return &prepareMsg{Role: RoleSource, Spec: spec, Target: net.JoinHostPort("127.0.0.1", fmt.Sprint(tr.DataPort)), Session: tr.Session}
	}

	// A test: result, then restored.
	s.c.Send(typePrepare, prepare(spec))
	if err := s.c.Expect(typeReady, nil); err != nil {
		t.Fatal(err)
	}
	d.c.Send(typeStart, nil)
	if err := d.c.Expect(typeStarted, nil); err != nil {
		t.Fatal(err)
	}
	s.c.Send(typeStart, nil)
	for _, e := range []*endpoint{s, d} {
		var r resultMsg
		if err := e.c.ExpectWithin(10*time.Second, typeResult, &r); err != nil {
			t.Fatalf("%s: %v", e.role, err)
		}
		if r.Error != "" {
			t.Errorf("%s: %s", e.role, r.Error)
		}
		want := ""
		if e == d {
			want = wantErr
		}
		expectRestored(t, e, want)
	}

	// A dry run: ready, then restored, on both sides.
	dry := spec
	dry.DryRun = true
	s.c.Send(typePrepare, prepare(dry))
	expectRestored(t, d, wantErr)
	if err := s.c.Expect(typeReady, nil); err != nil {
		t.Fatal(err)
	}
	expectRestored(t, s, "")

	// An abort before start, and a failure after setup (source ports the source cannot use).
	prepare(spec)
	d.c.Send(typeAbort, nil)
	expectRestored(t, d, wantErr)
	sp := prepare(spec)
	sp.SrcPorts = []uint16{1, 2}
	s.c.Send(typePrepare, sp)
	if err := s.c.Expect(typeReady, nil); err == nil || !strings.Contains(err.Error(), "the target chose 2 source ports for 1 flows") {
		t.Errorf("bad source ports: %v", err)
	}
	expectRestored(t, s, "")
	d.c.Send(typeAbort, nil)
	expectRestored(t, d, wantErr)
	d.c.Close()
	s.c.Close()

	// Run reports it, naming the target.
	_, err = (&Client{Src: src, Dst: dst}).Run(context.Background(), spec, 1, 0)
	if err == nil || err.Error() != "target server "+dst+": restoring the NIC after the test failed: "+wantErr {
		t.Errorf("Run: %v", err)
	}
}

func TestRestoreFailure(t *testing.T) {
	for _, tc := range []struct {
		err    error
		ifname string
		want   string
	}{
		{nil, "eth1", ""},
		{errors.New("unbind: no such device"), "eth1", "unbind: no such device; run `ncdevmem cleanup -f eth1` on that host"},
		{errors.New("unbind: no such device"), "", "unbind: no such device; run `ncdevmem cleanup -f IF` on that host"},
		// nic's own error says what to run already.
		{errors.New("a\nrestore eth1: busy (the journal j is kept: fix the cause, then run `ncdevmem cleanup -f eth1`)"), "eth1",
			"a; restore eth1: busy (the journal j is kept: fix the cause, then run `ncdevmem cleanup -f eth1`)"},
	} {
		if got := restoreFailure(tc.err, tc.ifname); got != tc.want {
			t.Errorf("restoreFailure(%q, %q) = %q, want %q", tc.err, tc.ifname, got, tc.want)
		}
	}
}
