// SPDX-License-Identifier: MIT

package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/devmemtcp/ncdevmem/envinfo"
	"github.com/devmemtcp/ncdevmem/internal/sockcall"
	"github.com/devmemtcp/ncdevmem/pattern"
	"github.com/devmemtcp/ncdevmem/proto"
	"github.com/devmemtcp/ncdevmem/report"
	"github.com/devmemtcp/ncdevmem/rx"
	"github.com/devmemtcp/ncdevmem/stats"
	"github.com/devmemtcp/ncdevmem/tx"
	"golang.org/x/sys/unix"
)

// Timeouts of the phases around the measurement window.
const (
	connectTimeout = 10 * time.Second           // dialing and identifying one data connection
	startTimeout   = setupTimeout + time.Minute // from ready to start: the other side sets up meanwhile
	drainTimeout   = 10 * time.Second           // target: after the window, waiting for the source's EOF
)

// spreadAttempts is how many connections the source tries per flow to find free net CPUs.
const spreadAttempts = 16

// session is one test (one prepare) of one role on one server.
type session struct {
	srv  *Server
	c    *proto.Conn
	peer string
	p    prepareMsg
	// fatal is set when the control connection can no longer be used.
	fatal atomic.Bool
	// shared is true when the client saw both roles on one host (start message).
	shared bool
	// inWindow is set while measure runs, so a stopping server lets the test end cleanly.
	inWindow *atomic.Bool

	notesMu sync.Mutex
	notes   []string
}

// note is the Logf given to datapaths: the server logs it and the client prints it.
func (s *session) note(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	s.notesMu.Lock()
	s.notes = append(s.notes, line)
	s.notesMu.Unlock()
	s.srv.logf("%s: %s: %s", s.peer, s.p.Role, line)
}

func (s *session) takeNotes() []string {
	s.notesMu.Lock()
	defer s.notesMu.Unlock()
	n := s.notes
	s.notes = nil
	return n
}

// fail tells the client why the role failed and returns the same error.
func (s *session) fail(err error) error {
	if serr := s.c.SendError(fmt.Sprintf("on %s: %v", hostname(), err)); serr != nil {
		s.fatal.Store(true)
	}
	return err
}

func (s *session) run(ctx context.Context) error {
	spec := &s.p.Spec
	if s.p.Role != RoleSource && s.p.Role != RoleTarget {
		return s.fail(fmt.Errorf("unknown role %q", s.p.Role))
	}
	if err := spec.Check(); err != nil {
		return s.fail(fmt.Errorf("bad test: %w", err))
	}
	dp, err := Select(spec, s.p.Role)
	if err != nil {
		return s.fail(err)
	}
	if testHold(ctx, PhaseSetup) != nil {
		return s.fail(errShutdown)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.p.Role == RoleTarget {
		return s.runTarget(ctx, dp)
	}
	return s.runSource(ctx, dp)
}

// flowState is one data connection and its worker.
type flowState struct {
	id     int
	conn   *net.TCPConn
	rc     syscall.RawConn
	netCPU int
	appCPU int
	rxe    rx.Engine
	txe    tx.Engine
	rst    rx.Stats
	tst    tx.Stats
	err    error // the engine's return, valid after done is closed
	done   chan struct{}

	// blocking engines run on a blocking socket and end when stop is set (see stopFlows).
	brx  rx.Blocking
	btx  tx.Blocking
	stop sockcall.Stop
	// tid is the worker's thread; threadCPUs and softirqCPUs collect where it and the flow's
	// receive softirq (SO_INCOMING_CPU) were seen during the window.
	tid         int
	threadCPUs  cpuSet
	softirqCPUs cpuSet
}

// sample records where the flow's thread and softirq are now.
func (f *flowState) sample() {
	if f.tid > 0 {
		f.threadCPUs.add(threadCPU(f.tid))
	}
	f.softirqCPUs.add(stats.IncomingCPU(f.rc))
}

func (f *flowState) bytes() uint64 {
	if f.rxe != nil {
		return f.rst.Bytes.Load()
	}
	return f.tst.Bytes.Load()
}

func closeFlows(fs []*flowState) {
	for _, f := range fs {
		if f != nil && f.conn != nil {
			f.conn.Close()
		}
	}
}

func (s *session) runTarget(ctx context.Context, dp Datapath) error {
	spec := &s.p.Spec
	local, ok := s.c.NetConn().LocalAddr().(*net.TCPAddr)
	if !ok {
		return s.fail(errors.New("control connection is not TCP"))
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: local.IP, Zone: local.Zone})
	if err != nil {
		return s.fail(fmt.Errorf("listen for data connections on %s: %w", local.IP, err))
	}
	defer ln.Close()
	lap := ln.Addr().(*net.TCPAddr).AddrPort()
	lap = netip.AddrPortFrom(lap.Addr().Unmap(), lap.Port())
	var env *report.Env
	if s.p.Env {
		env = envinfo.Capture(spec.Ifname)
	}
	flows, err := dp.Setup(ctx, Setup{Spec: spec, Role: RoleTarget, Local: lap, Logf: s.note})
	if err != nil {
		return s.fail(fmt.Errorf("%s setup: %w", dp.Name(), err))
	}
	defer flows.Close()
	session := proto.NewNonce()
	if err := s.c.Send(typeReady, &readyMsg{Session: session, DataPort: int(lap.Port()), SrcPorts: sourcePorts(flows), Host: hostname(), NumCPU: numCPU(), BootID: bootID(), Notes: s.takeNotes()}); err != nil {
		s.fatal.Store(true)
		return err
	}
	if spec.DryRun {
		return nil
	}

	// Accept until start: the source may replace a flow (same id) to spread flows over CPUs.
	fs := make([]*flowState, spec.Flows)
	acc := &acceptor{fs: fs, pending: map[*net.TCPConn]bool{}}
	acceptDone := make(chan struct{})
	var hellos sync.WaitGroup
	go func() {
		defer close(acceptDone)
		ln.SetDeadline(time.Now().Add(startTimeout))
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				hellos.Wait()
				return
			}
			// Each connection identifies itself on its own goroutine, so a silent one cannot
			// hold up the others.
			hellos.Add(1)
			go func() {
				defer hellos.Done()
				s.acceptFlow(acc, c, session, flows)
			}()
		}
	}()
	stopAccept := func() {
		ln.Close()
		acc.closePending()
		<-acceptDone
	}

	if err := s.waitStart(); err != nil {
		stopAccept()
		closeFlows(fs)
		return err
	}
	stopAccept()
	n := 0
	for _, f := range fs {
		if f != nil {
			n++
		}
	}
	if n < spec.Flows {
		closeFlows(fs)
		return s.fail(fmt.Errorf("only %d of %d data connections arrived from the source", n, spec.Flows))
	}
	defer closeFlows(fs)
	for _, f := range fs {
		f.rc, err = f.conn.SyscallConn()
		if err == nil {
			f.rxe, err = flows.Receiver(f.id, f.rc)
		}
		if err != nil {
			return s.fail(fmt.Errorf("flow %d: %w", f.id, err))
		}
	}
	return s.measure(ctx, flows, fs, env)
}

// DataConner is implemented by target Flows whose data connections cannot be read with read(2)
// before their engine runs: on a devmem queue even the flow's hello lands in the dma-buf, so the
// session reads it through the connection DataConn returns.
type DataConner interface {
	DataConn(c *net.TCPConn) (net.Conn, error)
}

// acceptor holds the target's flows while they connect.
type acceptor struct {
	mu      sync.Mutex
	fs      []*flowState
	pending map[*net.TCPConn]bool // connections still identifying themselves
	closed  bool
}

func (a *acceptor) closePending() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for c := range a.pending {
		c.Close()
	}
}

// acceptFlow identifies one data connection and, if it belongs to the session, puts it in place
// (replacing an earlier connection of the same flow) and acks it with its SO_INCOMING_CPU.
func (s *session) acceptFlow(a *acceptor, c *net.TCPConn, session []byte, flows Flows) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		c.Close()
		return
	}
	a.pending[c] = true
	a.mu.Unlock()
	var pc *proto.Conn
	var id int
	var err error
	if dc, ok := flows.(DataConner); ok {
		var nc net.Conn
		if nc, err = dc.DataConn(c); err == nil {
			pc = proto.NewConn(nc)
		}
	} else {
		pc = proto.NewConn(c)
	}
	if err == nil {
		id, err = proto.RecvDataHello(pc, s.srv.Key, session, len(a.fs), connectTimeout)
	}
	cpu := -1
	if err == nil {
		var rc syscall.RawConn
		if rc, err = c.SyscallConn(); err == nil {
			cpu = stats.IncomingCPU(rc)
		}
	}
	var f *flowState
	a.mu.Lock()
	delete(a.pending, c)
	if err == nil && a.closed {
		err = errors.New("data connection identified itself after the test started")
	}
	if err == nil {
		if old := a.fs[id]; old != nil {
			old.conn.Close()
		}
		f = &flowState{id: id, conn: c}
		a.fs[id] = f
	}
	a.mu.Unlock()
	if err == nil {
		// Ack only once the flow is in place: the source's ready means every flow is.
		err = proto.SendDataAck(pc, proto.DataAck{CPU: cpu})
	}
	if err != nil {
		s.srv.logf("%s: target: %v", s.peer, err)
		if f != nil {
			a.mu.Lock()
			if a.fs[id] == f {
				a.fs[id] = nil
			}
			a.mu.Unlock()
		}
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
}

func (s *session) runSource(ctx context.Context, dp Datapath) error {
	spec := &s.p.Spec
	target, err := netip.ParseAddrPort(s.p.Target)
	if err != nil {
		return s.fail(fmt.Errorf("target data address %q: %w", s.p.Target, err))
	}
	var env *report.Env
	if s.p.Env {
		env = envinfo.Capture(spec.Ifname)
	}
	flows, err := dp.Setup(ctx, Setup{Spec: spec, Role: RoleSource, Remote: target, Logf: s.note})
	if err != nil {
		return s.fail(fmt.Errorf("%s setup: %w", dp.Name(), err))
	}
	defer flows.Close()
	if spec.DryRun {
		if err := s.c.Send(typeReady, &readyMsg{Host: hostname(), NumCPU: numCPU(), BootID: bootID(), Notes: s.takeNotes()}); err != nil {
			s.fatal.Store(true)
			return err
		}
		return nil
	}
	if err := checkSourcePorts(s.p.SrcPorts, spec.Flows); err != nil {
		return s.fail(err)
	}
	fs := make([]*flowState, spec.Flows)
	defer closeFlows(fs)
	d := net.Dialer{Timeout: connectTimeout, Control: flows.Control}
	// kperf's collision avoidance: with pinning on and CPUs enough on both hosts, a flow whose
	// softirq CPU on either side is taken by an earlier flow is reconnected (RSS hashes the new
	// port elsewhere), so each flow gets its own net CPUs.
	// Over loopback, or between namespaces of one host (veth), the softirq runs on the sending
	// thread's CPU, so there is nothing to spread.
	sameHost := s.p.TargetBoot != "" && s.p.TargetBoot == bootID()
	spread := !spec.NoPin && len(spec.CPUsSrc) == 0 && len(spec.CPUsDst) == 0 && spec.Flows > 1 &&
		spec.Flows <= numCPU() && spec.Flows <= s.p.TargetCPUs && !target.Addr().IsLoopback() && !sameHost && len(s.p.SrcPorts) == 0
	usedSrc, usedDst := map[int]bool{}, map[int]bool{}
	shared := 0
	for i := range fs {
		var c *net.TCPConn
		for attempt := 1; ; attempt++ {
			nc, err := sourceDialer(d, s.p.SrcPorts, i).DialContext(ctx, "tcp", target.String())
			if err != nil {
				return s.fail(fmt.Errorf("flow %d: connect to the target's data port: %w", i, sourcePortAdvice(err, s.p.SrcPorts, i)))
			}
			c = nc.(*net.TCPConn)
			fs[i] = &flowState{id: i, conn: c}
			ack, err := proto.SendDataHello(proto.NewConn(c), s.srv.Key, s.p.Session, i)
			if err != nil {
				return s.fail(err)
			}
			if !spread {
				break
			}
			srcCPU := -1
			if rc, err := c.SyscallConn(); err == nil {
				srcCPU = stats.IncomingCPU(rc)
			}
			clash := (srcCPU >= 0 && usedSrc[srcCPU]) || (ack.CPU >= 0 && usedDst[ack.CPU])
			if !clash || attempt == spreadAttempts {
				if clash {
					shared++
				}
				usedSrc[srcCPU], usedDst[ack.CPU] = true, true
				break
			}
			c.Close()
		}
		c.SetDeadline(time.Time{})
		if f := fs[i]; true {
			if f.rc, err = c.SyscallConn(); err != nil {
				return s.fail(err)
			}
			if spec.PaceBytes > 0 {
				if err := setPacing(f.rc, spec.PaceBytes); err != nil {
					return s.fail(fmt.Errorf("flow %d: %w", i, err))
				}
			}
			if f.txe, err = flows.Sender(i, f.rc); err != nil {
				return s.fail(fmt.Errorf("flow %d: %w", i, err))
			}
			if i == 0 && s.srv.CorruptAt != 0 {
				cc, ok := f.txe.(interface{ CorruptAt(uint64) })
				if !ok {
					return s.fail(fmt.Errorf("test hook NCDEVMEM_TEST_CORRUPT_AT: the %s sender cannot corrupt its stream", dp.Name()))
				}
				cc.CorruptAt(s.srv.CorruptAt - 1)
			}
		}
	}
	if shared > 0 {
		s.note("%d of %d flows share a net CPU with another flow after %d connection attempts each (RSS keeps hashing them to the same queues, or a virtual device such as veth runs the softirq on the sender's CPU); pin explicitly with --cpu-src/--cpu-dst if that matters", shared, spec.Flows, spreadAttempts)
	}
	if err := s.c.Send(typeReady, &readyMsg{Host: hostname(), NumCPU: numCPU(), BootID: bootID(), Notes: s.takeNotes()}); err != nil {
		s.fatal.Store(true)
		return err
	}
	if err := s.waitStart(); err != nil {
		return err
	}
	return s.measure(ctx, flows, fs, env)
}

// errAborted is a test the client ended (abort, or its control connection closed); errShutdown
// one the server ended because it is stopping.
var (
	errAborted  = errors.New("aborted by the client")
	errShutdown = errors.New("the server is shutting down (it was told to stop)")
)

// waitStart waits for start; abort or a dead client returns an error and no test runs.
func (s *session) waitStart() error {
	m, err := s.c.RecvWithin(startTimeout)
	if err != nil {
		s.fatal.Store(true)
		return fmt.Errorf("waiting for start: %w", err)
	}
	switch m.Type {
	case typeStart:
		var st startMsg
		if len(m.Body) > 0 && string(m.Body) != "null" {
			if err := m.Decode(&st); err != nil {
				s.fatal.Store(true)
				return fmt.Errorf("start message: %w", err)
			}
		}
		s.shared = st.SharedHost
		return nil
	case typeAbort:
		return errAborted
	}
	s.fatal.Store(true)
	return fmt.Errorf("protocol error: got %q while waiting for start", m.Type)
}

// setPacing sets SO_MAX_PACING_RATE (bytes per second). Rates above 4 GB/s need the 64-bit form
// (Linux 5.x and later); the 32-bit one is used below so older kernels work too.
func setPacing(rc syscall.RawConn, rate uint64) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if rate <= math.MaxUint32 {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE, int(uint32(rate)))
			return
		}
		var b [8]byte
		binary.NativeEndian.PutUint64(b[:], rate)
		serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE, string(b[:]))
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("setsockopt SO_MAX_PACING_RATE %d bytes/s: %w", rate, err)
	}
	return nil
}

// pin moves the calling goroutine's locked OS thread to cpu.
func pin(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin worker to CPU %d: %w (is the CPU online and in this process's cpuset?)", cpu, err)
	}
	return nil
}

// measure runs the window: pin workers, sample, run, sample, stop, report.
func (s *session) measure(ctx context.Context, flows Flows, fs []*flowState, env *report.Env) error {
	spec := &s.p.Spec
	role := s.p.Role
	ncpu := numCPU()
	allowed := allowedCPUs()
	if s.inWindow != nil {
		s.inWindow.Store(true)
		defer s.inWindow.Store(false)
	}
	for i, f := range fs {
		f.netCPU = stats.IncomingCPU(f.rc)
		f.appCPU = appCPU(spec, role, i, f.netCPU, ncpu, s.shared, allowed)
		if f.appCPU >= ncpu {
			return s.fail(fmt.Errorf("--cpu-src/--cpu-dst: CPU %d does not exist on %s (it has %d)", f.appCPU, hostname(), ncpu))
		}
		f.done = make(chan struct{})
		if f.rxe != nil {
			f.brx, _ = f.rxe.(rx.Blocking)
		} else {
			f.btx, _ = f.txe.(tx.Blocking)
		}
	}

	startCh := make(chan struct{})
	readyCh := make(chan error, len(fs))
	finished := make(chan *flowState, len(fs))
	for _, f := range fs {
		go func() {
			defer close(f.done)
			// The thread stays locked until the goroutine ends, so Go retires it with its affinity
			// rather than handing a pinned thread to other goroutines.
			runtime.LockOSThread()
			f.tid = unix.Gettid()
			if f.appCPU >= 0 {
				if err := pin(f.appCPU); err != nil {
					readyCh <- err
					f.err = err
					return
				}
			}
			if f.brx != nil || f.btx != nil {
				// A blocking socket: read(2)/write(2) sleep in the kernel on this thread, and
				// SO_RCVTIMEO/SO_SNDTIMEO bring them back to look at f.stop.
				var serr error
				if err := f.rc.Control(func(fd uintptr) { serr = sockcall.SetBlocking(int(fd), sockcall.StopPoll) }); err != nil || serr != nil {
					err = fmt.Errorf("flow %d: blocking socket: %w", f.id, errors.Join(err, serr))
					readyCh <- err
					f.err = err
					return
				}
			}
			readyCh <- nil
			<-startCh
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
			finished <- f
		}()
	}
	var pinErr error
	for range fs {
		if err := <-readyCh; err != nil && pinErr == nil {
			pinErr = err
		}
	}
	if pinErr != nil {
		close(startCh)
		stopFlows(fs)
		return s.fail(pinErr)
	}

	// Watch the control connection during the window: abort or a vanished client ends the test.
	ctx, cancelCause := context.WithCancelCause(ctx)
	defer cancelCause(nil)
	readingDone, readerExited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(readerExited)
		// One read: the client sends nothing but abort during a test, so anything else is the
		// end of the session too (and a single read is what endReading's deadline can interrupt).
		m, err := s.c.RecvWithin(spec.Duration + time.Hour)
		select {
		case <-readingDone:
			return
		default:
		}
		if err != nil || m.Type != typeAbort {
			s.fatal.Store(true)
		}
		cancelCause(errAborted)
	}()
	endReading := func() {
		close(readingDone)
		// Repeat the deadline until the reader is gone: it may not have set its own yet.
		for {
			s.c.NetConn().SetReadDeadline(time.Now())
			select {
			case <-readerExited:
				s.c.NetConn().SetReadDeadline(time.Time{})
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	cpu0, err := stats.ReadCPUTimes()
	if err != nil {
		close(startCh)
		stopFlows(fs)
		endReading()
		return s.fail(err)
	}
	if err := flows.WindowStart(); err != nil {
		close(startCh)
		stopFlows(fs)
		endReading()
		return s.fail(err)
	}
	start := time.Now()
	if role == RoleSource {
		// The window's end: the write deadline for netpoller engines, the stop flag for blocking ones.
		for _, f := range fs {
			f.conn.SetWriteDeadline(start.Add(spec.Duration))
		}
		windowEnd := time.AfterFunc(spec.Duration, func() {
			for _, f := range fs {
				f.stop.Set()
			}
		})
		defer windowEnd.Stop()
	}
	close(startCh)
	if role == RoleTarget {
		// The client starts the source only after this, so the source starts after the target's
		// window opened and stops after it closed: the target never sees an EOF inside its window.
		if err := s.c.Send(typeStarted, nil); err != nil {
			s.fatal.Store(true)
			cancelCause(errAborted)
		}
	}

	var failure error
	end := time.NewTimer(spec.Duration)
	defer end.Stop()
	var tick, live <-chan time.Time
	if spec.Interval > 0 {
		t := time.NewTicker(spec.Interval)
		defer t.Stop()
		tick = t.C
	}
	liveCPU := cpu0
	if spec.Live > 0 {
		t := time.NewTicker(spec.Live)
		defer t.Stop()
		live = t.C
	}
	// Where the workers and the softirqs run, sampled through the window.
	// Each sample reads /proc and makes a syscall per flow: space them out for many flows.
	sampler := time.NewTicker(placementSample * time.Duration(max(1, len(fs)/32)))
	defer sampler.Stop()
	var cpu1 []stats.CPUTimes
	var lastTick time.Duration
	ended := 0
window:
	for {
		select {
		case <-end.C:
			break window
		case <-sampler.C:
			for _, f := range fs {
				f.sample()
			}
		case <-tick:
			lastTick = time.Since(start)
			if err := s.c.Send(typeProgress, &progressMsg{Elapsed: lastTick.Seconds(), Bytes: flowBytes(fs)}); err != nil {
				s.fatal.Store(true)
				cancelCause(errAborted)
			}
		case <-live:
			now, err := stats.ReadCPUTimes()
			idle := -1.0
			if err == nil {
				idle = appIdle(liveCPU, now, fs, allowed)
				liveCPU = now
			}
			if err := s.c.Send(typeProgress, &progressMsg{Live: true, Elapsed: time.Since(start).Seconds(), Bytes: flowBytes(fs), AppIdle: idle}); err != nil {
				s.fatal.Store(true)
				cancelCause(errAborted)
			}
		case <-ctx.Done():
			failure = errAborted
			if !errors.Is(context.Cause(ctx), errAborted) {
				failure = errShutdown
			}
			break window
		case f := <-finished:
			ended++
			if role == RoleSource && errors.Is(f.err, os.ErrDeadlineExceeded) {
				// The window's own end (the write deadline or the stop flag), seen a hair before
				// the timer.
				if ended == len(fs) {
					break window
				}
				continue
			}
			if f.err == nil && time.Since(start) >= spec.Duration {
				// The source's EOF after the window, seen before the timer: the window's end.
				break window
			}
			failure = flowFailure(role, f, time.Since(start), spec.Duration)
			break window
		}
	}
	cpu1, err = stats.ReadCPUTimes()
	if err != nil && failure == nil {
		failure = err
	}
	usec := uint64(time.Since(start).Microseconds())
	for _, f := range fs {
		f.sample()
	}
	if role == RoleSource {
		// Sources stop at their deadline; wait so the byte counts are final.
		if failure != nil {
			stopFlows(fs)
		}
		for _, f := range fs {
			<-f.done
		}
	}
	bytes := make([]uint64, len(fs))
	var total uint64
	for i, f := range fs {
		bytes[i] = f.bytes()
		total += bytes[i]
	}
	// Close the last partial interval at the window's end, so the intervals cover the window.
	if spec.Interval > 0 && failure == nil && !s.fatal.Load() {
		if w := time.Duration(usec) * time.Microsecond; w-lastTick > spec.Interval/10 {
			if err := s.c.Send(typeProgress, &progressMsg{Elapsed: w.Seconds(), Bytes: total}); err != nil {
				s.fatal.Store(true)
			}
		}
	}
	if err := flows.WindowEnd(); err != nil && failure == nil {
		failure = err
	}
	side := report.Side{Host: hostname(), Devmem: flows.Report()}
	for i, f := range fs {
		// The net CPU the report shows is where the softirq ran at the window's end; the one at
		// its start (from the connection's handshake) placed the worker.
		net := stats.IncomingCPU(f.rc)
		if net < 0 {
			net = f.netCPU
		}
		fl := report.Flow{ID: f.id, Dir: "rx", Bytes: bytes[i], USec: usec, Gbps: report.Gbps(bytes[i], usec), NetCPU: net, AppCPU: f.appCPU,
			ThreadCPUs: f.threadCPUs, SoftirqCPUs: f.softirqCPUs}
		if role == RoleSource {
			fl.Dir = "tx"
			if spec.MsgZerocopy || spec.DevmemTX {
				fl.ZC = &report.ZC{Sends: f.tst.ZCSends.Load(), Completions: f.tst.ZCCompleted.Load(), Copied: f.tst.ZCCopied.Load()}
			}
		}
		if ti, err := stats.TCPInfo(f.rc); err == nil {
			fl.TCP = ti
		}
		side.Flows = append(side.Flows, fl)
	}
	if cpu1 != nil {
		side.CPUs = stats.CPUUsage(cpu0, cpu1, stats.Roles(side.Flows))
	}

	// Tail: the target drains until the source's EOF so the source never blocks on a full window.
	if role == RoleTarget && failure == nil {
		testHold(ctx, PhaseDrain)
		deadline := time.Now().Add(drainTimeout)
		for _, f := range fs {
			f.conn.SetReadDeadline(deadline)
		}
		drainEnd := time.AfterFunc(drainTimeout, func() {
			for _, f := range fs {
				f.stop.Set()
			}
		})
		for ; ended < len(fs); ended++ {
			var f *flowState
			select {
			case f = <-finished:
			case <-ctx.Done():
			}
			if f == nil {
				failure = errAborted
				if !errors.Is(context.Cause(ctx), errAborted) {
					failure = errShutdown
				}
				break
			}
			if f.err != nil && failure == nil {
				failure = flowFailure(role, f, time.Since(start), spec.Duration)
			}
		}
		drainEnd.Stop()
	}
	stopFlows(fs)
	if role == RoleSource && failure == nil {
		for _, f := range fs {
			if f.err != nil && !errors.Is(f.err, os.ErrDeadlineExceeded) {
				failure = flowFailure(role, f, time.Since(start), spec.Duration)
				break
			}
		}
	}
	endReading()
	if s.fatal.Load() {
		if failure == nil {
			failure = errAborted
		}
		return failure
	}
	res := resultMsg{Side: side, Start: start, USec: usec, Env: env, Notes: s.takeNotes()}
	if failure != nil {
		res.Error = failure.Error()
		var me *pattern.MismatchError
		switch {
		case errors.As(failure, &me):
			res.Kind = kindMismatch
		case errors.Is(failure, errAborted):
			res.Kind = kindAborted
		case errors.Is(failure, errShutdown):
			res.Kind = kindShutdown
		}
	}
	if err := s.c.Send(typeResult, &res); err != nil {
		s.fatal.Store(true)
		return err
	}
	return failure
}

// placementSample is how often the window records where workers and softirqs run (for up to 32
// flows; proportionally less often for more).
const placementSample = 200 * time.Millisecond

func flowBytes(fs []*flowState) uint64 {
	var b uint64
	for _, f := range fs {
		b += f.bytes()
	}
	return b
}

// appIdle is the idle percentage, between two /proc/stat samples, of the CPUs the role's workers
// are pinned to (of every allowed CPU when they are not pinned), or -1.
func appIdle(before, after []stats.CPUTimes, fs []*flowState, allowed []int) float64 {
	roles := map[int]string{}
	for _, f := range fs {
		if f.appCPU >= 0 {
			roles[f.appCPU] = "app"
		}
	}
	if len(roles) == 0 {
		for _, c := range allowed {
			roles[c] = "app"
		}
	}
	cpus := stats.CPUUsage(before, after, roles)
	if len(cpus) == 0 {
		return -1
	}
	var idle float64
	for _, c := range cpus {
		idle += c.Idle
	}
	return idle / float64(len(cpus))
}

// stopFlows ends every worker now and waits for them: the stop flag for blocking engines, a
// deadline in the past for netpoller ones. Either way a worker returns within sockcall.StopPoll.
func stopFlows(fs []*flowState) {
	now := time.Now()
	for _, f := range fs {
		f.stop.Set()
		f.conn.SetDeadline(now)
	}
	for _, f := range fs {
		<-f.done
	}
}

// flowFailure explains why flow f ended at elapsed into a window of length window.
func flowFailure(role Role, f *flowState, elapsed, window time.Duration) error {
	var me *pattern.MismatchError
	switch {
	case errors.As(f.err, &me):
		return f.err
	case role == RoleTarget && f.err == nil:
		return fmt.Errorf("flow %d: the source closed the connection %.2f s into the %v window (did the source server stop or get killed?)", f.id, elapsed.Seconds(), window)
	case role == RoleTarget && errors.Is(f.err, os.ErrDeadlineExceeded):
		return fmt.Errorf("flow %d: the source kept sending %v after the window ended", f.id, drainTimeout)
	case role == RoleSource && (errors.Is(f.err, unix.ECONNRESET) || errors.Is(f.err, unix.EPIPE)):
		return fmt.Errorf("%w (the target closed the flow: its validation failed or it stopped)", f.err)
	}
	return f.err
}
