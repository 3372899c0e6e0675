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

// restoreTimeout bounds result -> restored on each server: a devmem teardown unbinds the dma-buf
// and puts back header split, hds-thresh, RSS and the ntuple rules through ethtool, each read back
// to check it, and some drivers reset the NIC on such changes, which takes seconds. A server
// silent for longer is stuck, and the user is better told so than kept waiting.
const restoreTimeout = 30 * time.Second

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
	// restoreWait is how long each server has for its restored, restoreTimeout when zero; tests
	// shorten it.
	restoreWait time.Duration

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

// dial connects to the server at addr for role and shakes hands with it: the connect and
// handshake phases.
func (cl *Client) dial(ctx context.Context, role Role, addr string) (*endpoint, error) {
	e := &endpoint{role: role, addr: addr}
	nc, err := cl.connectTo(ctx, e)
	if err != nil {
		return nil, err
	}
	if err := cl.handshake(ctx, e, nc); err != nil {
		return nil, err
	}
	return e, nil
}

// connectTo resolves e's address and connects to it.
func (cl *Client) connectTo(ctx context.Context, e *endpoint) (net.Conn, error) {
	cl.setPhase(PhaseConnect)
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, cl.interrupted(ctx)
		}
		return nil, e.errorf("%w (is `ncdevmem server` running there and port %s open?)", err, portOf(e.addr))
	}
	return nc, nil
}

// handshake authenticates on nc and makes it e's control connection; nc is closed on failure.
func (cl *Client) handshake(ctx context.Context, e *endpoint, nc net.Conn) error {
	e.c = proto.NewConn(nc)
	cl.setPhase(PhaseHandshake)
	// The handshake reads and writes with deadlines but no context: closing the connection is
	// what ends it when the run is interrupted.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	_, err := proto.ClientHandshakeAs(e.c, cl.Key, cl.Software, cl.id)
	if !stop() || ctx.Err() != nil {
		nc.Close()
		return cl.interrupted(ctx)
	}
	if err != nil {
		nc.Close()
		return e.wrap(err)
	}
	return nil
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
// After each test that succeeded (and a dry run's prepare) Run waits until both servers restored
// what the test changed (restored): a server that could not, or did not say so within
// restoreTimeout, fails Run too, the test's run kept in the Outcome.
//
// Its phases: connect and handshake with both servers (dial), then per test prepare both sides,
// start the window, collect progress and results through the window and the drain (the wait for
// restored included), and wait between runs.
func (cl *Client) Run(ctx context.Context, spec TestSpec, runs, warmup int) (*Outcome, error) {
	if err := cl.begin(&spec, runs, warmup); err != nil {
		return nil, err
	}
	if cl.Live != nil {
		defer cl.live.clear()
	}
	out := &Outcome{Env: map[string]*report.Env{}}
	r, err := cl.connect(ctx, spec, out)
	if err != nil {
		return out, cl.runError(err)
	}
	defer r.close()
	for i := 0; i < warmup+runs; i++ {
		if err := r.between(ctx, i); err != nil {
			return out, err
		}
		measured := i >= warmup
		run, err := r.once(ctx, measured && i == warmup)
		if measured && run != nil {
			run.Index = i - warmup
			out.Runs = append(out.Runs, *run)
		}
		if err != nil {
			if ctx.Err() != nil {
				return out, cl.interrupted(ctx)
			}
			return out, cl.runError(err)
		}
		if spec.DryRun {
			return out, nil
		}
	}
	return out, nil
}

// begin checks Run's arguments and resets the client for warmup+runs tests of spec.
func (cl *Client) begin(spec *TestSpec, runs, warmup int) error {
	if err := spec.Check(); err != nil {
		return err
	}
	if runs < 1 || warmup < 0 {
		return fmt.Errorf("--runs %d --warmup %d: want at least one run and no negative warm-up", runs, warmup)
	}
	if cl.id == nil {
		cl.id = proto.NewNonce()[:16]
	}
	cl.runIndex.Store(0)
	cl.total = warmup + runs
	if cl.Live != nil {
		spec.Live = livePeriod
		cl.live.w, cl.live.runs, cl.live.window = cl.Live, warmup+runs, spec.Duration
	}
	return nil
}

// clientRun is one Run's connections to its two servers and what its tests gathered.
type clientRun struct {
	cl       *Client
	spec     TestSpec
	src, dst *endpoint
	dstIP    netip.Addr
	out      *Outcome
	stop     func() bool // stops closing the connections when ctx ends
}

// connect dials the target's server, then the source's.
func (cl *Client) connect(ctx context.Context, spec TestSpec, out *Outcome) (*clientRun, error) {
	dst, err := cl.dial(ctx, RoleTarget, cl.Dst)
	if err != nil {
		return nil, err
	}
	src, err := cl.dial(ctx, RoleSource, cl.Src)
	if err != nil {
		dst.c.Close()
		return nil, err
	}
	r := &clientRun{cl: cl, spec: spec, src: src, dst: dst, out: out}
	// Every wait on the control connections has a deadline but no context: closing them is what
	// wakes the client when it is interrupted. The servers see the connection close and end the
	// test at once (a server in this process is stopped through ctx as well).
	r.stop = context.AfterFunc(ctx, func() {
		src.c.Close()
		dst.c.Close()
	})
	dstIP, err := netip.ParseAddrPort(dst.c.NetConn().RemoteAddr().String())
	if err != nil {
		r.close()
		return nil, dst.errorf("%w", err)
	}
	r.dstIP = dstIP.Addr().Unmap()
	return r, nil
}

func (r *clientRun) close() {
	r.stop()
	r.src.c.Close()
	r.dst.c.Close()
}

// between is the pause before test i (0-based): none before the first.
func (r *clientRun) between(ctx context.Context, i int) error {
	r.cl.runIndex.Store(int64(i))
	if i == 0 {
		return nil
	}
	r.cl.setPhase(PhaseBetween)
	if testHold(ctx, PhaseBetween) != nil || ctx.Err() != nil {
		return r.cl.interrupted(ctx)
	}
	return nil
}

// once runs one test: prepare, start, window and drain, then waits for both servers' restored;
// env asks the servers for their environment. A dry run ends after prepare and restored with no
// run. A run whose servers failed to restore afterwards is returned with that error: the window
// went well, its numbers stand.
func (r *clientRun) once(ctx context.Context, env bool) (*report.Run, error) {
	tr, sr, err := r.prepare(env)
	if err != nil {
		return nil, err
	}
	if r.spec.DryRun {
		return nil, r.restored()
	}
	shared := tr.BootID != "" && tr.BootID == sr.BootID
	if err := r.start(&startMsg{SharedHost: shared}); err != nil {
		return nil, err
	}
	c := r.newCollector()
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	run := r.result(c, env, shared)
	r.cl.setPhase(PhaseDrain)
	return run, r.restored()
}

// restored waits, at most restoreTimeout, for both servers' restored after a test that succeeded
// (or a dry run's prepare), so the next test's prepare goes out only once both NICs are back. A
// side whose teardown failed or that stayed silent is the error (both sides, on one line, when both
// were). Like every wait on the control connections, it ends when ctx does: the connections close.
//
// Failed tests skip this wait on purpose: their failure ends the run already, the servers restore
// and log on their own, and a wait of up to restoreTimeout would only delay the exit, or hold a
// run that should stop at once (an abort, a server that vanished).
func (r *clientRun) restored() error {
	d := r.cl.restoreWait
	if d == 0 {
		d = restoreTimeout
	}
	srcErr, dstErr := make(chan error, 1), make(chan error, 1)
	go func() { srcErr <- r.src.restored(d, r.spec.Ifname) }()
	go func() { dstErr <- r.dst.restored(d, r.spec.Ifname) }()
	s, t := <-srcErr, <-dstErr
	switch {
	case s != nil && t != nil:
		return fmt.Errorf("%w; %w", t, s)
	case t != nil:
		return t
	}
	return s
}

// restored reads e's restored within d and turns a failed or missing one into an error naming e
// (ifname is the test's interface, for the advice).
func (e *endpoint) restored(d time.Duration, ifname string) error {
	var m restoredMsg
	err := e.c.ExpectWithin(d, typeRestored, &m)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if ifname == "" {
			ifname = "IF"
		}
		return e.errorf("no word within %v that the server restored the NIC after the test (is it stuck tearing down? see its log; if it stays so, run `ncdevmem cleanup -f %s` on that host)", d, ifname)
	case err != nil:
		return e.wrap(err)
	case m.Error != "":
		return e.errorf("restoring the NIC after the test failed: %s", m.Error)
	}
	return nil
}

// prepare asks the target, then the source (told where the target listens) to set up, and
// returns their ready messages.
func (r *clientRun) prepare(env bool) (tr, sr readyMsg, err error) {
	src, dst := r.src, r.dst
	r.cl.setPhase(PhaseSetup)
	if err := dst.c.Send(typePrepare, &prepareMsg{Role: RoleTarget, Spec: r.spec, Env: env}); err != nil {
		return tr, sr, dst.wrap(err)
	}
	if err := dst.c.ExpectWithin(setupTimeout, typeReady, &tr); err != nil {
		return tr, sr, dst.wrap(err)
	}
	r.cl.note(r.out, RoleTarget, tr.Notes)
	target := netip.AddrPortFrom(r.dstIP, uint16(tr.DataPort))
	if err := src.c.Send(typePrepare, &prepareMsg{Role: RoleSource, Spec: r.spec, Env: env, Target: target.String(), Session: tr.Session, TargetCPUs: tr.NumCPU, TargetBoot: tr.BootID, SrcPorts: tr.SrcPorts}); err != nil {
		dst.c.Send(typeAbort, nil)
		return tr, sr, src.wrap(err)
	}
	if err := src.c.ExpectWithin(setupTimeout, typeReady, &sr); err != nil {
		dst.c.Send(typeAbort, nil)
		return tr, sr, src.wrap(err)
	}
	r.cl.note(r.out, RoleSource, sr.Notes)
	return tr, sr, nil
}

// start opens the target's window, then the source's; a side that fails has the other aborted.
func (r *clientRun) start(st *startMsg) error {
	src, dst := r.src, r.dst
	r.cl.setPhase(PhaseWindow)
	if err := dst.c.Send(typeStart, st); err != nil {
		src.c.Send(typeAbort, nil)
		return dst.wrap(err)
	}
	if err := dst.c.Expect(typeStarted, nil); err != nil {
		src.c.Send(typeAbort, nil)
		return dst.wrap(err)
	}
	if err := src.c.Send(typeStart, st); err != nil {
		dst.c.Send(typeAbort, nil)
		return src.wrap(err)
	}
	return nil
}

// result turns both sides' results into the run, after their notes and environment.
func (r *clientRun) result(c *collector, env, shared bool) *report.Run {
	cl, out := r.cl, r.out
	cl.note(out, RoleSource, c.srcRes.res.Notes)
	cl.note(out, RoleTarget, c.dstRes.res.Notes)
	if env {
		if c.srcRes.res.Env != nil {
			out.Env["source"] = c.srcRes.res.Env
		}
		if c.dstRes.res.Env != nil {
			out.Env["target"] = c.dstRes.res.Env
		}
	}
	run := &report.Run{
		Start:      c.srcRes.res.Start,
		Duration:   float64(c.srcRes.res.USec) / 1e6,
		Source:     c.srcRes.res.Side,
		Target:     c.dstRes.res.Side,
		Intervals:  c.intervals,
		SharedHost: shared,
	}
	run.Warnings = report.PlacementWarnings(run)
	for _, w := range run.Warnings {
		cl.note(out, Role("warning"), []string{w})
	}
	return run
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

// sideProgress is one progress message of one side.
type sideProgress struct {
	role Role
	p    progressMsg
}

// collector gathers one test's progress and both sides' results on the client, through the
// window and the drain.
type collector struct {
	cl          *Client
	src, dst    *endpoint
	window      time.Duration
	windowStart time.Time
	progress    chan sideProgress

	intervals             []report.Interval
	lastRx, lastTx, curTx uint64
	lastSec               float64

	srcRes, dstRes *sideResult
	aborted        bool
	abortWait      <-chan time.Time // once one side failed, the other must answer its abort by then
}

func (r *clientRun) newCollector() *collector {
	return &collector{cl: r.cl, src: r.src, dst: r.dst, window: r.spec.Duration, windowStart: time.Now(),
		progress: make(chan sideProgress, 16)}
}

// read reads e's messages until its result: progress goes to c.progress (dropped when it is
// full), the result or the failure to done.
func (c *collector) read(e *endpoint, done chan<- sideResult) {
	deadline := time.Now().Add(c.window + drainLimit + 30*time.Second)
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
				case c.progress <- sideProgress{e.role, p}:
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

// wait collects until both sides answered (the drain phase starts when the window's time is up)
// and returns the error that explains a failed test, or the interruption when ctx ends.
func (c *collector) wait(ctx context.Context) error {
	drainAt := time.NewTimer(c.window)
	defer drainAt.Stop()
	defer c.cl.live.clear()
	srcDone, dstDone := make(chan sideResult, 1), make(chan sideResult, 1)
	go c.read(c.src, srcDone)
	go c.read(c.dst, dstDone)
	for c.srcRes == nil || c.dstRes == nil {
		select {
		case <-drainAt.C:
			c.cl.setPhase(PhaseDrain)
		case p := <-c.progress:
			c.sample(p)
		case r := <-srcDone:
			c.srcRes = &r
			c.sideEnded(&r, c.dst)
		case r := <-dstDone:
			c.dstRes = &r
			c.sideEnded(&r, c.src)
		case <-c.abortWait:
			if c.srcRes == nil {
				c.srcRes = &sideResult{err: c.src.errorf("no answer to abort")}
			}
			if c.dstRes == nil {
				c.dstRes = &sideResult{err: c.dst.errorf("no answer to abort")}
			}
		case <-ctx.Done():
			if !c.aborted {
				c.src.c.Send(typeAbort, nil)
				c.dst.c.Send(typeAbort, nil)
				c.aborted = true
			}
			// Servers answer an abort by closing the test without a result; give up on both.
			return c.cl.interrupted(ctx)
		}
	}
	return firstCause(c.src, c.srcRes, c.dst, c.dstRes)
}

// sideEnded takes one side's answer: when it failed, the other side is aborted.
func (c *collector) sideEnded(r *sideResult, other *endpoint) {
	if (r.err != nil || r.res.Error != "") && !c.aborted {
		other.c.Send(typeAbort, nil)
		c.aborted = true
		c.abortWait = time.After(drainTimeout)
	}
}

// sample takes one progress message: a live sample redraws the live line; the source's bytes
// wait for the target's next interval, which closes an interval and prints it.
func (c *collector) sample(p sideProgress) {
	if p.p.Live {
		c.cl.live.sample(p.role, p.p, int(c.cl.runIndex.Load()), time.Since(c.windowStart))
		return
	}
	if p.role == RoleSource {
		c.curTx = p.p.Bytes
		return
	}
	iv := report.Interval{StartSec: c.lastSec, EndSec: p.p.Elapsed, RxBytes: p.p.Bytes - c.lastRx, TxBytes: c.curTx - c.lastTx}
	if d := iv.EndSec - iv.StartSec; d > 0 {
		iv.Gbps = float64(iv.RxBytes) * 8 / d / 1e9
	}
	c.intervals = append(c.intervals, iv)
	if c.cl.Progress != nil {
		c.cl.live.clear()
		report.WriteInterval(c.cl.Progress, iv)
	}
	c.lastSec, c.lastRx, c.lastTx = p.p.Elapsed, p.p.Bytes, c.curTx
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
