// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"errors"
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
