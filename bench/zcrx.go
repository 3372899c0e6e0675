// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/devmem"
	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/pattern"
	"github.com/devmemtcp/ncdevmem/report"
	"github.com/devmemtcp/ncdevmem/rx"
	"github.com/devmemtcp/ncdevmem/tx"
	"github.com/devmemtcp/ncdevmem/zcrx"
)

// DefaultZcrxAreaSize is the zcrx area when --zcrx-area-size is not given (zcrx.DefaultAreaSize).
const DefaultZcrxAreaSize = zcrx.DefaultAreaSize

// zcrxRefillBatch is how many buffer returns go to the refill ring per tail store.
const zcrxRefillBatch = 32

// zcrxDatapath is io_uring zero-copy receive on the target: the NIC prepared as for devmem RX
// (devmem.Open without a binding: header split, hds-thresh 0, RSS off the queues, an RSS context
// or rules steering the flows to them), then on each chosen queue an ifq with its own area (host
// memory or a udmabuf; --zcrx-area-size split between the queues) on its own ring, driven from its
// own thread; each flow does multishot RECV_ZC on the ring of the queue its packets arrive on, and
// its payload is validated in place in the area.
type zcrxDatapath struct{}

func (zcrxDatapath) Name() string { return "zcrx" }

func (zcrxDatapath) Handles(spec *TestSpec, role Role) bool { return role == RoleTarget && spec.Zcrx }

// Setup checks everything it can before it touches the NIC (the kernel's support, the area's size
// and what the kernel will charge for it), prepares the NIC, then registers one ifq per queue.
func (zcrxDatapath) Setup(ctx context.Context, s Setup) (_ Flows, err error) {
	f, sup, err := newZcrxFlows(s)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if err := f.pickQueues(); err != nil {
		return nil, err
	}
	if err := f.checkMemory(zcrx.ReadMemlock()); err != nil {
		return nil, err
	}
	if err := f.prepare(ctx, s.Local); err != nil {
		return nil, err
	}
	if f.spec.DryRun {
		f.logf("zcrx: would register a %d-byte %s area on each of %s queues %s (one io_uring ring with DEFER_TASKRUN|SINGLE_ISSUER|CQE32 per queue)",
			f.per, f.kind, f.ifname, rx.QueueList(f.queues))
		return f, nil
	}
	for _, q := range f.queues {
		if err := f.register(q, sup); err != nil {
			return nil, err
		}
	}
	f.rcvbuf = zcrxRcvbuf(f.per, f.spec.Flows, tcpRmemMax())
	if f.rcvbuf > 0 {
		f.logf("zcrx: each flow's receive buffer is capped at %d bytes (SO_RCVBUF) so the flows' TCP windows fit the %d-byte areas", f.rcvbuf, f.per)
	}
	return f, nil
}

// newZcrxFlows checks the request against the interface and the kernel, changing nothing.
func newZcrxFlows(s Setup) (*zcrxFlows, zcrx.Support, error) {
	spec := s.Spec
	f := &zcrxFlows{spec: spec, k: s.kernel(), kind: spec.RxMem, size: spec.ZcrxAreaSize, logf: s.Logf}
	if f.logf == nil {
		f.logf = func(string, ...any) {}
	}
	ifi, err := net.InterfaceByName(spec.Ifname)
	if err != nil {
		return nil, zcrx.Support{}, fmt.Errorf("zcrx: interface %s: %w (check -f: the interface must exist in the server's network namespace)", spec.Ifname, err)
	}
	f.ifname, f.ifindex, f.ifflags = ifi.Name, ifi.Index, ifi.Flags
	if f.size == 0 {
		f.size = DefaultZcrxAreaSize
	}
	if f.kind == "" {
		f.kind = "host"
	}
	if err := zcrx.CheckArea(f.size); err != nil {
		return nil, zcrx.Support{}, err
	}
	sup, err := zcrx.Probe()
	if err == nil {
		err = sup.Usable()
	}
	if err != nil {
		return nil, sup, fmt.Errorf("zcrx: %w (see: ncdevmem doctor -f %s)", err, ifi.Name)
	}
	if f.kind == "udmabuf" && !sup.DmabufAreas() {
		return nil, sup, fmt.Errorf("zcrx --rx-mem udmabuf: kernel %d.%d has no dma-buf areas (IORING_ZCRX_AREA_DMABUF came with 6.16): use --rx-mem host", sup.Major, sup.Minor)
	}
	return f, sup, nil
}

// pickQueues chooses the queues as devmem RX does (--queues, or the last --num-rx-queues) and
// splits the area between them.
func (f *zcrxFlows) pickQueues() (err error) {
	if f.client, err = f.k.dial(); err != nil {
		return fmt.Errorf("zcrx: %w", err)
	}
	qs, err := f.client.Queues(f.ifindex)
	if err != nil {
		return fmt.Errorf("zcrx: %w", err)
	}
	if f.queues, err = rxQueues(f.spec, &net.Interface{Name: f.ifname, Flags: f.ifflags}, qs); err != nil {
		return fmt.Errorf("zcrx: %w", err)
	}
	if q, held := heldQueue(qs, f.queues); held {
		return fmt.Errorf("zcrx: %s queue %d is already held by a memory provider (dma-buf %d or io_uring zcrx): another run or tool is using it; pick other --queues", f.ifname, q.ID, q.Dmabuf)
	}
	n := int64(len(f.queues))
	f.per = f.size / n &^ (4096 - 1)
	if n > 1 && f.per < zcrx.MinAreaSize {
		return fmt.Errorf("zcrx: a %d-byte area split over %d queues leaves %d bytes each, below the %d KiB minimum per queue (raise --zcrx-area-size or use fewer queues)", f.size, n, f.per, zcrx.MinAreaSize>>10)
	}
	return nil
}

// heldQueue returns the first of queues that a memory provider already holds.
func heldQueue(qs []bind.Queue, queues []uint32) (bind.Queue, bool) {
	for _, q := range qs {
		if q.Type == bind.QueueRX && slices.Contains(queues, q.ID) && q.Held() {
			return q, true
		}
	}
	return bind.Queue{}, false
}

// checkMemory refuses an area the kernel would not pin: a udmabuf over the module's size limit, or
// more locked memory than RLIMIT_MEMLOCK allows (m, from zcrx.ReadMemlock; without CAP_IPC_LOCK).
func (f *zcrxFlows) checkMemory(m zcrx.Memlock, err error) error {
	host := f.kind != "udmabuf"
	if !host {
		if err := f.k.validate(f.kind, f.per); err != nil {
			return fmt.Errorf("zcrx --rx-mem udmabuf: %w", err)
		}
	}
	if err != nil {
		f.logf("zcrx: cannot check the locked-memory limit: %v", err)
		return nil
	}
	return m.CheckCharge(zcrx.Charge(len(f.queues), f.per, host), host)
}

// prepare prepares the NIC for the queues and steers the flows to them: devmem's setup path
// without a binding (the ifqs are the memory provider).
func (f *zcrxFlows) prepare(ctx context.Context, local netip.AddrPort) (err error) {
	f.setup, err = devmem.Open(ctx, devmem.Config{Ifname: f.ifname, Ifindex: f.ifindex, Queues: f.queues,
		Flows: []nic.Flow{{Dst: local}}, NoSetup: f.spec.NoSetup, StateDir: f.spec.StateDir,
		DryRun: f.spec.DryRun, Log: logWriter(f.logf), NIC: f.k.nic, NoBind: true})
	if err != nil {
		return fmt.Errorf("zcrx: %w", err)
	}
	return nil
}

// register makes queue's area, ring and ifq, and starts the receiver thread that drives them.
func (f *zcrxFlows) register(queue uint32, sup zcrx.Support) (err error) {
	zq := &zcrxQueue{queue: queue}
	f.qs = append(f.qs, zq)
	cfg := zcrx.IfqConfig{Ifname: f.ifname, Ifindex: f.ifindex, Queue: queue, DmabufFD: -1, CopyStats: sup.CopyStats()}
	if f.kind == "udmabuf" {
		if zq.buf, err = f.k.open(f.kind, f.per); err != nil {
			return fmt.Errorf("zcrx --rx-mem udmabuf: %w", err)
		}
		m, ok := zq.buf.(dmabuf.Mapped)
		if !ok {
			return errors.New("zcrx --rx-mem udmabuf: the dma-buf has no CPU mapping to validate from")
		}
		cfg.Area, cfg.DmabufFD = m.Bytes(), zq.buf.FD()
	} else {
		if zq.host, err = zcrx.HostArea(f.per); err != nil {
			return err
		}
		cfg.Area = zq.host
	}
	ring, err := zcrx.NewRing(zcrx.RingEntries, zcrx.RingCQEntries, true)
	if err != nil {
		return fmt.Errorf("zcrx: %w", err)
	}
	q, err := ring.RegisterIfq(cfg)
	if err != nil {
		ring.Close()
		return err
	}
	zq.ifq, zq.bufLen = q.ID, q.BufLen
	if zq.recv, err = zcrx.NewReceiver(ring, q, zcrxRefillBatch); err != nil {
		ring.Close()
		q.Close()
		return fmt.Errorf("zcrx: %w", err)
	}
	f.logf("zcrx: %d-byte %s area registered on %s queue %d as zcrx ifq %d (%d-byte buffers)", f.per, f.kind, f.ifname, queue, q.ID, q.BufLen)
	return nil
}

// zcrxRcvbuf is the SO_RCVBUF each flow gets so that the flows cannot fill an area with packets
// the receiver has not seen, or 0 to leave the kernel's autotuning alone (when its maximum, rmemMax,
// already fits). Every packet holds a whole area buffer, in the socket's receive or out-of-order
// queue until RECV_ZC takes it, then until the refill ring gives it back: a window wider than the
// area lets the out-of-order queue behind one lost packet take every buffer, so the retransmission
// finds none and is dropped again, and the flow stalls. The kernel doubles SO_RCVBUF and charges
// each packet at least its buffer's full size, so an eighth of the area per flow (in the worst
// case every flow lands on one queue) bounds what the sockets hold to a quarter of the area; the
// rest covers what the receiver holds between a completion and its return (its refill batch and
// what it has not reaped yet: RECV_ZC takes data out of the socket, which reopens the window,
// before the receiver has seen it).
func zcrxRcvbuf(perArea int64, flows int, rmemMax int64) int {
	v := perArea / int64(8*max(flows, 1))
	if rmemMax > 0 && 2*v >= rmemMax {
		return 0
	}
	return int(max(v, 4096))
}

// tcpRmemMax is the autotuning maximum of a TCP receive buffer (net.ipv4.tcp_rmem), 0 if unknown.
func tcpRmemMax() int64 {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_rmem")
	if err != nil {
		return 0
	}
	fs := strings.Fields(string(b))
	if len(fs) != 3 {
		return 0
	}
	n, _ := strconv.ParseInt(fs[2], 10, 64)
	return n
}

// zcrxQueue is one queue's ifq: its area, and the receiver driving its ring.
type zcrxQueue struct {
	queue  uint32
	ifq    uint32
	bufLen uint32
	buf    dmabuf.Buffer
	host   []byte
	recv   *zcrx.Receiver
	pinned bool
}

// zcrxFlows is a prepared zcrx target: NIC set up, one ifq and receiver per queue.
type zcrxFlows struct {
	spec    *TestSpec
	k       *devmemKernel
	ifname  string
	ifindex int
	ifflags net.Flags
	kind    string
	size    int64 // --zcrx-area-size, split between the queues
	per     int64 // each queue's area
	queues  []uint32
	rcvbuf  int // SO_RCVBUF of each flow, 0: the kernel's
	logf    func(string, ...any)

	client netdevClient
	setup  *devmem.Setup
	qs     []*zcrxQueue

	mu   sync.Mutex // client, pinned
	win  window
	zs   [2]zcrx.Snapshot
	once sync.Once
	cerr error
}

func (*zcrxFlows) Control(string, string, syscall.RawConn) error { return nil }

func (*zcrxFlows) Sender(int, syscall.RawConn) (tx.Engine, error) {
	return nil, errors.New("zcrx: the target does not send")
}

func (f *zcrxFlows) Receiver(id int, rc syscall.RawConn) (rx.Engine, error) {
	if len(f.qs) == 0 {
		return nil, errors.New("zcrx: no ifq registered (dry run)")
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return nil, fmt.Errorf("zcrx flow %d: %w", id, err)
	}
	zq, err := f.queueOf(fd)
	if err != nil {
		return nil, fmt.Errorf("zcrx flow %d: %w", id, err)
	}
	if len(f.qs) > 1 {
		f.logf("zcrx: flow %d arrives on %s queue %d (zcrx ifq %d)", id, f.ifname, zq.queue, zq.ifq)
	}
	e := &zcrxEngine{f: f, q: zq, id: id, fd: fd, every: f.spec.Validate.Every}
	if f.spec.Validate.On() {
		e.verify = func(p []byte, off uint64) error { return pattern.Check(id, p, off) }
	}
	return e, nil
}

// queueOf is the ifq of the queue the socket fd's packets arrive on: the only one, or the one
// whose queue has the socket's NAPI (SO_INCOMING_NAPI_ID, set from the handshake's last packet).
// RECV_ZC on any other ifq would fail: the buffers are not its own.
func (f *zcrxFlows) queueOf(fd int) (*zcrxQueue, error) {
	if len(f.qs) == 1 {
		return f.qs[0], nil
	}
	napi, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_INCOMING_NAPI_ID)
	if err != nil {
		return nil, fmt.Errorf("SO_INCOMING_NAPI_ID: %w (the flow's queue cannot be told, so neither can its zcrx ifq)", err)
	}
	if napi == 0 {
		return nil, fmt.Errorf("the connection has no NAPI id (the device has no NAPI, or the flow is not steered to the zcrx queues %s)", rx.QueueList(f.queues))
	}
	f.mu.Lock()
	qs, err := f.client.Queues(f.ifindex)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	q, ok := bind.QueueOfNapi(qs, uint32(napi))
	if !ok {
		return nil, fmt.Errorf("the connection arrived through napi %d, which is no RX queue of %s (the flow is not steered to the zcrx queues %s)", napi, f.ifname, rx.QueueList(f.queues))
	}
	for _, zq := range f.qs {
		if zq.queue == q {
			return zq, nil
		}
	}
	return nil, fmt.Errorf("the connection arrived on %s queue %d, which has no zcrx ifq (the steering to queues %s did not hold: check ethtool -n %s and ethtool -x %s)", f.ifname, q, rx.QueueList(f.queues), f.ifname, f.ifname)
}

// DataConn reads a flow's hello through RECV_ZC: on a zcrx queue even the hello's bytes are in
// the area, out of read(2)'s reach. It also caps the socket's receive buffer (zcrxRcvbuf) before
// any payload arrives.
func (f *zcrxFlows) DataConn(c *net.TCPConn) (net.Conn, error) {
	if len(f.qs) == 0 {
		return c, nil
	}
	if f.rcvbuf > 0 {
		if err := c.SetReadBuffer(f.rcvbuf); err != nil {
			return nil, fmt.Errorf("zcrx: SO_RCVBUF %d: %w", f.rcvbuf, err)
		}
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("zcrx: data connection: %w", err)
	}
	fd := -1
	rc.Control(func(u uintptr) { fd = int(u) })
	zq, err := f.queueOf(fd)
	if err != nil {
		return nil, fmt.Errorf("zcrx: data connection: %w", err)
	}
	return &zcrxDataConn{TCPConn: c, r: zq.recv, fd: fd}, nil
}

type zcrxDataConn struct {
	*net.TCPConn
	r  *zcrx.Receiver
	fd int

	mu sync.Mutex
	rd time.Time
}

func (c *zcrxDataConn) SetDeadline(t time.Time) error {
	c.setRead(t)
	return c.TCPConn.SetDeadline(t)
}

func (c *zcrxDataConn) SetReadDeadline(t time.Time) error {
	c.setRead(t)
	return c.TCPConn.SetReadDeadline(t)
}

func (c *zcrxDataConn) setRead(t time.Time) {
	c.mu.Lock()
	c.rd = t
	c.mu.Unlock()
}

func (c *zcrxDataConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(c.fd, p, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.rd.IsZero() && time.Now().After(c.rd)
	})
	if errors.Is(err, zcrx.ErrExpired()) {
		err = fmt.Errorf("zcrx: %w", os.ErrDeadlineExceeded)
	}
	return n, err
}

// zcrxEngine is one flow: it arms the flow's RECV_ZC on its queue's ring and waits for the flow
// to end or for the bench's stop (the connection's read deadline). The ring's thread does the work.
type zcrxEngine struct {
	f      *zcrxFlows
	q      *zcrxQueue
	id     int
	fd     int
	every  int
	verify func([]byte, uint64) error
}

// deadlinePassed reports whether rc's read deadline has passed: the runtime answers a raw read
// with ErrDeadlineExceeded before calling the function when it has.
func deadlinePassed(rc syscall.RawConn) bool {
	err := rc.Read(func(uintptr) bool { return true })
	return errors.Is(err, os.ErrDeadlineExceeded)
}

func (e *zcrxEngine) Receive(rc syscall.RawConn, st *rx.Stats) error {
	f, zq := e.f, e.q
	f.mu.Lock()
	if !zq.pinned {
		// A ring's work belongs to the app CPU of the first flow on it, where the bench pinned
		// this thread.
		zq.pinned = true
		if err := zq.recv.Pin(); err != nil {
			f.logf("zcrx: could not move queue %d's ring thread to flow %d's CPUs: %v", zq.queue, e.id, err)
		}
	}
	f.mu.Unlock()
	fl, err := zq.recv.Arm(e.id, e.fd, e.verify, e.every, &st.Bytes)
	if err != nil {
		return err
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-fl.Done():
			return fl.Err()
		case <-t.C:
			if deadlinePassed(rc) {
				zq.recv.Stop(fl)
				<-fl.Done()
				if err := fl.Err(); err != nil {
					return err
				}
				return fmt.Errorf("zcrx flow %d: %w", e.id, os.ErrDeadlineExceeded)
			}
		}
	}
}

// snapshotZcrx sums the receivers' counters.
func (f *zcrxFlows) snapshotZcrx() zcrx.Snapshot {
	var s zcrx.Snapshot
	for _, zq := range f.qs {
		s.Add(zq.recv.Snapshot())
	}
	return s
}

func (f *zcrxFlows) WindowStart() error {
	f.zs[0] = f.snapshotZcrx()
	f.win.start(&report.Devmem{}, f.hw())
	return nil
}

func (f *zcrxFlows) WindowEnd() error {
	f.zs[1] = f.snapshotZcrx()
	f.win.end(&report.Devmem{}, f.hw())
	return nil
}

// Report is the window's qstats and page-pool deltas with the zcrx counters of all the queues
// (Queue is the first of them; AreaBytes the areas together).
func (f *zcrxFlows) Report() *report.Devmem {
	d := f.win.report()
	if d == nil || len(f.qs) == 0 {
		return d
	}
	w := f.zs[1].Sub(f.zs[0])
	z := &report.Zcrx{Queue: f.queues[0], Area: f.kind, AreaBytes: uint64(f.per) * uint64(len(f.qs)), BufLen: f.qs[0].bufLen,
		Bytes: w.Bytes, Completions: w.Completions, RefillBatches: w.RefillBatches, RefillEntries: w.RefillEntries,
		RefillStalls: w.RefillStalls, Rearms: w.Rearms, CopyCounted: w.CopyKnown, CopyCount: w.CopyCount, CopyBytes: w.CopyBytes}
	if z.Completions > 0 {
		z.AvgCompletion = float64(z.Bytes) / float64(z.Completions)
	}
	d.Zcrx = z
	return d
}

// hw reads the zcrx queues' qstats and the page pools io_uring holds on them (page-pool-get's
// io-uring attribute), as devmem's snapshot does for its bound queues.
func (f *zcrxFlows) hw() hwStats {
	if f.client == nil || len(f.qs) == 0 {
		return hwStats{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return queueHW(f.client, f.ifindex, f.queues, func(p bind.PagePool) bool { return p.IOUring },
		func(what string, err error) { f.win.note(f.logf, what, err) })
}

// waitReleased polls the netdev family until no zcrx queue has a memory provider.
func (f *zcrxFlows) waitReleased(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		qs, err := f.client.Queues(f.ifindex)
		if err != nil {
			return fmt.Errorf("zcrx: waiting for %s queues %s to be released: %w", f.ifname, rx.QueueList(f.queues), err)
		}
		held := -1
		for _, q := range qs {
			if q.Type == bind.QueueRX && q.IOUring && slices.ContainsFunc(f.qs, func(zq *zcrxQueue) bool { return zq.queue == q.ID }) {
				held = int(q.ID)
			}
		}
		if held < 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("zcrx: %s queue %d still held by io_uring %v after the ring was closed (the kernel's ring teardown is late; run: ncdevmem cleanup -f %s once it is released)", f.ifname, held, limit, f.ifname)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close closes the rings (the kernel unregisters the ifqs and restarts the queues without them),
// restores the NIC, then frees the areas, the order devmem RX tears down in.
func (f *zcrxFlows) Close() error {
	f.once.Do(func() {
		var errs []error
		for _, zq := range f.qs {
			if zq.recv != nil {
				errs = append(errs, zq.recv.Close())
			}
		}
		if f.client != nil && len(f.qs) > 0 {
			// Closing a ring only queues its teardown: the kernel gives the queue back from a
			// workqueue a little later, and while it holds the queue it refuses to turn header
			// split off. Wait for the queues before restoring the NIC.
			errs = append(errs, f.waitReleased(10*time.Second))
		}
		if f.setup != nil {
			errs = append(errs, f.setup.Close())
		}
		for _, zq := range f.qs {
			if zq.buf != nil {
				errs = append(errs, zq.buf.Close())
			}
			if zq.host != nil {
				errs = append(errs, zcrx.FreeHostArea(zq.host))
			}
		}
		if f.client != nil {
			errs = append(errs, f.client.Close())
		}
		f.cerr = errors.Join(errs...)
	})
	return f.cerr
}
