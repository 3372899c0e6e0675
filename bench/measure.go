// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/sockcall"
	"github.com/devmemtcp/ncdevmem/pattern"
	"github.com/devmemtcp/ncdevmem/proto"
	"github.com/devmemtcp/ncdevmem/report"
	"github.com/devmemtcp/ncdevmem/rx"
	"github.com/devmemtcp/ncdevmem/stats"
	"github.com/devmemtcp/ncdevmem/tx"
	"golang.org/x/sys/unix"
)

// measurement is one role's measurement window on a server. Its phases run in this order, each a
// method that tests drive with fake engines:
//
//	startWorkers  start and pin one worker per flow; they wait for the window to open
//	watch         watch the control connection: abort or a vanished client ends the window
//	open          sample the counters and open the window (the workers start)
//	loop          run until the window ends, a flow fails or the test is stopped
//	collect       sample again and collect the side report
//	drain         the target reads until the source's EOF
//	finish        stop the workers, classify the failure and send the result
type measurement struct {
	s       *session
	spec    *TestSpec
	role    Role
	flows   Flows
	fs      []*flowState
	env     *report.Env
	allowed []int

	startCh  chan struct{}   // closed when the workers may run
	started  bool            // startCh is closed
	finished chan *flowState // each worker once its engine returned
	ended    int             // workers taken from finished

	ctx          context.Context // ends on abort, a vanished client or the server stopping
	cancel       context.CancelCauseFunc
	stopWatching func()

	cpu0      []stats.CPUTimes
	start     time.Time
	windowEnd *time.Timer // the source's stop flag at the window's end
	usec      uint64
	lastTick  time.Duration
	failure   error

	// drainIdle and drainMax are drainTimeout and drainLimit, shorter in tests.
	drainIdle, drainMax time.Duration
}

// measure runs the window: pin workers, sample, run, sample, stop, report.
func (s *session) measure(ctx context.Context, flows Flows, fs []*flowState, env *report.Env) error {
	if s.inWindow != nil {
		s.inWindow.Store(true)
		defer s.inWindow.Store(false)
	}
	m := &measurement{s: s, spec: &s.p.Spec, role: s.p.Role, flows: flows, fs: fs, env: env, allowed: allowedCPUs()}
	if err := m.startWorkers(); err != nil {
		return s.fail(err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	m.ctx, m.cancel = ctx, cancel
	m.stopWatching = m.watch()
	if err := m.open(); err != nil {
		m.callOff()
		m.stopWatching()
		return s.fail(err)
	}
	defer m.stopTimers()
	m.loop()
	side := m.collect()
	m.drain()
	return m.finish(side)
}

// startWorkers places each flow's worker (kperf's rule, or the lists), starts it on its own locked
// thread, pinned, on a blocking socket when its engine can use one, and waits until every worker
// is ready. A worker that cannot start calls the others off and is the error.
func (m *measurement) startWorkers() error {
	ncpu := numCPU()
	for i, f := range m.fs {
		f.netCPU = stats.IncomingCPU(f.rc)
		f.appCPU = appCPU(m.spec, m.role, i, f.netCPU, ncpu, m.s.shared, m.allowed)
		if f.appCPU >= ncpu {
			return fmt.Errorf("--cpu-src/--cpu-dst: CPU %d does not exist on %s (it has %d)", f.appCPU, hostname(), ncpu)
		}
		f.done = make(chan struct{})
		if f.rxe != nil {
			f.brx, _ = f.rxe.(rx.Blocking)
		} else {
			f.btx, _ = f.txe.(tx.Blocking)
		}
	}
	m.startCh = make(chan struct{})
	m.finished = make(chan *flowState, len(m.fs))
	ready := make(chan error, len(m.fs))
	for _, f := range m.fs {
		go m.work(f, ready)
	}
	var err error
	for range m.fs {
		if e := <-ready; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		m.callOff()
	}
	return err
}

// work is flow f's worker: it reports on ready whether it could start, waits for the window and
// runs the engine.
func (m *measurement) work(f *flowState, ready chan<- error) {
	defer close(f.done)
	// The thread stays locked until the goroutine ends, so Go retires it with its affinity rather
	// than handing a pinned thread to other goroutines.
	runtime.LockOSThread()
	f.tid = unix.Gettid()
	if err := f.prepareThread(); err != nil {
		f.err = err
		ready <- err
		return
	}
	ready <- nil
	<-m.startCh
	f.run()
	m.finished <- f
}

// prepareThread pins the worker's thread and, for a blocking engine, makes the socket blocking:
// read(2)/write(2) sleep in the kernel on this thread, and SO_RCVTIMEO/SO_SNDTIMEO bring them
// back to look at f.stop.
func (f *flowState) prepareThread() error {
	if f.appCPU >= 0 {
		if err := pin(f.appCPU); err != nil {
			return err
		}
	}
	if f.brx == nil && f.btx == nil {
		return nil
	}
	var serr error
	if err := f.rc.Control(func(fd uintptr) { serr = sockcall.SetBlocking(int(fd), sockcall.StopPoll) }); err != nil || serr != nil {
		return fmt.Errorf("flow %d: blocking socket: %w", f.id, errors.Join(err, serr))
	}
	return nil
}

// run runs the flow's engine until it returns; f.err is what it returned.
func (f *flowState) run() {
	switch {
	case f.brx != nil:
		if err := f.rc.Control(func(fd uintptr) { f.err = f.brx.ReceiveBlocking(int(fd), &f.rst, &f.stop) }); err != nil {
			f.err = err
		}
	case f.rxe != nil:
		f.err = f.rxe.Receive(f.rc, &f.rst)
	default:
		if f.btx != nil {
			if err := f.rc.Control(func(fd uintptr) { f.err = f.btx.SendBlocking(int(fd), &f.tst, &f.stop) }); err != nil {
				f.err = err
			}
		} else {
			f.err = f.txe.Send(f.rc, &f.tst)
		}
		if r, ok := f.txe.(interface {
			Reap(syscall.RawConn, *tx.Stats) error
		}); ok {
			r.Reap(f.rc, &f.tst)
		}
	}
}

// callOff lets the workers go without a window and stops them.
func (m *measurement) callOff() {
	if !m.started {
		close(m.startCh)
		m.started = true
	}
	stopFlows(m.fs)
}

// watch reads the control connection during the window: abort or a vanished client cancels
// m.ctx. The returned function stops the watch and waits for it.
func (m *measurement) watch() (stop func()) {
	nc := m.s.c.NetConn()
	readingDone, readerExited := make(chan struct{}), make(chan struct{})
	// The read's deadline is set here, before the reader starts, so the one stop sets is the last.
	nc.SetReadDeadline(time.Now().Add(m.spec.Duration + time.Hour))
	go func() {
		defer close(readerExited)
		// One read: the client sends nothing but abort during a test, so anything else (an error
		// message too) is the end of the session.
		msg, err := proto.ReadFrame(nc)
		select {
		case <-readingDone:
			return
		default:
		}
		if err != nil || msg.Type != typeAbort {
			m.s.fatal.Store(true)
		}
		m.cancel(errAborted)
	}()
	return func() {
		close(readingDone)
		nc.SetReadDeadline(time.Now())
		<-readerExited
		nc.SetReadDeadline(time.Time{})
	}
}

// open samples the CPU times and the datapath's counters and opens the window: the workers start
// and the source's flows get the window's end; the target tells the client it started.
func (m *measurement) open() error {
	var err error
	if m.cpu0, err = stats.ReadCPUTimes(); err != nil {
		return err
	}
	if err := m.flows.WindowStart(); err != nil {
		return err
	}
	m.start = time.Now()
	if m.role == RoleSource {
		// The window's end: the write deadline for netpoller engines, the stop flag for blocking ones.
		for _, f := range m.fs {
			f.conn.SetWriteDeadline(m.start.Add(m.spec.Duration))
		}
		m.windowEnd = time.AfterFunc(m.spec.Duration, func() {
			for _, f := range m.fs {
				f.stop.Set()
			}
		})
	}
	close(m.startCh)
	m.started = true
	if m.role == RoleTarget {
		// The client starts the source only after this, so the source starts after the target's
		// window opened and stops after it closed: the target never sees an EOF inside its window.
		m.sendOrAbort(typeStarted, nil)
	}
	return nil
}

func (m *measurement) stopTimers() {
	if m.windowEnd != nil {
		m.windowEnd.Stop()
	}
}

// sendOrAbort sends on the control connection; a connection that fails ends the test.
func (m *measurement) sendOrAbort(typ string, body any) {
	if err := m.s.c.Send(typ, body); err != nil {
		m.s.fatal.Store(true)
		m.cancel(errAborted)
	}
}

// stopCause is the failure of a window m.ctx ended: the client's abort or the server stopping.
func (m *measurement) stopCause() error {
	if errors.Is(context.Cause(m.ctx), errAborted) {
		return errAborted
	}
	return errShutdown
}

// loop runs the window until its end, a flow's end or m.ctx's end, sending progress on the way
// and sampling where the workers and softirqs run. A failure is left in m.failure.
func (m *measurement) loop() {
	end := time.NewTimer(m.spec.Duration)
	defer end.Stop()
	var tick, live <-chan time.Time
	if m.spec.Interval > 0 {
		t := time.NewTicker(m.spec.Interval)
		defer t.Stop()
		tick = t.C
	}
	if m.spec.Live > 0 {
		t := time.NewTicker(m.spec.Live)
		defer t.Stop()
		live = t.C
	}
	liveCPU := m.cpu0
	// Each sample reads /proc and makes a syscall per flow: space them out for many flows.
	sampler := time.NewTicker(placementSample * time.Duration(max(1, len(m.fs)/32)))
	defer sampler.Stop()
	for {
		select {
		case <-end.C:
			return
		case <-sampler.C:
			for _, f := range m.fs {
				f.sample()
			}
		case <-tick:
			m.lastTick = time.Since(m.start)
			m.sendOrAbort(typeProgress, &progressMsg{Elapsed: m.lastTick.Seconds(), Bytes: flowBytes(m.fs)})
		case <-live:
			now, err := stats.ReadCPUTimes()
			idle := -1.0
			if err == nil {
				idle = appIdle(liveCPU, now, m.fs, m.allowed)
				liveCPU = now
			}
			m.sendOrAbort(typeProgress, &progressMsg{Live: true, Elapsed: time.Since(m.start).Seconds(), Bytes: flowBytes(m.fs), AppIdle: idle})
		case <-m.ctx.Done():
			m.failure = m.stopCause()
			return
		case f := <-m.finished:
			if m.flowEnded(f) {
				return
			}
		}
	}
}

// flowEnded takes flow f's end during the window and tells whether the loop is over. A source's
// deadline or stop flag is the window's own end, seen a hair before the timer (the loop goes on
// until every source flow saw it); the source's EOF after the window, seen by the target before
// its timer, is the window's end too. Anything else is the window's failure.
func (m *measurement) flowEnded(f *flowState) bool {
	m.ended++
	if m.role == RoleSource && errors.Is(f.err, os.ErrDeadlineExceeded) {
		return m.ended == len(m.fs)
	}
	if f.err == nil && time.Since(m.start) >= m.spec.Duration {
		return true
	}
	m.failure = flowFailure(m.role, f, time.Since(m.start), m.spec.Duration)
	return true
}

// collect closes the window's books: CPU times, the window's length, the last placement sample,
// final byte counts (the sources are waited for), the last partial interval and the datapath's
// counters; it returns the side report.
func (m *measurement) collect() report.Side {
	cpu1, err := stats.ReadCPUTimes()
	if err != nil && m.failure == nil {
		m.failure = err
	}
	m.usec = uint64(time.Since(m.start).Microseconds())
	for _, f := range m.fs {
		f.sample()
	}
	if m.role == RoleSource {
		// Sources stop at their deadline; wait so the byte counts are final.
		if m.failure != nil {
			stopFlows(m.fs)
		}
		for _, f := range m.fs {
			<-f.done
		}
	}
	bytes := make([]uint64, len(m.fs))
	var total uint64
	for i, f := range m.fs {
		bytes[i] = f.bytes()
		total += bytes[i]
	}
	// Close the last partial interval at the window's end, so the intervals cover the window.
	if m.spec.Interval > 0 && m.failure == nil && !m.s.fatal.Load() {
		if w := time.Duration(m.usec) * time.Microsecond; w-m.lastTick > m.spec.Interval/10 {
			if err := m.s.c.Send(typeProgress, &progressMsg{Elapsed: w.Seconds(), Bytes: total}); err != nil {
				m.s.fatal.Store(true)
			}
		}
	}
	if err := m.flows.WindowEnd(); err != nil && m.failure == nil {
		m.failure = err
	}
	side := report.Side{Host: hostname(), Devmem: m.flows.Report()}
	for i, f := range m.fs {
		side.Flows = append(side.Flows, m.flowReport(f, bytes[i]))
	}
	if cpu1 != nil {
		side.CPUs = stats.CPUUsage(m.cpu0, cpu1, stats.Roles(side.Flows))
	}
	return side
}

// flowReport is flow f's line of the side report, with b bytes in the window.
func (m *measurement) flowReport(f *flowState, b uint64) report.Flow {
	// The net CPU the report shows is where the softirq ran at the window's end; the one at its
	// start (from the connection's handshake) placed the worker.
	net := stats.IncomingCPU(f.rc)
	if net < 0 {
		net = f.netCPU
	}
	fl := report.Flow{ID: f.id, Dir: "rx", Bytes: b, USec: m.usec, Gbps: report.Gbps(b, m.usec), NetCPU: net, AppCPU: f.appCPU,
		ThreadCPUs: f.threadCPUs, SoftirqCPUs: f.softirqCPUs}
	if m.role == RoleSource {
		fl.Dir = "tx"
		if m.spec.MsgZerocopy || m.spec.DevmemTX {
			fl.ZC = &report.ZC{Sends: f.tst.ZCSends.Load(), Completions: f.tst.ZCCompleted.Load(), Copied: f.tst.ZCCopied.Load()}
		}
	}
	if ti, err := stats.TCPInfo(f.rc); err == nil {
		fl.TCP = ti
	}
	return fl
}

// drain is the target's tail: it reads until the source's EOF, so the source never blocks on a
// full window. It goes on while bytes keep arriving, up to drainLimit after the window; drainTimeout
// without a byte ends it too. A flow still open then fails, saying which of the two ended it.
func (m *measurement) drain() {
	if m.role != RoleTarget || m.failure != nil {
		return
	}
	testHold(m.ctx, PhaseDrain)
	idle, limit := cmp.Or(m.drainIdle, drainTimeout), cmp.Or(m.drainMax, drainLimit)
	start := time.Now()
	last, lastAt := flowBytes(m.fs), start
	// end is when the drain gives up as things stand, and why.
	end := func() (time.Time, error) {
		if stall := lastAt.Add(idle); stall.Before(start.Add(limit)) {
			return stall, fmt.Errorf("no byte and no end of stream for %v (%w)", idle, os.ErrDeadlineExceeded)
		}
		return start.Add(limit), fmt.Errorf("still sending %v after the window, the most a drain may take (%w)", limit, os.ErrDeadlineExceeded)
	}
	deadline, _ := end()
	for _, f := range m.fs {
		f.conn.SetReadDeadline(deadline)
	}
	// Each tick (a second; less in tests) that saw bytes moves the read deadline; the first tick
	// past it also stops the blocking engines, which do not see socket deadlines.
	tick := time.NewTicker(min(time.Second, idle/4))
	defer tick.Stop()
	stopped := false
	for m.ended < len(m.fs) {
		select {
		case f := <-m.finished:
			m.ended++
			if f.err != nil && m.failure == nil {
				if errors.Is(f.err, os.ErrDeadlineExceeded) {
					_, why := end()
					f.err = why
				}
				m.failure = flowFailure(m.role, f, time.Since(m.start), m.spec.Duration)
			}
		case now := <-tick.C:
			if b := flowBytes(m.fs); b != last && !stopped {
				last, lastAt = b, now
				if d, _ := end(); d != deadline {
					deadline = d
					for _, f := range m.fs {
						f.conn.SetReadDeadline(deadline)
					}
				}
			}
			if !stopped && !now.Before(deadline) {
				stopped = true
				for _, f := range m.fs {
					f.stop.Set()
				}
			}
		case <-m.ctx.Done():
			m.failure = m.stopCause()
			return
		}
	}
}

// finish stops the workers and the watch, classifies the failure and sends the result (unless
// the control connection is gone); it returns the failure.
func (m *measurement) finish(side report.Side) error {
	stopFlows(m.fs)
	if m.role == RoleSource && m.failure == nil {
		for _, f := range m.fs {
			if f.err != nil && !errors.Is(f.err, os.ErrDeadlineExceeded) {
				m.failure = flowFailure(m.role, f, time.Since(m.start), m.spec.Duration)
				break
			}
		}
	}
	m.stopWatching()
	if m.s.fatal.Load() {
		if m.failure == nil {
			m.failure = errAborted
		}
		return m.failure
	}
	res := resultMsg{Side: side, Start: m.start, USec: m.usec, Env: m.env, Notes: m.s.takeNotes()}
	if m.failure != nil {
		res.Error, res.Kind = m.failure.Error(), failureKind(m.failure)
	}
	if err := m.s.c.Send(typeResult, &res); err != nil {
		m.s.fatal.Store(true)
		return err
	}
	return m.failure
}

// failureKind classifies a window's failure for the client: a payload mismatch, the client's
// abort, the server stopping, or "" for any other failure.
func failureKind(err error) string {
	var me *pattern.MismatchError
	switch {
	case errors.As(err, &me):
		return kindMismatch
	case errors.Is(err, errAborted):
		return kindAborted
	case errors.Is(err, errShutdown):
		return kindShutdown
	}
	return ""
}
