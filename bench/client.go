// SPDX-License-Identifier: MIT

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/devmemtcp/ncdevmem/proto"
	"github.com/devmemtcp/ncdevmem/report"
)

// setupTimeout bounds prepare -> ready: devmem setup (rings, RSS, dma-buf, bind) can take seconds.
const setupTimeout = 2 * time.Minute

// Client orchestrates tests between a source and a target server (kperf's three-party model).
type Client struct {
	Src, Dst string // server control addresses, host:port
	Key      []byte
	Software string
	// Progress receives iperf3-like lines every spec.Interval (nil: none); Notes receives the
	// datapaths' notes and warnings (nil: none).
	Progress io.Writer
	Notes    io.Writer
	// Live, when non-nil, receives one progress line rewritten in place ("\r...") during each
	// window: run k/N, elapsed and remaining time, current Gbps, current app-CPU idle. Give it a
	// terminal only.
	Live io.Writer

	id []byte // this client's id on every connection (proto.Hello.Client)

	phase    atomic.Value // Phase the client is in, for Interrupted
	runIndex atomic.Int64 // the run in progress, warm-up included (0-based)
	total    int          // runs in this Run, warm-up included
	live     liveLine
}

// Phase names where a run was when it failed or was interrupted; the strings are the JSON's.
type Phase string

const (
	PhaseConnect   Phase = "connect"   // resolving and connecting to the servers
	PhaseHandshake Phase = "handshake" // the control protocol's handshake
	PhaseSetup     Phase = "setup"     // the servers prepare the test (NIC and dma-buf for devmem)
	PhaseWindow    Phase = "window"    // the measurement window
	PhaseDrain     Phase = "drain"     // after the window: draining and collecting the results
	PhaseBetween   Phase = "between"   // between two runs of --runs/--warmup
)

// Describe is the phase in words, for the one line the command prints.
func (p Phase) Describe() string {
	switch p {
	case PhaseConnect:
		return "while resolving and connecting to the servers"
	case PhaseHandshake:
		return "during the handshake with the servers"
	case PhaseSetup:
		return "while the servers prepared the test (NIC and dma-buf setup)"
	case PhaseWindow:
		return "during the measurement window"
	case PhaseDrain:
		return "while draining after the window"
	case PhaseBetween:
		return "between runs"
	}
	return "in phase " + string(p)
}

// RunError is a Run that failed or was interrupted: the run (0-based, warm-up included), the
// phase it was in, and the cause. Interrupted is true when ctx ended (a signal), not a failure.
type RunError struct {
	Run         int
	Phase       Phase
	Interrupted bool
	Err         error
}

func (e *RunError) Error() string { return e.Err.Error() }
func (e *RunError) Unwrap() error { return e.Err }

func (cl *Client) setPhase(p Phase) { cl.phase.Store(p) }

// Phase is the phase the client is in now.
func (cl *Client) Phase() Phase {
	p, _ := cl.phase.Load().(Phase)
	return p
}

// interrupted wraps the context's cause with the phase the client was in.
func (cl *Client) interrupted(ctx context.Context) error {
	p := cl.Phase()
	i := int(cl.runIndex.Load())
	runs := ""
	switch {
	case p == PhaseBetween:
		runs = fmt.Sprintf(" %d and %d of %d; %d finished", i, i+1, cl.total, i)
	case p != PhaseConnect && p != PhaseHandshake:
		runs = fmt.Sprintf(" of run %d of %d", i+1, cl.total)
	}
	return &RunError{Run: i, Phase: p, Interrupted: true,
		Err: fmt.Errorf("%w %s%s", context.Cause(ctx), p.Describe(), runs)}
}

// endpoint is one server's control connection.
type endpoint struct {
	role Role
	addr string
	c    *proto.Conn
}

func (e *endpoint) errorf(format string, args ...any) error {
	return fmt.Errorf("%s server %s: %w", e.role, e.addr, fmt.Errorf(format, args...))
}

func (e *endpoint) wrap(err error) error {
	var re *proto.RemoteError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("%s server %s: %s", e.role, e.addr, re.Message)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET):
		return e.errorf("control connection closed mid-test (did the server crash or get killed?)")
	case errors.Is(err, os.ErrDeadlineExceeded):
		return e.errorf("no answer in time (is the server hung or the network down?)")
	}
	return e.errorf("%w", err)
}

func (cl *Client) dial(ctx context.Context, role Role, addr string) (*endpoint, error) {
	e := &endpoint{role: role, addr: addr}
	cl.setPhase(PhaseConnect)
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, cl.interrupted(ctx)
		}
		return nil, e.errorf("%w (is `ncdevmem server` running there and port %s open?)", err, portOf(addr))
	}
	e.c = proto.NewConn(nc)
	cl.setPhase(PhaseHandshake)
	// The handshake reads and writes with deadlines but no context: closing the connection is
	// what ends it when the run is interrupted.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	_, err = proto.ClientHandshakeAs(e.c, cl.Key, cl.Software, cl.id)
	if !stop() || ctx.Err() != nil {
		nc.Close()
		return nil, cl.interrupted(ctx)
	}
	if err != nil {
		nc.Close()
		return nil, e.wrap(err)
	}
	return e, nil
}

func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return strconv.Itoa(proto.DefaultPort)
	}
	return p
}

// Outcome is what Run measured: the runs after warm-up and both hosts' environment.
type Outcome struct {
	Runs  []report.Run
	Env   map[string]*report.Env
	Notes []string
}

// Run connects to both servers and runs warmup+runs tests of spec, keeping the last runs. With
// spec.DryRun it only prepares both sides and returns their notes. The first failing test ends
// Run; its error names the server and the reason (a payload mismatch names flow, offset, bytes).
func (cl *Client) Run(ctx context.Context, spec TestSpec, runs, warmup int) (*Outcome, error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	if runs < 1 || warmup < 0 {
		return nil, fmt.Errorf("--runs %d --warmup %d: want at least one run and no negative warm-up", runs, warmup)
	}
	if cl.id == nil {
		cl.id = proto.NewNonce()[:16]
	}
	cl.runIndex.Store(0)
	cl.total = warmup + runs
	if cl.Live != nil {
		spec.Live = livePeriod
		cl.live.w, cl.live.runs, cl.live.window = cl.Live, warmup+runs, spec.Duration
		defer cl.live.clear()
	}
	out := &Outcome{Env: map[string]*report.Env{}}
	dst, err := cl.dial(ctx, RoleTarget, cl.Dst)
	if err != nil {
		return out, cl.runError(err)
	}
	defer dst.c.Close()
	src, err := cl.dial(ctx, RoleSource, cl.Src)
	if err != nil {
		return out, cl.runError(err)
	}
	defer src.c.Close()
	// Every wait on the control connections has a deadline but no context: closing them is what
	// wakes the client when it is interrupted. The servers see the connection close and end the
	// test at once (a server in this process is stopped through ctx as well).
	stop := context.AfterFunc(ctx, func() {
		src.c.Close()
		dst.c.Close()
	})
	defer stop()
	dstIP, err := netip.ParseAddrPort(dst.c.NetConn().RemoteAddr().String())
	if err != nil {
		return out, cl.runError(dst.errorf("%w", err))
	}

	for i := 0; i < warmup+runs; i++ {
		cl.runIndex.Store(int64(i))
		if i > 0 {
			cl.setPhase(PhaseBetween)
			if testHold(ctx, PhaseBetween) != nil || ctx.Err() != nil {
				return out, cl.interrupted(ctx)
			}
		}
		measured := i >= warmup
		run, err := cl.once(ctx, spec, src, dst, dstIP.Addr().Unmap(), measured && i == warmup, out)
		if err != nil {
			if ctx.Err() != nil {
				return out, cl.interrupted(ctx)
			}
			return out, cl.runError(err)
		}
		if spec.DryRun {
			return out, nil
		}
		if measured {
			run.Index = i - warmup
			out.Runs = append(out.Runs, *run)
		}
	}
	return out, nil
}

func (cl *Client) note(out *Outcome, role Role, notes []string) {
	for _, n := range notes {
		line := fmt.Sprintf("%s: %s", role, n)
		out.Notes = append(out.Notes, line)
		if cl.Notes != nil {
			fmt.Fprintln(cl.Notes, line)
		}
	}
}

// sideResult is one server's answer to start.
type sideResult struct {
	res resultMsg
	err error
}

// runError gives err the run and phase it happened in (an error that has them already is kept).
func (cl *Client) runError(err error) error {
	var re *RunError
	if errors.As(err, &re) {
		return err
	}
	return &RunError{Run: int(cl.runIndex.Load()), Phase: cl.Phase(), Err: err}
}

func (cl *Client) once(ctx context.Context, spec TestSpec, src, dst *endpoint, dstIP netip.Addr, env bool, out *Outcome) (*report.Run, error) {
	var tr, sr readyMsg
	cl.setPhase(PhaseSetup)
	if err := dst.c.Send(typePrepare, &prepareMsg{Role: RoleTarget, Spec: spec, Env: env}); err != nil {
		return nil, dst.wrap(err)
	}
	if err := dst.c.ExpectWithin(setupTimeout, typeReady, &tr); err != nil {
		return nil, dst.wrap(err)
	}
	cl.note(out, RoleTarget, tr.Notes)
	target := netip.AddrPortFrom(dstIP, uint16(tr.DataPort))
	if err := src.c.Send(typePrepare, &prepareMsg{Role: RoleSource, Spec: spec, Env: env, Target: target.String(), Session: tr.Session, TargetCPUs: tr.NumCPU, TargetBoot: tr.BootID, SrcPorts: tr.SrcPorts}); err != nil {
		dst.c.Send(typeAbort, nil)
		return nil, src.wrap(err)
	}
	if err := src.c.ExpectWithin(setupTimeout, typeReady, &sr); err != nil {
		dst.c.Send(typeAbort, nil)
		return nil, src.wrap(err)
	}
	cl.note(out, RoleSource, sr.Notes)
	if spec.DryRun {
		return nil, nil
	}
	shared := tr.BootID != "" && tr.BootID == sr.BootID
	start := &startMsg{SharedHost: shared}
	cl.setPhase(PhaseWindow)
	if err := dst.c.Send(typeStart, start); err != nil {
		src.c.Send(typeAbort, nil)
		return nil, dst.wrap(err)
	}
	if err := dst.c.Expect(typeStarted, nil); err != nil {
		src.c.Send(typeAbort, nil)
		return nil, dst.wrap(err)
	}
	if err := src.c.Send(typeStart, start); err != nil {
		dst.c.Send(typeAbort, nil)
		return nil, src.wrap(err)
	}
	windowStart := time.Now()
	drainAt := time.NewTimer(spec.Duration)
	defer drainAt.Stop()
	defer cl.live.clear()

	type prog struct {
		role Role
		p    progressMsg
	}
	progress := make(chan prog, 16)
	collect := func(e *endpoint, done chan<- sideResult) {
		limit := spec.Duration + drainTimeout + 30*time.Second
		deadline := time.Now().Add(limit)
		for {
			m, err := e.c.RecvWithin(time.Until(deadline))
			if err != nil {
				done <- sideResult{err: e.wrap(err)}
				return
			}
			switch m.Type {
			case typeProgress:
				var p progressMsg
				if m.Decode(&p) == nil {
					select {
					case progress <- prog{e.role, p}:
					default:
					}
				}
			case typeResult:
				var r resultMsg
				if err := m.Decode(&r); err != nil {
					done <- sideResult{err: e.wrap(err)}
					return
				}
				done <- sideResult{res: r}
				return
			default:
				done <- sideResult{err: e.errorf("protocol error: unexpected %q message during the test", m.Type)}
				return
			}
		}
	}
	srcDone, dstDone := make(chan sideResult, 1), make(chan sideResult, 1)
	// Once one side failed, the other is aborted and must answer promptly.
	var abortWait <-chan time.Time
	go collect(src, srcDone)
	go collect(dst, dstDone)

	var intervals []report.Interval
	var lastRx, lastTx, curTx uint64
	var lastSec float64
	var srcRes, dstRes *sideResult
	aborted := false
	for srcRes == nil || dstRes == nil {
		select {
		case <-drainAt.C:
			cl.setPhase(PhaseDrain)
		case p := <-progress:
			if p.p.Live {
				cl.live.sample(p.role, p.p, int(cl.runIndex.Load()), time.Since(windowStart))
				continue
			}
			if p.role == RoleSource {
				curTx = p.p.Bytes
				continue
			}
			iv := report.Interval{StartSec: lastSec, EndSec: p.p.Elapsed, RxBytes: p.p.Bytes - lastRx, TxBytes: curTx - lastTx}
			if d := iv.EndSec - iv.StartSec; d > 0 {
				iv.Gbps = float64(iv.RxBytes) * 8 / d / 1e9
			}
			intervals = append(intervals, iv)
			if cl.Progress != nil {
				cl.live.clear()
				report.WriteInterval(cl.Progress, iv)
			}
			lastSec, lastRx, lastTx = p.p.Elapsed, p.p.Bytes, curTx
		case r := <-srcDone:
			srcRes = &r
			if (r.err != nil || r.res.Error != "") && !aborted {
				dst.c.Send(typeAbort, nil)
				aborted = true
				abortWait = time.After(drainTimeout)
			}
		case r := <-dstDone:
			dstRes = &r
			if (r.err != nil || r.res.Error != "") && !aborted {
				src.c.Send(typeAbort, nil)
				aborted = true
				abortWait = time.After(drainTimeout)
			}
		case <-abortWait:
			if srcRes == nil {
				srcRes = &sideResult{err: src.errorf("no answer to abort")}
			}
			if dstRes == nil {
				dstRes = &sideResult{err: dst.errorf("no answer to abort")}
			}
		case <-ctx.Done():
			if !aborted {
				src.c.Send(typeAbort, nil)
				dst.c.Send(typeAbort, nil)
				aborted = true
			}
			// Servers answer an abort by closing the test without a result; give up on both.
			return nil, cl.interrupted(ctx)
		}
	}
	if err := firstCause(src, srcRes, dst, dstRes); err != nil {
		return nil, err
	}
	cl.note(out, RoleSource, srcRes.res.Notes)
	cl.note(out, RoleTarget, dstRes.res.Notes)
	if env {
		if srcRes.res.Env != nil {
			out.Env["source"] = srcRes.res.Env
		}
		if dstRes.res.Env != nil {
			out.Env["target"] = dstRes.res.Env
		}
	}
	run := &report.Run{
		Start:      srcRes.res.Start,
		Duration:   float64(srcRes.res.USec) / 1e6,
		Source:     srcRes.res.Side,
		Target:     dstRes.res.Side,
		Intervals:  intervals,
		SharedHost: shared,
	}
	run.Warnings = report.PlacementWarnings(run)
	for _, w := range run.Warnings {
		cl.note(out, Role("warning"), []string{w})
	}
	return run, nil
}

// firstCause picks the error that explains the failed test, not its consequences: a payload
// mismatch on the target (it is why the source's flows were reset), then a server that vanished,
// then a side that failed on its own, then a side the client aborted.
func firstCause(src *endpoint, sr *sideResult, dst *endpoint, dr *sideResult) error {
	switch {
	case dr.err == nil && dr.res.Kind == kindMismatch:
		return sideError(dst, dr)
	case sr.err != nil || sr.res.Kind == kindShutdown:
		return sideError(src, sr)
	case dr.err != nil || dr.res.Kind == kindShutdown:
		return sideError(dst, dr)
	case dr.res.Error != "" && dr.res.Kind != kindAborted:
		return sideError(dst, dr)
	case sr.res.Error != "" && sr.res.Kind != kindAborted:
		return sideError(src, sr)
	}
	if err := sideError(dst, dr); err != nil {
		return err
	}
	return sideError(src, sr)
}

func sideError(e *endpoint, r *sideResult) error {
	if r == nil {
		return nil
	}
	if r.err != nil {
		return r.err
	}
	if r.res.Error != "" {
		return fmt.Errorf("%s server %s: %s", e.role, e.addr, r.res.Error)
	}
	return nil
}

// Config is the report's view of the spec (the client adds Src and Dst).
func (s *TestSpec) Config() report.Config {
	c := report.Config{
		Flows: s.Flows, DurationSec: s.Duration.Seconds(), WriteSize: s.WriteSize, ReadSize: s.ReadSize,
		MsgZerocopy: s.MsgZerocopy, MsgTrunc: s.MsgTrunc, Validate: s.Validate.String(),
		PaceGbps: float64(s.PaceBytes) * 8 / 1e9, DevmemRX: s.DevmemRX, DevmemTX: s.DevmemTX,
		Ifname: s.Ifname, Queues: s.Queues, DmabufSize: s.DmabufSize,
	}
	if s.DevmemRX {
		c.RxMem = s.RxMem
	}
	if s.DevmemTX {
		c.TxMem = s.TxMem
	}
	return c
}
