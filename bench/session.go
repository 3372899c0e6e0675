// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

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
	"strings"
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
	// The target's drain after the window, until the source's EOF: the source may have megabytes
	// queued when its window ends, and where the receiver drops (a devmem dma-buf or zcrx area too
	// small for the traffic, a page pool that cannot refill) they arrive at the pace of TCP's
	// backed-off retransmission timer, seconds apart. So the drain lasts while bytes keep coming,
	// drainTimeout with none is a stalled source, and drainLimit is the most any source may take.
	drainTimeout = 10 * time.Second
	drainLimit   = 60 * time.Second
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
	dp := selectDatapath(s.srv.datapaths(), spec, s.p.Role)
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
	ln, lap, err := s.listenData()
	if err != nil {
		return s.fail(err)
	}
	defer ln.Close()
	flows, env, err := s.setup(ctx, dp, Setup{Local: lap})
	if err != nil {
		return err
	}
	defer s.teardown(flows)
	session := proto.NewNonce()
	if err := s.ready(&readyMsg{Session: session, DataPort: int(lap.Port()), SrcPorts: sourcePorts(flows)}); err != nil {
		return err
	}
	if spec.DryRun {
		return nil
	}
	fs, err := s.acceptUntilStart(ln, session, flows)
	if err != nil {
		return err
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

// setup captures the environment when the client asked for it and sets dp up for this role
// (st gives the addresses); a failure is told to the client.
func (s *session) setup(ctx context.Context, dp Datapath, st Setup) (Flows, *report.Env, error) {
	var env *report.Env
	if s.p.Env {
		env = envinfo.Capture(s.p.Spec.Ifname)
	}
	st.Spec, st.Role, st.Logf, st.sys = &s.p.Spec, s.p.Role, s.note, s.srv.sys
	flows, err := dp.Setup(ctx, st)
	if err != nil {
		return nil, nil, s.fail(fmt.Errorf("%s setup: %w", dp.Name(), err))
	}
	return flows, env, nil
}

// teardown closes the role's datapath once its test ended, however it ended (Flows.Close restores
// what Setup changed), and then tells the client how that went with restored, unless the control
// connection is gone. A failed Close is logged here; what the session returns stays the test's own
// error.
func (s *session) teardown(flows Flows) {
	err := flows.Close()
	if err != nil {
		s.srv.logf("%s: %s: restoring after the test: %v", s.peer, s.p.Role, err)
	}
	if s.fatal.Load() {
		return
	}
	if serr := s.c.Send(typeRestored, &restoredMsg{Error: restoreFailure(err, s.p.Spec.Ifname)}); serr != nil {
		s.fatal.Store(true)
	}
}

// restoreFailure is restored's error for a teardown that failed with err ("" for nil): err on one
// line and, unless it says so already, the command that finishes the job on the server's host.
func restoreFailure(err error, ifname string) string {
	if err == nil {
		return ""
	}
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if strings.Contains(msg, "ncdevmem cleanup") {
		return msg
	}
	if ifname == "" {
		ifname = "IF"
	}
	return fmt.Sprintf("%s; run `ncdevmem cleanup -f %s` on that host", msg, ifname)
}

// ready tells the client this role is set up: m with this host's identity and the notes so far.
func (s *session) ready(m *readyMsg) error {
	m.Host, m.NumCPU, m.BootID, m.Notes = hostname(), numCPU(), bootID(), s.takeNotes()
	if err := s.c.Send(typeReady, m); err != nil {
		s.fatal.Store(true)
		return err
	}
	return nil
}

// listenData listens for the data connections on the control connection's local address.
func (s *session) listenData() (*net.TCPListener, netip.AddrPort, error) {
	local, ok := s.c.NetConn().LocalAddr().(*net.TCPAddr)
	if !ok {
		return nil, netip.AddrPort{}, errors.New("control connection is not TCP")
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: local.IP, Zone: local.Zone})
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("listen for data connections on %s: %w", local.IP, err)
	}
	lap := ln.Addr().(*net.TCPAddr).AddrPort()
	return ln, netip.AddrPortFrom(lap.Addr().Unmap(), lap.Port()), nil
}

// acceptUntilStart accepts the data connections until start: the source may replace a flow (same
// id) to spread flows over CPUs. It returns every flow, or the error that ends the test (after
// telling the client, when the client is still there).
func (s *session) acceptUntilStart(ln *net.TCPListener, session []byte, flows Flows) ([]*flowState, error) {
	fs := make([]*flowState, s.p.Spec.Flows)
	acc := &acceptor{fs: fs, pending: map[*net.TCPConn]bool{}}
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		var hellos sync.WaitGroup
		defer hellos.Wait()
		ln.SetDeadline(time.Now().Add(startTimeout))
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
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
	err := s.waitStart()
	ln.Close()
	acc.closePending()
	<-acceptDone
	if err != nil {
		closeFlows(fs)
		return nil, err
	}
	n := 0
	for _, f := range fs {
		if f != nil {
			n++
		}
	}
	if n < s.p.Spec.Flows {
		closeFlows(fs)
		return nil, s.fail(fmt.Errorf("only %d of %d data connections arrived from the source", n, s.p.Spec.Flows))
	}
	return fs, nil
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

// identify reads data connection c's hello (through the datapath's DataConn when it has one) and
// returns the connection to answer on, the flow's id and its SO_INCOMING_CPU.
func (s *session) identify(c *net.TCPConn, session []byte, flows Flows, n int) (pc *proto.Conn, id, cpu int, err error) {
	cpu = -1
	if dc, ok := flows.(DataConner); ok {
		nc, err := dc.DataConn(c)
		if err != nil {
			return nil, 0, cpu, err
		}
		pc = proto.NewConn(nc)
	} else {
		pc = proto.NewConn(c)
	}
	if id, err = proto.RecvDataHello(pc, s.srv.Key, session, n, connectTimeout); err != nil {
		return nil, 0, cpu, err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, 0, cpu, err
	}
	return pc, id, stats.IncomingCPU(rc), nil
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
	pc, id, cpu, err := s.identify(c, session, flows, len(a.fs))
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
	flows, env, err := s.setup(ctx, dp, Setup{Remote: target})
	if err != nil {
		return err
	}
	defer s.teardown(flows)
	if spec.DryRun {
		return s.ready(&readyMsg{})
	}
	if err := checkSourcePorts(s.p.SrcPorts, spec.Flows); err != nil {
		return s.fail(err)
	}
	fs := make([]*flowState, spec.Flows)
	defer closeFlows(fs)
	if err := s.connectFlows(ctx, dp, flows, target, fs); err != nil {
		return s.fail(err)
	}
	if err := s.ready(&readyMsg{}); err != nil {
		return err
	}
	if err := s.waitStart(); err != nil {
		return err
	}
	return s.measure(ctx, flows, fs, env)
}

// spreader is kperf's collision avoidance: with pinning on and CPUs enough on both hosts, a flow
// whose softirq CPU on either side is taken by an earlier flow is reconnected (RSS hashes the new
// port elsewhere), so each flow gets its own net CPUs.
type spreader struct {
	on               bool
	usedSrc, usedDst map[int]bool
	shared           int // flows that still share a net CPU after spreadAttempts connections
}

func (s *session) newSpreader(target netip.AddrPort) *spreader {
	spec := &s.p.Spec
	// Over loopback, or between namespaces of one host (veth), the softirq runs on the sending
	// thread's CPU, so there is nothing to spread.
	sameHost := s.p.TargetBoot != "" && s.p.TargetBoot == bootID()
	on := !spec.NoPin && len(spec.CPUsSrc) == 0 && len(spec.CPUsDst) == 0 && spec.Flows > 1 &&
		spec.Flows <= numCPU() && spec.Flows <= s.p.TargetCPUs && !target.Addr().IsLoopback() && !sameHost &&
		len(s.p.SrcPorts) == 0 // chosen source ports (one ntuple rule per flow) cannot be redialled
	return &spreader{on: on, usedSrc: map[int]bool{}, usedDst: map[int]bool{}}
}

// keep tells whether connection c (whose target softirq CPU is dstCPU) keeps its flow, at the
// attempt-th try.
func (sp *spreader) keep(c *net.TCPConn, dstCPU, attempt int) bool {
	if !sp.on {
		return true
	}
	srcCPU := -1
	if rc, err := c.SyscallConn(); err == nil {
		srcCPU = stats.IncomingCPU(rc)
	}
	clash := (srcCPU >= 0 && sp.usedSrc[srcCPU]) || (dstCPU >= 0 && sp.usedDst[dstCPU])
	if clash && attempt < spreadAttempts {
		return false
	}
	if clash {
		sp.shared++
	}
	sp.usedSrc[srcCPU], sp.usedDst[dstCPU] = true, true
	return true
}

// connectFlows connects and identifies every flow (spreading them over net CPUs) and makes its
// engine; fs holds each connection as soon as it exists, for the caller to close.
func (s *session) connectFlows(ctx context.Context, dp Datapath, flows Flows, target netip.AddrPort, fs []*flowState) error {
	d := net.Dialer{Timeout: connectTimeout, Control: flows.Control}
	sp := s.newSpreader(target)
	for i := range fs {
		for attempt := 1; ; attempt++ {
			nc, err := sourceDialer(d, s.p.SrcPorts, i).DialContext(ctx, "tcp", target.String())
			if err != nil {
				return fmt.Errorf("flow %d: connect to the target's data port: %w", i, sourcePortAdvice(err, s.p.SrcPorts, i))
			}
			c := nc.(*net.TCPConn)
			fs[i] = &flowState{id: i, conn: c}
			ack, err := proto.SendDataHello(proto.NewConn(c), s.srv.Key, s.p.Session, i)
			if err != nil {
				return err
			}
			if sp.keep(c, ack.CPU, attempt) {
				break
			}
			c.Close()
		}
		fs[i].conn.SetDeadline(time.Time{})
		if err := s.sender(dp, flows, fs[i]); err != nil {
			return err
		}
	}
	if sp.shared > 0 {
		s.note("%d of %d flows share a net CPU with another flow after %d connection attempts each (RSS keeps hashing them to the same queues, or a virtual device such as veth runs the softirq on the sender's CPU); pin explicitly with --cpu-src/--cpu-dst if that matters", sp.shared, len(fs), spreadAttempts)
	}
	return nil
}

// sender paces flow f and makes its engine (the corruption test hook applies to flow 0).
func (s *session) sender(dp Datapath, flows Flows, f *flowState) error {
	var err error
	if f.rc, err = f.conn.SyscallConn(); err != nil {
		return err
	}
	if pace := s.p.Spec.PaceBytes; pace > 0 {
		if err := setPacing(f.rc, pace); err != nil {
			return fmt.Errorf("flow %d: %w", f.id, err)
		}
	}
	if f.txe, err = flows.Sender(f.id, f.rc); err != nil {
		return fmt.Errorf("flow %d: %w", f.id, err)
	}
	if f.id == 0 && s.srv.CorruptAt != 0 {
		cc, ok := f.txe.(interface{ CorruptAt(uint64) })
		if !ok {
			return fmt.Errorf("test hook NCDEVMEM_TEST_CORRUPT_AT: the %s sender cannot corrupt its stream", dp.Name())
		}
		cc.CorruptAt(s.srv.CorruptAt - 1)
	}
	return nil
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
		return fmt.Errorf("flow %d: the source did not close the flow after the window ended: %w", f.id, f.err)
	case role == RoleSource && (errors.Is(f.err, unix.ECONNRESET) || errors.Is(f.err, unix.EPIPE)):
		return fmt.Errorf("%w (the target closed the flow: its validation failed or it stopped)", f.err)
	}
	return f.err
}
