// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/sockcall"
	"github.com/devmemtcp/ncdevmem/pattern"
	"github.com/devmemtcp/ncdevmem/proto"
	"github.com/devmemtcp/ncdevmem/rx"
	"github.com/devmemtcp/ncdevmem/tx"
)

// fakeEngine is a flow's engine for the window's phase tests: it counts bytes, then runs run.
type fakeEngine struct {
	bytes uint64
	run   func(rc syscall.RawConn) error
}

func (e *fakeEngine) Receive(rc syscall.RawConn, st *rx.Stats) error {
	st.Bytes.Add(e.bytes)
	return e.run(rc)
}

func (e *fakeEngine) Send(rc syscall.RawConn, st *tx.Stats) error {
	st.Bytes.Add(e.bytes)
	return e.run(rc)
}

// blockingSender is a source engine on a blocking socket: it counts bytes and ends when the
// window's stop flag is set, as tx.Host.SendBlocking does.
type blockingSender struct{ fakeEngine }

func (e *blockingSender) SendBlocking(_ int, st *tx.Stats, stop *sockcall.Stop) error {
	st.Bytes.Add(e.bytes)
	for !stop.Done() {
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("send: %w", os.ErrDeadlineExceeded)
}

// untilStopped waits for the connection's deadline (the window's stop signal) without reading.
func untilStopped(rc syscall.RawConn) error { return rc.Read(func(uintptr) bool { return false }) }

// returns makes an engine that returns err at once.
func returns(err error) func(syscall.RawConn) error {
	return func(syscall.RawConn) error { return err }
}

// tcpPair is a connected loopback pair; both ends close when the test ends.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err = net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	if b, err = ln.AcceptTCP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// testMeasurement is a window of role over one loopback flow per engine, its control connection's
// client end (to read what the window sends, or to abort), and a context the test may cancel.
func testMeasurement(t *testing.T, role Role, spec TestSpec, engines ...rx.Engine) (*measurement, *proto.Conn) {
	t.Helper()
	cl, sv := tcpPair(t)
	s := &session{srv: &Server{}, c: proto.NewConn(sv), peer: "test", p: prepareMsg{Role: role, Spec: spec}}
	m := &measurement{s: s, spec: &s.p.Spec, role: role, flows: &hostFlows{spec: &s.p.Spec}, allowed: allowedCPUs()}
	for i, e := range engines {
		c, _ := tcpPair(t)
		f := &flowState{id: i, conn: c}
		var err error
		if f.rc, err = c.SyscallConn(); err != nil {
			t.Fatal(err)
		}
		if role == RoleTarget {
			f.rxe = e
		} else {
			f.txe = e.(tx.Engine)
		}
		m.fs = append(m.fs, f)
	}
	m.ctx, m.cancel = context.WithCancelCause(context.Background())
	m.stopWatching = func() {}
	t.Cleanup(func() { m.cancel(nil) })
	return m, proto.NewConn(cl)
}

// begin starts the workers and opens the window.
func (m *measurement) begin(t *testing.T) {
	t.Helper()
	if err := m.startWorkers(); err != nil {
		t.Fatal(err)
	}
	if err := m.open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.stopTimers)
}

// runPhases runs the phases from the window's loop on, as session.measure does.
func (m *measurement) runPhases() error {
	m.loop()
	side := m.collect()
	m.drain()
	return m.finish(side)
}

func TestMeasureStartWorkers(t *testing.T) {
	spec := quickSpec(2, time.Second)
	m, _ := testMeasurement(t, RoleTarget, spec, &fakeEngine{bytes: 7, run: untilStopped}, &fakeEngine{bytes: 7, run: untilStopped})
	if err := m.startWorkers(); err != nil {
		t.Fatal(err)
	}
	for _, f := range m.fs {
		if f.tid <= 0 || f.appCPU != -1 || f.done == nil {
			t.Errorf("flow %d: thread %d, app CPU %d (want a thread, unpinned under --no-pin)", f.id, f.tid, f.appCPU)
		}
	}
	// The workers wait for the window: no engine has run.
	if b := flowBytes(m.fs); b != 0 {
		t.Errorf("engines ran before the window opened: %d bytes", b)
	}
	m.callOff()
	for _, f := range m.fs {
		<-f.done
	}

	// A CPU list naming a CPU this host lacks fails before any worker starts.
	spec.NoPin, spec.CPUsDst = false, []int{numCPU() + 3}
	m, _ = testMeasurement(t, RoleTarget, spec, &fakeEngine{run: untilStopped})
	if err := m.startWorkers(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("CPU %d does not exist", numCPU()+3)) {
		t.Errorf("a missing CPU: %v", err)
	}
}

func TestMeasureWatch(t *testing.T) {
	// The client's abort ends the window; the session stays usable.
	m, client := testMeasurement(t, RoleTarget, quickSpec(1, time.Minute))
	stop := m.watch()
	client.Send(typeAbort, nil)
	<-m.ctx.Done()
	stop()
	if !errors.Is(context.Cause(m.ctx), errAborted) || m.s.fatal.Load() || m.stopCause() != errAborted {
		t.Errorf("abort: cause %v, fatal %v", context.Cause(m.ctx), m.s.fatal.Load())
	}
	// A vanished client ends it too, and the session with it.
	m, client = testMeasurement(t, RoleTarget, quickSpec(1, time.Minute))
	stop = m.watch()
	client.Close()
	<-m.ctx.Done()
	stop()
	if !m.s.fatal.Load() {
		t.Error("a closed control connection left the session usable")
	}
	// Stopping the watch ends it without ending the window, and leaves no deadline behind.
	m, client = testMeasurement(t, RoleTarget, quickSpec(1, time.Minute))
	m.watch()()
	if m.ctx.Err() != nil || m.s.fatal.Load() {
		t.Errorf("a stopped watch ended the window: %v, fatal %v", context.Cause(m.ctx), m.s.fatal.Load())
	}
	client.Send(typeAbort, nil)
	if msg, err := m.s.c.RecvWithin(5 * time.Second); err != nil || msg.Type != typeAbort {
		t.Errorf("the control connection after the watch: %v, %v", msg.Type, err)
	}
}

func TestMeasureLoop(t *testing.T) {
	mismatch := &pattern.MismatchError{Flow: 0, Offset: 9}
	for _, tc := range []struct {
		name   string
		role   Role
		run    func(syscall.RawConn) error
		cancel error
		want   string // "" for a clean end
		within time.Duration
	}{
		{name: "target window ends", role: RoleTarget, run: untilStopped, within: 5 * time.Second},
		{name: "source window ends", role: RoleSource, run: untilStopped, within: 5 * time.Second},
		{name: "mismatch", role: RoleTarget, run: returns(mismatch), want: "payload mismatch at stream offset 9", within: time.Second},
		{name: "early EOF", role: RoleTarget, run: returns(nil), want: "the source closed the connection", within: time.Second},
		{name: "reset", role: RoleSource, run: returns(syscall.ECONNRESET), want: "the target closed the flow", within: time.Second},
		{name: "aborted", role: RoleTarget, run: untilStopped, cancel: errAborted, want: errAborted.Error(), within: time.Second},
		{name: "shutdown", role: RoleTarget, run: untilStopped, cancel: context.Canceled, want: errShutdown.Error(), within: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := 300 * time.Millisecond
			if tc.cancel != nil || tc.want != "" {
				d = time.Minute
			}
			m, _ := testMeasurement(t, tc.role, quickSpec(1, d), &fakeEngine{bytes: 1, run: tc.run})
			if err := m.startWorkers(); err != nil {
				t.Fatal(err)
			}
			defer m.callOff()
			if err := m.open(); err != nil {
				t.Fatal(err)
			}
			defer m.stopTimers()
			if tc.cancel != nil {
				m.cancel(tc.cancel)
			}
			t0 := time.Now()
			m.loop()
			if took := time.Since(t0); took > tc.within {
				t.Errorf("the loop took %v", took)
			}
			if (tc.want == "") != (m.failure == nil) || (m.failure != nil && !strings.Contains(m.failure.Error(), tc.want)) {
				t.Errorf("failure %v, want %q", m.failure, tc.want)
			}
		})
	}
}

// TestMeasureProgress: intervals go to the client during the window, and the last partial one
// at its end, so they cover the window.
func TestMeasureProgress(t *testing.T) {
	spec := quickSpec(1, 500*time.Millisecond)
	spec.Interval = 200 * time.Millisecond
	// The source's EOF comes after the window (measured from its start, whatever the timers do).
	eof := make(chan struct{})
	m, client := testMeasurement(t, RoleTarget, spec, &fakeEngine{bytes: 1000, run: func(syscall.RawConn) error { <-eof; return nil }})
	m.begin(t)
	time.AfterFunc(spec.Duration+100*time.Millisecond, func() { close(eof) })
	errc := make(chan error, 1)
	go func() { errc <- m.runPhases() }()
	var last progressMsg
	var res resultMsg
	n := 0
	for res.USec == 0 {
		msg, err := client.RecvWithin(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		switch msg.Type {
		case typeProgress:
			msg.Decode(&last)
			n++
		case typeResult:
			msg.Decode(&res)
		}
	}
	if err := <-errc; err != nil || res.Error != "" {
		t.Fatalf("window: %v, result error %q", err, res.Error)
	}
	// Two ticks and the partial interval at the window's end (which a late tick may leave out).
	end := float64(res.USec) / 1e6
	if n < 2 || n > 3 || last.Bytes != 1000 || last.Elapsed < end-spec.Interval.Seconds()/10 || last.Elapsed > end {
		t.Errorf("%d intervals, the last at %.3f s with %d bytes; want 3, the last at the window's end (%.3f s) with 1000", n, last.Elapsed, last.Bytes, end)
	}
}

// TestMeasureCollect: the side report of a source that sent with MSG_ZEROCOPY.
func TestMeasureCollect(t *testing.T) {
	spec := quickSpec(2, 200*time.Millisecond)
	spec.MsgZerocopy = true
	m, _ := testMeasurement(t, RoleSource, spec, &blockingSender{fakeEngine{bytes: 5000}}, &blockingSender{fakeEngine{bytes: 3000}})
	m.begin(t)
	m.loop()
	side := m.collect()
	if m.failure != nil || len(side.Flows) != 2 || side.Host != hostname() || len(side.CPUs) == 0 {
		t.Fatalf("failure %v, side %+v", m.failure, side)
	}
	for i, want := range []uint64{5000, 3000} {
		f := side.Flows[i]
		if f.ID != i || f.Dir != "tx" || f.Bytes != want || f.USec != m.usec || f.ZC == nil || f.TCP == nil {
			t.Errorf("flow %d: %+v", i, f)
		}
	}
	if m.usec < 200_000 {
		t.Errorf("a 200 ms window lasted %d µs", m.usec)
	}
}

func TestMeasureDrain(t *testing.T) {
	// The target reads on after its window until the source's EOF.
	eof := make(chan struct{})
	spec := quickSpec(1, 200*time.Millisecond)
	m, _ := testMeasurement(t, RoleTarget, spec, &fakeEngine{run: func(syscall.RawConn) error { <-eof; return nil }})
	m.begin(t)
	m.loop()
	m.collect()
	drained := make(chan struct{})
	go func() { m.drain(); close(drained) }()
	select {
	case <-drained:
		t.Fatal("the drain ended before the source's EOF")
	case <-time.After(50 * time.Millisecond):
	}
	close(eof)
	<-drained
	if m.failure != nil || m.ended != 1 {
		t.Errorf("drain: failure %v, %d flows ended", m.failure, m.ended)
	}
	// A server that stops ends the drain at once.
	m, _ = testMeasurement(t, RoleTarget, spec, &fakeEngine{run: untilStopped})
	m.begin(t)
	m.loop()
	m.collect()
	m.cancel(errors.New("stop"))
	m.drain()
	if m.failure != errShutdown {
		t.Errorf("drain of a stopped server: failure %v", m.failure)
	}
	m.callOff()
	// A source never drains; nor does a window that failed.
	for _, m := range []*measurement{{role: RoleSource}, {role: RoleTarget, failure: errAborted}} {
		m.drain()
		if m.ended != 0 {
			t.Errorf("%s with failure %v drained", m.role, m.failure)
		}
	}
}

// trickle is a target engine whose source sends a byte every `every` until `until`, then closes:
// queued bytes arriving at a dropping receiver's retransmission pace. It ends early, as the real
// engines do, when its socket's read deadline passes.
type trickle struct {
	every time.Duration
	until time.Time
}

func (e *trickle) Receive(rc syscall.RawConn, st *rx.Stats) error {
	for time.Now().Before(e.until) {
		if err := rc.Read(func(uintptr) bool { return true }); err != nil {
			return err
		}
		st.Bytes.Add(1)
		time.Sleep(e.every)
	}
	return nil
}

func TestMeasureDrainFollowsProgress(t *testing.T) {
	const idle, limit = 150 * time.Millisecond, 800 * time.Millisecond
	spec := quickSpec(1, 100*time.Millisecond)
	for _, tc := range []struct {
		name   string
		engine func() rx.Engine
		want   string // "" no failure
		within [2]time.Duration
	}{
		// Bytes keep coming for 3x the idle timeout after the window: the drain waits for the EOF.
		{"slow bytes, then EOF", func() rx.Engine {
			return &trickle{every: 30 * time.Millisecond, until: time.Now().Add(spec.Duration + 3*idle)}
		}, "", [2]time.Duration{3 * idle, limit}},
		// No byte and no EOF: a stalled source, after the idle timeout.
		{"stalled", func() rx.Engine { return &fakeEngine{run: untilStopped} }, "no byte and no end of stream for 150ms", [2]time.Duration{idle, limit}},
		// Bytes that never stop: the limit.
		{"never stops", func() rx.Engine {
			return &trickle{every: 30 * time.Millisecond, until: time.Now().Add(time.Hour)}
		}, "still sending 800ms after the window", [2]time.Duration{limit, limit + time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := testMeasurement(t, RoleTarget, spec, tc.engine())
			m.drainIdle, m.drainMax = idle, limit
			m.begin(t)
			m.loop()
			m.collect()
			t0 := time.Now()
			m.drain()
			took := time.Since(t0)
			switch {
			case tc.want == "" && m.failure != nil:
				t.Errorf("failure %v, want none", m.failure)
			case tc.want != "" && (m.failure == nil || !strings.Contains(m.failure.Error(), tc.want)):
				t.Errorf("failure %v, want %q", m.failure, tc.want)
			}
			if took < tc.within[0]-50*time.Millisecond || took > tc.within[1]+500*time.Millisecond {
				t.Errorf("the drain took %v, want between %v and %v", took, tc.within[0], tc.within[1])
			}
			m.callOff()
		})
	}
}

func TestMeasureFinish(t *testing.T) {
	// A failed window sends its result with the failure's kind and returns the failure.
	m, client := testMeasurement(t, RoleTarget, quickSpec(1, time.Second), &fakeEngine{run: untilStopped})
	if err := m.startWorkers(); err != nil {
		t.Fatal(err)
	}
	m.callOff()
	mismatch := &pattern.MismatchError{Flow: 0, Offset: 3}
	m.failure = mismatch
	if err := m.finish(m.collect()); err != mismatch {
		t.Errorf("finish returned %v", err)
	}
	var res resultMsg
	if err := client.Expect(typeResult, &res); err != nil || res.Kind != kindMismatch || res.Error != mismatch.Error() {
		t.Errorf("result %+v, %v", res, err)
	}
	// A session whose control connection is gone sends nothing and ends as aborted.
	m, _ = testMeasurement(t, RoleTarget, quickSpec(1, time.Second), &fakeEngine{run: untilStopped})
	if err := m.startWorkers(); err != nil {
		t.Fatal(err)
	}
	m.callOff()
	m.s.fatal.Store(true)
	if err := m.finish(m.collect()); err != errAborted {
		t.Errorf("finish on a dead session returned %v", err)
	}
}

func TestFailureClassification(t *testing.T) {
	mismatch := &pattern.MismatchError{Flow: 1, Offset: 2}
	for _, tc := range []struct {
		err  error
		kind string
	}{
		{mismatch, kindMismatch},
		{fmt.Errorf("wrapped: %w", mismatch), kindMismatch},
		{errAborted, kindAborted},
		{errShutdown, kindShutdown},
		{errors.New("flow 0: the source closed the connection"), ""},
	} {
		if got := failureKind(tc.err); got != tc.kind {
			t.Errorf("failureKind(%v) = %q, want %q", tc.err, got, tc.kind)
		}
	}
	for _, tc := range []struct {
		role Role
		err  error
		want string
	}{
		{RoleTarget, mismatch, "payload mismatch"},
		{RoleTarget, nil, "flow 4: the source closed the connection 1.50 s into the 10s window"},
		{RoleTarget, os.ErrDeadlineExceeded, "flow 4: the source did not close the flow after the window ended"},
		{RoleSource, syscall.EPIPE, "the target closed the flow"},
		{RoleSource, errors.New("other"), "other"},
	} {
		got := flowFailure(tc.role, &flowState{id: 4, err: tc.err}, 1500*time.Millisecond, 10*time.Second)
		if got == nil || !strings.Contains(got.Error(), tc.want) {
			t.Errorf("%s flow ending with %v: %v, want %q", tc.role, tc.err, got, tc.want)
		}
	}
}
