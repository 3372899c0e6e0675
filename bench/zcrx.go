// SPDX-License-Identifier: MIT

package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/pattern"
	"github.com/devmemtcp/ncdevmem/report"
	"github.com/devmemtcp/ncdevmem/rx"
	"github.com/devmemtcp/ncdevmem/tx"
	"github.com/devmemtcp/ncdevmem/zcrx"
)

// DefaultZcrxAreaSize is the zcrx area when --zcrx-area-size is not given: the size of devmem's
// default dma-buf, so the two paths are compared with the same memory.
const DefaultZcrxAreaSize = 16000 * 4096

// zcrxRefillBatch is how many buffer returns go to the refill ring per tail store.
const zcrxRefillBatch = 32

// zcrxDatapath is io_uring zero-copy receive on the target: the NIC prepared as for devmem RX
// (nic.Prepare: header split, hds-thresh 0, RSS off the queue, one ntuple rule), an ifq registered
// on the chosen queue with an area in host memory or a udmabuf, multishot RECV_ZC per flow on one
// ring driven from one thread, payload validated in place in the area.
type zcrxDatapath struct{}

func (zcrxDatapath) Name() string { return "zcrx" }

func (zcrxDatapath) Handles(spec *TestSpec, role Role) bool { return role == RoleTarget && spec.Zcrx }

func (zcrxDatapath) Setup(ctx context.Context, s Setup) (_ Flows, err error) {
	spec := s.Spec
	hooks := s.kernel()
	logf := s.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ifi, err := net.InterfaceByName(spec.Ifname)
	if err != nil {
		return nil, fmt.Errorf("zcrx: interface %s: %w (check -f: the interface must exist in the server's network namespace)", spec.Ifname, err)
	}
	size := spec.ZcrxAreaSize
	if size == 0 {
		size = DefaultZcrxAreaSize
	}
	if err := zcrx.CheckArea(size); err != nil {
		return nil, err
	}
	kind := spec.RxMem
	if kind == "" {
		kind = "host"
	}
	sup, err := zcrx.Probe()
	if err == nil {
		err = sup.Usable()
	}
	if err != nil {
		return nil, fmt.Errorf("zcrx: %w (see: ncdevmem doctor -f %s)", err, ifi.Name)
	}
	if kind == "udmabuf" && !sup.DmabufAreas() {
		return nil, fmt.Errorf("zcrx --rx-mem udmabuf: kernel %d.%d has no dma-buf areas (IORING_ZCRX_AREA_DMABUF came with 6.16): use --rx-mem host", sup.Major, sup.Minor)
	}
	if kind == "udmabuf" {
		if err := hooks.validate(kind, size); err != nil {
			return nil, fmt.Errorf("zcrx --rx-mem udmabuf: %w", err)
		}
	}
	f := &zcrxFlows{spec: spec, ifname: ifi.Name, ifindex: ifi.Index, kind: kind, size: size, logf: logf}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if f.client, err = hooks.dial(); err != nil {
		return nil, fmt.Errorf("zcrx: %w", err)
	}
	qs, err := f.client.Queues(ifi.Index)
	if err != nil {
		return nil, fmt.Errorf("zcrx: %w", err)
	}
	queues, err := rxQueues(spec, ifi.Name, qs)
	if err != nil {
		return nil, fmt.Errorf("zcrx: %w", err)
	}
	if len(queues) != 1 {
		return nil, fmt.Errorf("zcrx: %d queues asked for; this version registers one ifq on one queue per run (use --queues Q or --num-rx-queues 1)", len(queues))
	}
	f.queue = queues[0]
	for _, q := range qs {
		if q.Type == bind.QueueRX && q.ID == f.queue && q.Held() {
			return nil, fmt.Errorf("zcrx: %s queue %d is already held by a memory provider (dma-buf %d or io_uring zcrx): another run or tool is using it; pick other --queues", ifi.Name, q.ID, q.Dmabuf)
		}
	}
	if !spec.NoSetup {
		// The same preparation, journal and restore as devmem RX: zcrx needs exactly what devmem
		// needs from the NIC.
		f.nic, err = nic.Prepare(ctx, nic.Request{Ifname: ifi.Name, Queues: []int{int(f.queue)}, Flows: []nic.Flow{{Dst: s.Local}},
			StateDir: spec.StateDir, DryRun: spec.DryRun, Log: logWriter(logf)})
		if err != nil {
			return nil, fmt.Errorf("zcrx: %w", err)
		}
	}
	if spec.DryRun {
		logf("zcrx: would register a %d-byte %s area on %s queue %d (io_uring ring with DEFER_TASKRUN|SINGLE_ISSUER|CQE32)", size, kind, ifi.Name, f.queue)
		return f, nil
	}
	cfg := zcrx.IfqConfig{Ifname: ifi.Name, Ifindex: ifi.Index, Queue: f.queue, DmabufFD: -1, CopyStats: sup.CopyStats()}
	if kind == "udmabuf" {
		if f.buf, err = hooks.open(kind, size); err != nil {
			return nil, fmt.Errorf("zcrx --rx-mem udmabuf: %w", err)
		}
		m, ok := f.buf.(dmabuf.Mapped)
		if !ok {
			return nil, errors.New("zcrx --rx-mem udmabuf: the dma-buf has no CPU mapping to validate from")
		}
		cfg.Area, cfg.DmabufFD = m.Bytes(), f.buf.FD()
	} else {
		if f.host, err = zcrx.HostArea(size); err != nil {
			return nil, err
		}
		cfg.Area = f.host
	}
	ring, err := zcrx.NewRing(64, 8192, true)
	if err != nil {
		return nil, fmt.Errorf("zcrx: %w", err)
	}
	q, err := ring.RegisterIfq(cfg)
	if err != nil {
		ring.Close()
		return nil, err
	}
	f.bufLen = q.BufLen
	if f.recv, err = zcrx.NewReceiver(ring, q, zcrxRefillBatch); err != nil {
		ring.Close()
		q.Close()
		return nil, fmt.Errorf("zcrx: %w", err)
	}
	logf("zcrx: %d-byte %s area registered on %s queue %d as zcrx ifq %d (%d-byte buffers)", size, kind, ifi.Name, f.queue, q.ID, q.BufLen)
	return f, nil
}

// zcrxFlows is a prepared zcrx target: NIC set up, ifq registered, one receiver for all flows.
type zcrxFlows struct {
	spec    *TestSpec
	ifname  string
	ifindex int
	kind    string
	size    int64
	queue   uint32
	bufLen  uint32
	logf    func(string, ...any)

	client netdevClient
	nic    *nic.Setup
	buf    dmabuf.Buffer
	host   []byte
	recv   *zcrx.Receiver

	mu     sync.Mutex
	pinned bool
	win    window
	zs     [2]zcrx.Snapshot
	once   sync.Once
	cerr   error
}

func (*zcrxFlows) Control(string, string, syscall.RawConn) error { return nil }

func (*zcrxFlows) Sender(int, syscall.RawConn) (tx.Engine, error) {
	return nil, errors.New("zcrx: the target does not send")
}

func (f *zcrxFlows) Receiver(id int, _ syscall.RawConn) (rx.Engine, error) {
	if f.recv == nil {
		return nil, errors.New("zcrx: no ifq registered (dry run)")
	}
	e := &zcrxEngine{f: f, id: id, every: f.spec.Validate.Every}
	if f.spec.Validate.On() {
		e.verify = func(p []byte, off uint64) error { return pattern.Check(id, p, off) }
	}
	return e, nil
}

// DataConn reads a flow's hello through RECV_ZC: on the zcrx queue even the hello's bytes are in
// the area, out of read(2)'s reach.
func (f *zcrxFlows) DataConn(c *net.TCPConn) (net.Conn, error) {
	if f.recv == nil {
		return c, nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("zcrx: data connection: %w", err)
	}
	fd := -1
	rc.Control(func(u uintptr) { fd = int(u) })
	return &zcrxDataConn{TCPConn: c, f: f, fd: fd}, nil
}

type zcrxDataConn struct {
	*net.TCPConn
	f  *zcrxFlows
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
	n, err := c.f.recv.Read(c.fd, p, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.rd.IsZero() && time.Now().After(c.rd)
	})
	if errors.Is(err, zcrx.ErrExpired()) {
		err = fmt.Errorf("zcrx: %w", os.ErrDeadlineExceeded)
	}
	return n, err
}

// zcrxEngine is one flow: it arms the flow's RECV_ZC on the shared ring and waits for the flow to
// end or for the bench's stop (the connection's read deadline). The ring's thread does the work.
type zcrxEngine struct {
	f      *zcrxFlows
	id     int
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
	f := e.f
	f.mu.Lock()
	if !f.pinned {
		// The ring's work belongs to the first flow's app CPU, where the bench pinned this thread.
		f.pinned = true
		if err := f.recv.Pin(); err != nil {
			f.logf("zcrx: could not move the ring thread to flow %d's CPUs: %v", e.id, err)
		}
	}
	f.mu.Unlock()
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return fmt.Errorf("zcrx flow %d: %w", e.id, err)
	}
	fl, err := f.recv.Arm(e.id, fd, e.verify, e.every, &st.Bytes)
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
				f.recv.Stop(fl)
				<-fl.Done()
				if err := fl.Err(); err != nil {
					return err
				}
				return fmt.Errorf("zcrx flow %d: %w", e.id, os.ErrDeadlineExceeded)
			}
		}
	}
}

func (f *zcrxFlows) snapshotZcrx() zcrx.Snapshot {
	if f.recv == nil {
		return zcrx.Snapshot{}
	}
	return f.recv.Snapshot()
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

func (f *zcrxFlows) Report() *report.Devmem {
	d := f.win.report()
	if d == nil {
		return nil
	}
	a, b := f.zs[0], f.zs[1]
	z := &report.Zcrx{Queue: f.queue, Area: f.kind, AreaBytes: uint64(f.size), BufLen: f.bufLen,
		Bytes: b.Bytes - a.Bytes, Completions: b.Completions - a.Completions,
		RefillBatches: b.RefillBatches - a.RefillBatches, RefillEntries: b.RefillEntries - a.RefillEntries,
		RefillStalls: b.RefillStalls - a.RefillStalls, Rearms: b.Rearms - a.Rearms,
		CopyCounted: b.CopyKnown, CopyCount: b.CopyCount - a.CopyCount, CopyBytes: b.CopyBytes - a.CopyBytes}
	if z.Completions > 0 {
		z.AvgCompletion = float64(z.Bytes) / float64(z.Completions)
	}
	d.Zcrx = z
	return d
}

// hw reads the zcrx queue's qstats and the page pools io_uring holds on it (page-pool-get's
// io-uring attribute), as devmem's snapshot does for its bound queues.
func (f *zcrxFlows) hw() hwStats {
	if f.client == nil || f.recv == nil {
		return hwStats{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return queueHW(f.client, f.ifindex, []uint32{f.queue}, func(p bind.PagePool) bool { return p.IOUring },
		func(what string, err error) { f.win.note(f.logf, what, err) })
}

// waitReleased polls the netdev family until the zcrx queue has no memory provider.
func (f *zcrxFlows) waitReleased(limit time.Duration) error {
	if f.client == nil {
		return nil
	}
	deadline := time.Now().Add(limit)
	for {
		qs, err := f.client.Queues(f.ifindex)
		if err != nil {
			return fmt.Errorf("zcrx: waiting for %s queue %d to be released: %w", f.ifname, f.queue, err)
		}
		held := false
		for _, q := range qs {
			if q.Type == bind.QueueRX && q.ID == f.queue && q.IOUring {
				held = true
			}
		}
		if !held {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("zcrx: %s queue %d still held by io_uring %v after the ring was closed (the kernel's ring teardown is late; run: ncdevmem cleanup -f %s once it is released)", f.ifname, f.queue, limit, f.ifname)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close closes the ring (the kernel unregisters the ifq and restarts the queue without it),
// restores the NIC, then frees the area, the order devmem RX tears down in.
func (f *zcrxFlows) Close() error {
	f.once.Do(func() {
		var errs []error
		if f.recv != nil {
			errs = append(errs, f.recv.Close())
			// Closing the ring only queues its teardown: the kernel gives the queue back from a
			// workqueue a little later, and while it holds the queue it refuses to turn header
			// split off. Wait for the queue before restoring the NIC.
			errs = append(errs, f.waitReleased(10*time.Second))
		}
		if f.nic != nil {
			errs = append(errs, f.nic.Restore())
		}
		if f.buf != nil {
			errs = append(errs, f.buf.Close())
		}
		if f.host != nil {
			errs = append(errs, zcrx.FreeHostArea(f.host))
		}
		if f.client != nil {
			errs = append(errs, f.client.Close())
		}
		f.cerr = errors.Join(errs...)
	})
	return f.cerr
}
