// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/proto"
	"github.com/devmemtcp/ncdevmem/report"
)

// fakeServers is a clientRun whose two endpoints are loopback connections the test answers on.
func fakeServers(t *testing.T, spec TestSpec) (r *clientRun, src, dst *proto.Conn) {
	t.Helper()
	cs, ss := tcpPair(t)
	cd, sd := tcpPair(t)
	cl := &Client{total: 1}
	r = &clientRun{cl: cl, spec: spec, out: &Outcome{Env: map[string]*report.Env{}},
		src:  &endpoint{role: RoleSource, addr: "src:1", c: proto.NewConn(cs)},
		dst:  &endpoint{role: RoleTarget, addr: "dst:1", c: proto.NewConn(cd)},
		stop: func() bool { return true }}
	return r, proto.NewConn(ss), proto.NewConn(sd)
}

// expectAbort checks that c got an abort.
func expectAbort(t *testing.T, who string, c *proto.Conn) {
	t.Helper()
	if m, err := c.RecvWithin(5 * time.Second); err != nil || m.Type != typeAbort {
		t.Errorf("%s got %q, %v; want abort", who, m.Type, err)
	}
}

func TestClientConnectAndHandshake(t *testing.T) {
	// A server that accepts and never says hello: the handshake waits until ctx ends.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cl := &Client{total: 1}
	e := &endpoint{role: RoleTarget, addr: ln.Addr().String()}
	nc, err := cl.connectTo(ctx, e)
	if err != nil || cl.Phase() != PhaseConnect {
		t.Fatalf("connect: %v in phase %s", err, cl.Phase())
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() { done <- cl.handshake(ctx, e, nc) }()
	// The client waits for the server's hello; wherever it is, the end of ctx interrupts it.
	cancel()
	var re *RunError
	if err := <-done; !errors.As(err, &re) || re.Phase != PhaseHandshake || !re.Interrupted {
		t.Errorf("handshake interrupted: %v", err)
	}
	// Connecting with ctx already ended is interrupted in the connect phase.
	if _, err := cl.connectTo(ctx, e); !errors.As(err, &re) || re.Phase != PhaseConnect || !re.Interrupted {
		t.Errorf("connect interrupted: %v", err)
	}
}

func TestClientPrepare(t *testing.T) {
	r, src, dst := fakeServers(t, quickSpec(1, time.Second))
	r.dstIP = netip.MustParseAddr("127.0.0.1")
	go func() {
		var p prepareMsg
		dst.Expect(typePrepare, &p)
		dst.Send(typeReady, &readyMsg{DataPort: 5201, BootID: "b", Notes: []string{"target note"}})
		src.Expect(typePrepare, &p)
		if p.Target != "127.0.0.1:5201" || p.TargetBoot != "b" {
			src.SendError("bad prepare " + p.Target)
			return
		}
		src.SendError("no such interface")
	}()
	_, _, err := r.prepare(false)
	if err == nil || err.Error() != "source server src:1: no such interface" || r.cl.Phase() != PhaseSetup {
		t.Errorf("prepare: %v in phase %s", err, r.cl.Phase())
	}
	expectAbort(t, "the target", dst)
	if len(r.out.Notes) != 1 || r.out.Notes[0] != "target: target note" {
		t.Errorf("notes %q", r.out.Notes)
	}
}

func TestClientStart(t *testing.T) {
	r, src, dst := fakeServers(t, quickSpec(1, time.Second))
	go func() {
		dst.Expect(typeStart, nil)
		dst.SendError("cannot start")
	}()
	if err := r.start(&startMsg{}); err == nil || !strings.Contains(err.Error(), "target server dst:1: cannot start") || r.cl.Phase() != PhaseWindow {
		t.Errorf("start: %v in phase %s", err, r.cl.Phase())
	}
	expectAbort(t, "the source", src)
}

// TestCollector: intervals from the target's progress and the source's bytes, the drain phase at
// the window's end, and the failed side's cause with the other side aborted.
func TestCollector(t *testing.T) {
	r, src, dst := fakeServers(t, quickSpec(1, 100*time.Millisecond))
	var printed strings.Builder
	r.cl.Progress = &printed
	c := r.newCollector()
	// The source's bytes, sampled before the target's interval closes, go into it.
	c.sample(sideProgress{RoleSource, progressMsg{Elapsed: 0.05, Bytes: 2000}})
	go func() {
		dst.Send(typeProgress, &progressMsg{Elapsed: 0.05, Bytes: 1000})
		dst.Send(typeResult, &resultMsg{Error: "flow 0: payload mismatch", Kind: kindMismatch})
		expectAbort(t, "the source", src)
		src.Send(typeResult, &resultMsg{Error: "aborted by the client", Kind: kindAborted})
	}()
	err := c.wait(context.Background())
	if err == nil || err.Error() != "target server dst:1: flow 0: payload mismatch" {
		t.Errorf("wait: %v", err)
	}
	if len(c.intervals) != 1 || c.intervals[0].RxBytes != 1000 || c.intervals[0].TxBytes != 2000 || !strings.Contains(printed.String(), "[SUM]   0.00-0.05   sec  1000 Bytes") {
		t.Errorf("intervals %+v, printed %q", c.intervals, printed.String())
	}
	if r.cl.Phase() != PhaseDrain && r.cl.Phase() != "" {
		t.Errorf("phase %s after the window", r.cl.Phase())
	}

	// Interrupted: both sides are aborted and the error names the phase.
	r, src, dst = fakeServers(t, quickSpec(1, time.Minute))
	r.cl.setPhase(PhaseWindow)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("interrupted by SIGINT"))
	err = r.newCollector().wait(ctx)
	var re *RunError
	if !errors.As(err, &re) || re.Phase != PhaseWindow || !re.Interrupted || !strings.Contains(err.Error(), "interrupted by SIGINT during the measurement window") {
		t.Errorf("interrupted: %v", err)
	}
	expectAbort(t, "the source", src)
	expectAbort(t, "the target", dst)
}

func TestClientBetween(t *testing.T) {
	r, _, _ := fakeServers(t, quickSpec(1, time.Second))
	r.cl.total = 3
	r.cl.setPhase(PhaseSetup)
	ctx, cancel := context.WithCancelCause(context.Background())
	if err := r.between(ctx, 0); err != nil || r.cl.Phase() != PhaseSetup {
		t.Errorf("before the first run: %v in phase %s", err, r.cl.Phase())
	}
	if err := r.between(ctx, 1); err != nil || r.cl.Phase() != PhaseBetween {
		t.Errorf("before the second run: %v in phase %s", err, r.cl.Phase())
	}
	cancel(errors.New("interrupted by SIGTERM"))
	var re *RunError
	if err := r.between(ctx, 2); !errors.As(err, &re) || re.Phase != PhaseBetween || re.Run != 2 || !strings.Contains(err.Error(), "between runs 2 and 3 of 3; 2 finished") {
		t.Errorf("interrupted between runs: %v", err)
	}
}

// fakeServer serves one control connection on a loopback port: the handshake, then script. The
// client closing its connection ends any read the script is in; a script error fails the test.
func fakeServer(t *testing.T, script func(c *proto.Conn) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			t.Errorf("fake server: %v", err)
			return
		}
		defer nc.Close()
		c := proto.NewConn(nc)
		if _, err := proto.ServerHandshake(c, nil, "fake"); err != nil {
			t.Errorf("fake server: %v", err)
			return
		}
		if err := script(c); err != nil {
			t.Errorf("fake server: %v", err)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// fakeRole plays role for up to runs clean tests (the client may leave before a prepare) and ends
// each with restored (none when it is nil). With probe, it first checks for probe that the client
// sends nothing between the result and restored: the next prepare must wait for restored.
func fakeRole(role Role, runs int, restored *restoredMsg, probe time.Duration) func(c *proto.Conn) error {
	return func(c *proto.Conn) error {
		for range runs {
			var p prepareMsg
			if err := c.ExpectWithin(time.Minute, typePrepare, &p); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
			if err := c.Send(typeReady, &readyMsg{DataPort: 9, Host: "fake-" + string(role), NumCPU: 1}); err != nil {
				return err
			}
			if !p.Spec.DryRun {
				if err := c.Expect(typeStart, nil); err != nil {
					return err
				}
				if role == RoleTarget {
					if err := c.Send(typeStarted, nil); err != nil {
						return err
					}
				}
				if err := c.Send(typeResult, &resultMsg{Side: report.Side{Host: "fake-" + string(role)}, Start: time.Now()}); err != nil {
					return err
				}
			}
			if probe > 0 {
				if m, err := c.RecvWithin(probe); err == nil {
					return fmt.Errorf("%s: the client sent %q before restored", role, m.Type)
				}
			}
			if restored == nil {
				// Silent: wait for the client to give up and close.
				c.RecvWithin(time.Minute)
				return nil
			}
			if err := c.Send(typeRestored, restored); err != nil {
				return err
			}
		}
		if m, err := c.RecvWithin(time.Minute); err == nil {
			return fmt.Errorf("%s: got %q after the last test", role, m.Type)
		}
		return nil
	}
}

// TestClientRestored: Run waits for both servers' restored after each test (and a dry run's
// prepare) before going on; a failed or missing restored fails it, naming the server, and the
// wait ends with ctx.
func TestClientRestored(t *testing.T) {
	ok := &restoredMsg{}
	failed := &restoredMsg{Error: "restore eth1: hds-thresh: device or resource busy; run `ncdevmem cleanup -f eth1` on that host"}
	dry := quickSpec(1, time.Second)
	dry.DevmemRX, dry.Ifname, dry.Queues, dry.DryRun = true, "eth1", []int{14, 15}, true
	for _, tc := range []struct {
		name     string
		spec     TestSpec
		src, dst *restoredMsg
		runs     int
		wait     time.Duration // Client.restoreWait
		cancel   time.Duration // ctx ends this long after Run starts (0: never)
		want     string        // the error with the servers' addresses as SRC and DST; "" for none
		kept     int           // runs in the Outcome
	}{
		{name: "restored", spec: quickSpec(1, time.Second), src: ok, dst: ok, runs: 2, kept: 2},
		{name: "target failed", spec: quickSpec(1, time.Second), src: ok, dst: failed, runs: 2, kept: 1,
			want: "target server DST: restoring the NIC after the test failed: " + failed.Error},
		{name: "both failed", spec: quickSpec(1, time.Second), src: failed, dst: failed, runs: 1, kept: 1,
			want: "target server DST: restoring the NIC after the test failed: " + failed.Error + "; source server SRC: restoring the NIC after the test failed: " + failed.Error},
		{name: "source silent", spec: quickSpec(1, time.Second), dst: ok, runs: 1, kept: 1, wait: 500 * time.Millisecond,
			want: "source server SRC: no word within 500ms that the server restored the NIC after the test (is it stuck tearing down? see its log; if it stays so, run `ncdevmem cleanup -f IF` on that host)"},
		{name: "interrupted", spec: quickSpec(1, time.Second), dst: ok, runs: 1, kept: 1, cancel: 300 * time.Millisecond,
			want: "interrupted while draining after the window of run 1 of 1"},
		{name: "dry run", spec: dry, src: ok, dst: ok, runs: 1},
		{name: "dry run failed", spec: dry, src: failed, dst: ok, runs: 1,
			want: "source server SRC: restoring the NIC after the test failed: " + failed.Error},
		{name: "dry run silent", spec: dry, src: ok, runs: 1, wait: 500 * time.Millisecond,
			want: "target server DST: no word within 500ms that the server restored the NIC after the test (is it stuck tearing down? see its log; if it stays so, run `ncdevmem cleanup -f eth1` on that host)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The target's restored comes late, so a client that did not wait for it would have sent
			// the next prepare (or, after the last run, closed) by then.
			probe := time.Duration(0)
			if tc.dst != nil {
				probe = 100 * time.Millisecond
			}
			srcAddr := fakeServer(t, fakeRole(RoleSource, tc.runs, tc.src, 0))
			dstAddr := fakeServer(t, fakeRole(RoleTarget, tc.runs, tc.dst, probe))
			cl := &Client{Src: srcAddr, Dst: dstAddr, restoreWait: tc.wait}
			ctx := context.Background()
			if tc.cancel > 0 {
				c, cancel := context.WithCancelCause(ctx)
				defer cancel(nil)
				time.AfterFunc(tc.cancel, func() { cancel(errors.New("interrupted")) })
				ctx = c
			}
			t0 := time.Now()
			out, err := cl.Run(ctx, tc.spec, tc.runs, 0)
			took := time.Since(t0)
			want := strings.NewReplacer("SRC", srcAddr, "DST", dstAddr).Replace(tc.want)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != want) {
				t.Fatalf("Run: %v\nwant %q", err, want)
			}
			if len(out.Runs) != tc.kept {
				t.Errorf("%d runs in the outcome, want %d", len(out.Runs), tc.kept)
			}
			var re *RunError
			if err != nil && (!errors.As(err, &re) || re.Interrupted != (tc.cancel > 0)) {
				t.Errorf("%v: not a RunError, or interrupted wrongly", err)
			}
			if re != nil && !tc.spec.DryRun && (re.Phase != PhaseDrain || re.Run != tc.kept-1) {
				t.Errorf("failed in run %d, phase %s; want run %d, drain", re.Run, re.Phase, tc.kept-1)
			}
			if tc.cancel > 0 && took > tc.cancel+time.Second {
				t.Errorf("the interrupted wait took %v after ctx ended", took-tc.cancel)
			}
			if tc.wait > 0 && (took < tc.wait || took > tc.wait+5*time.Second) {
				t.Errorf("gave up after %v, want about %v", took, tc.wait)
			}
		})
	}
}
