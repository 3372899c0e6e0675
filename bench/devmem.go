// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/devmem"
	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/pattern"
	"github.com/devmemtcp/ncdevmem/report"
	"github.com/devmemtcp/ncdevmem/rx"
	"github.com/devmemtcp/ncdevmem/tx"
)

// DefaultDmabufSize is the dma-buf size when --dmabuf-size is not given: the C ncdevmem's 16000
// pages, which fits udmabuf's default 64 MiB size limit.
const DefaultDmabufSize = 16000 * 4096

// devmemDatapath is devmem TCP: the target receives into a dma-buf bound to RX queues of
// spec.Ifname (rx.Devmem), the source sends from a dma-buf bound for TX (tx.Devmem).
type devmemDatapath struct{}

func (devmemDatapath) Name() string { return "devmem" }

func (devmemDatapath) Handles(spec *TestSpec, role Role) bool {
	if role == RoleTarget {
		return spec.DevmemRX
	}
	return spec.DevmemTX
}

// logWriter turns the NIC package's log lines into the session's notes.
type logWriter func(format string, args ...any)

func (w logWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if l != "" {
			w("%s", l)
		}
	}
	return len(p), nil
}

// Setup prepares one devmem role. Each step undoes the earlier ones when it fails, so a refused
// request leaves the NIC, the buffers and the journal as they were.
func (devmemDatapath) Setup(ctx context.Context, s Setup) (Flows, error) {
	spec := s.Spec
	k := s.kernel()
	logf := s.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if spec.Ifname == "" {
		return nil, errors.New("devmem: no interface (add -f IFNAME)")
	}
	ifi, err := net.InterfaceByName(spec.Ifname)
	if err != nil {
		return nil, fmt.Errorf("devmem: interface %s: %w (check -f: the interface must exist in the server's network namespace)", spec.Ifname, err)
	}
	size := spec.DmabufSize
	if size == 0 {
		size = DefaultDmabufSize
	}
	kind := spec.RxMem
	if s.Role == RoleSource {
		kind = spec.TxMem
	}
	if kind == "" {
		kind = "udmabuf"
	}
	flag := map[Role]string{RoleTarget: "--rx-mem", RoleSource: "--tx-mem"}[s.Role]
	if kind == "host" {
		return nil, fmt.Errorf("devmem %s host: plain host memory has no dma-buf to bind (use %s udmabuf, or cuda in a cuda build)", flag, flag)
	}
	if err := k.validate(kind, size); err != nil {
		err = fmt.Errorf("devmem %s %s: %w", flag, kind, err)
		if !spec.DryRun {
			return nil, err
		}
		// A dry run still shows the NIC changes; the memory problem goes along as a note.
		logf("devmem: a real run would fail: %v", err)
	}
	if s.Role == RoleSource {
		return setupDevmemTX(ctx, k, spec, ifi, kind, size, logf)
	}
	return setupDevmemRX(ctx, k, s, ifi, kind, size, logf)
}

// rxQueues picks the devmem RX queues: --queues, or the last --num-rx-queues queues, or (as the C
// ncdevmem does) the last one; queue 0 up to the first devmem queue keep RSS traffic. ifi's name
// and flags shape the advice: the loopback device has one queue and no way to get more, so it is
// told to name a NIC instead.
func rxQueues(spec *TestSpec, ifi *net.Interface, queues []bind.Queue) ([]uint32, error) {
	ifname := ifi.Name
	raise := func(n string) string { return fmt.Sprintf("raise them with: ethtool -L %s combined %s", ifname, n) }
	if ifi.Flags&net.FlagLoopback != 0 {
		raise = func(string) string {
			return "the loopback device cannot have more, nor a page pool or DMA: name a NIC with -f (check one with: ncdevmem doctor -f IFNAME), or leave out --devmem-rx/--zcrx to measure host memory over loopback"
		}
	}
	var n uint32
	for _, q := range queues {
		if q.Type == bind.QueueRX {
			n++
		}
	}
	if len(spec.Queues) > 0 {
		out := make([]uint32, 0, len(spec.Queues))
		for _, q := range spec.Queues {
			if uint32(q) >= n {
				return nil, fmt.Errorf("--queues: queue %d out of range (%s has %d RX queues; %s)", q, ifname, n, raise("N"))
			}
			out = append(out, uint32(q))
		}
		return out, nil
	}
	want := uint32(max(spec.NumRXQueues, 1))
	if n < want+1 {
		return nil, fmt.Errorf("%s has %d RX queue(s), and zero-copy receive needs %d for itself plus at least one for other traffic (%s)", ifname, n, want, raise(strconv.Itoa(int(want+1))))
	}
	out := make([]uint32, 0, want)
	for q := n - want; q < n; q++ {
		out = append(out, q)
	}
	return out, nil
}

func setupDevmemRX(ctx context.Context, k *devmemKernel, s Setup, ifi *net.Interface, kind string, size int64, logf func(string, ...any)) (_ Flows, err error) {
	spec := s.Spec
	f := &devmemRXFlows{k: k, spec: spec, ifname: ifi.Name, ifindex: ifi.Index, logf: logf}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if f.client, err = k.dial(); err != nil {
		return nil, fmt.Errorf("devmem rx: %w", err)
	}
	qs, err := f.client.Queues(ifi.Index)
	if err != nil {
		return nil, fmt.Errorf("devmem rx: %w", err)
	}
	if f.queues, err = rxQueues(spec, ifi, qs); err != nil {
		return nil, fmt.Errorf("devmem rx: %w", err)
	}
	for _, q := range qs {
		if q.Type == bind.QueueRX && slices.Contains(f.queues, q.ID) && q.Held() {
			return nil, fmt.Errorf("devmem rx: %s queue %d is already held by a memory provider (dma-buf %d or io_uring zcrx): another run or tool is using it; pick other --queues", ifi.Name, q.ID, q.Dmabuf)
		}
	}
	if !spec.NoSetup {
		f.srcPorts = pickSourcePorts(spec.Flows)
	}
	flows := flowsFor(s.Local, f.srcPorts)
	f.rule = fmt.Sprintf("%s -> queues %s (set up by the user: --no-setup)", flows[0], rx.QueueList(f.queues))
	f.setup, err = devmem.Open(ctx, devmem.Config{
		Ifname: ifi.Name, Ifindex: ifi.Index, Queues: f.queues, Flows: flows,
		NoSetup: spec.NoSetup, StateDir: spec.StateDir, DryRun: spec.DryRun, Log: logWriter(logf), NIC: k.nic,
		UseRSSContext: useRSSContext(spec), RxPageSize: spec.RxPageSize,
		Alloc: func() (dmabuf.Buffer, error) {
			if err := testHold(ctx, holdDevmemAlloc); err != nil {
				return nil, stopped(ctx, "allocating the dma-buf")
			}
			return within(ctx, "allocating the dma-buf", rxAlloc(k, kind, size, spec.RxPageSize), closeBuffer)
		},
		BindRX: func(req bind.RXRequest) (devmem.Binding, error) {
			if ctx.Err() != nil {
				return nil, stopped(ctx, "binding the dma-buf")
			}
			return k.bindRX(req.Ifindex, req.Queues, req.DmabufFD)
		},
	})
	switch devmem.StepOf(err) {
	case "":
	case devmem.StepAlloc:
		return nil, fmt.Errorf("devmem rx --rx-mem %s: %w", kind, err)
	default:
		return nil, fmt.Errorf("devmem rx: %w", err)
	}
	if rules := f.setup.Rules(); len(rules) > 0 {
		names := make([]string, len(rules))
		for i, r := range rules {
			names[i] = r.String()
		}
		f.rule = strings.Join(names, "; ")
	}
	if spec.DryRun {
		logf("devmem rx: would allocate a %d-byte %s dma-buf and bind it to %s queues %s", size, kind, ifi.Name, rx.QueueList(f.queues))
		return f, nil
	}
	f.buf, f.binding, f.niov = f.setup.Buf, f.setup.Binding, f.setup.NiovSize
	logf("devmem rx: %d-byte %s dma-buf bound to %s queues %s as dma-buf id %d", size, kind, ifi.Name, rx.QueueList(f.queues), f.binding.ID())
	return f, nil
}

// holdDevmemAlloc is a point of the NCDEVMEM_TEST_HOLD hook (not a client phase): a devmem setup
// holds there once the NIC is prepared, before it allocates its dma-buf.
const holdDevmemAlloc Phase = "devmem-alloc"

// within runs step, a setup step that cannot be interrupted (allocating, pinning and filling a
// large dma-buf), and returns its result, or an error as soon as ctx ends, so a stopping server
// restores the NIC at once. A result that comes after that is given to release. step runs on
// another thread: it must not depend on the caller's network namespace (binding does: netlink
// and the ifindex are per namespace, so the bind steps only check ctx before they start).
func within[T any](ctx context.Context, what string, step func() (T, error), release func(T)) (T, error) {
	var zero T
	if ctx.Err() != nil {
		return zero, stopped(ctx, what)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := step()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				release(r.v)
			}
		}()
		return zero, stopped(ctx, what)
	}
}

// stopped is the error of a setup step that ctx ended.
func stopped(ctx context.Context, what string) error {
	return fmt.Errorf("stopped while %s: %w", what, context.Cause(ctx))
}

func closeBuffer(b dmabuf.Buffer) { b.Close() }

// devmemRXFlows is a prepared devmem target: NIC set up, dma-buf bound, one rx.Devmem per flow.
type devmemRXFlows struct {
	k       *devmemKernel
	spec    *TestSpec
	ifname  string
	ifindex int
	logf    func(string, ...any)
	queues  []uint32
	rule    string
	// srcPorts are the flows' source ports, chosen for one ntuple rule per flow (nil: --no-setup).
	srcPorts []uint16
	napi     napiState

	client  netdevClient
	setup   *devmem.Setup // the NIC preparation, dma-buf and binding (nil before Open succeeds)
	buf     dmabuf.Buffer
	binding devmem.Binding
	niov    int

	mu    sync.Mutex // client
	bufMu sync.Mutex // the providers are safe for one goroutine at a time; the flows share buf
	win   window
	once  sync.Once
	cerr  error
}

func (*devmemRXFlows) Control(string, string, syscall.RawConn) error { return nil }

// devmemReadSize is the payload one recvmsg of a devmem flow may take: --read-size, but at most an
// eighth of what the flow may hold (never under a page). A recvmsg's frags stay held until their
// tokens go back, so reads as large as the flow's share of a small dma-buf leave the NIC's page
// pool empty while the socket still has data queued: the pool-exhaustion drops then pile up into
// retransmission timeouts (seen on softnic with a 1 MiB dma-buf and 512 KiB reads).
func devmemReadSize(readSize int, hold int64) int {
	return int(min(int64(readSize), max(hold/8, 4096)))
}

// SourcePorts are the source ports the source must bind, one per flow (bench/flowrules.go).
func (f *devmemRXFlows) SourcePorts() []uint16 { return f.srcPorts }

func (f *devmemRXFlows) Receiver(id int, rc syscall.RawConn) (rx.Engine, error) {
	if f.binding == nil {
		return nil, errors.New("devmem rx: no dma-buf binding (dry run)")
	}
	f.napi.add(id, rc)
	// The flows share the buffer: together they may pin at most half of it.
	hold := max(f.buf.Size()/int64(2*max(f.spec.Flows, 1)), 64<<10)
	read := devmemReadSize(f.spec.ReadSize, hold)
	if read < f.spec.ReadSize && id == 0 {
		f.logf("devmem rx: %d bytes per recvmsg (not --read-size %d): each flow may hold %d bytes of the %d-byte dma-buf", read, f.spec.ReadSize, hold, f.buf.Size())
	}
	cfg := rx.DevmemConfig{
		Buf: share(f.buf, &f.bufMu), DmabufID: f.binding.ID(), ReadSize: read,
		Every: f.spec.Validate.Every, FailLinear: f.spec.FailLinear,
		HoldBytes: hold,
		Ifname:    f.ifname, Queues: f.queues, Rule: f.rule,
		QueueOfNapi: f.queueOfNapi, Sys: f.k.rxSys, NiovSize: f.niov,
	}
	if f.spec.Validate.On() {
		cfg.Verify = func(p []byte, off uint64) error { return pattern.Check(id, p, off) }
	}
	e, err := rx.NewDevmem(cfg)
	if err != nil {
		return nil, err
	}
	f.win.addEngine(e.Stats.AddTo)
	return e, nil
}

// DataConn returns the accepted data connection c as the session should read its hello through:
// on a devmem queue the hello's bytes land in the dma-buf like any payload, where read(2) cannot
// reach them (EFAULT), so reads go through rx.DevmemReader, which copies them out, returns their
// tokens and never reads past what was asked. Writes (the ack) go to c unchanged.
func (f *devmemRXFlows) DataConn(c *net.TCPConn) (net.Conn, error) {
	if f.binding == nil {
		return c, nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("devmem rx: data connection: %w", err)
	}
	return &devmemDataConn{TCPConn: c, r: rx.NewDevmemReader(rc, share(f.buf, &f.bufMu), f.binding.ID(), f.k.rxSys)}, nil
}

type devmemDataConn struct {
	*net.TCPConn
	r *rx.DevmemReader
}

func (c *devmemDataConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (*devmemRXFlows) Sender(int, syscall.RawConn) (tx.Engine, error) {
	return nil, errors.New("devmem rx: the target does not send")
}

func (f *devmemRXFlows) queueOfNapi(id uint32) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	qs, err := f.client.Queues(f.ifindex)
	if err != nil {
		return -1, err
	}
	q, ok := bind.QueueOfNapi(qs, id)
	if !ok {
		return -1, fmt.Errorf("no RX queue of %s has napi %d", f.ifname, id)
	}
	return int(q), nil
}

func (f *devmemRXFlows) WindowStart() error { f.win.start(f.win.engineSum(), f.snapshot()); return nil }

func (f *devmemRXFlows) WindowEnd() error {
	f.win.end(f.win.engineSum(), f.snapshot())
	f.recordNapi()
	return nil
}

func (f *devmemRXFlows) Report() *report.Devmem { return f.withNapi(f.win.report()) }

// snapshot reads the bound queues' qstats and their page pools' stats. Either may be missing
// (a driver without qstats, a kernel without CONFIG_PAGE_POOL_STATS): that is noted once, not an
// error.
func (f *devmemRXFlows) snapshot() hwStats {
	if f.client == nil || f.binding == nil {
		return hwStats{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return queueHW(f.client, f.ifindex, f.queues, func(p bind.PagePool) bool { return p.Dmabuf == f.binding.ID() },
		func(what string, err error) { f.win.note(f.logf, what, err) })
}

// queueHW reads the per-queue RX qstats of queues on ifindex and the stats of the page pools
// that ours selects: the hardware side of a window, for devmem (pools bound to our dma-buf) and
// zcrx (pools held by io_uring) alike. A failed read is passed to note and leaves its map nil.
func queueHW(c netdevClient, ifindex int, queues []uint32, ours func(bind.PagePool) bool, note func(string, error)) hwStats {
	var h hwStats
	if qs, err := c.QstatsQueues(ifindex); err != nil {
		note("qstats", err)
	} else {
		h.qstats = map[string]uint64{}
		for i := range qs {
			q := &qs[i]
			if q.PerQueue && q.QueueType == bind.QueueRX && slices.Contains(queues, q.QueueID) {
				for k, v := range q.Map() {
					h.qstats[k] += v
				}
			}
		}
	}
	pools, err := c.PagePools(ifindex)
	if err != nil {
		note("page-pool", err)
		return h
	}
	mine := map[uint64]bool{}
	for _, p := range pools {
		if ours(p) {
			mine[p.ID] = true
		}
	}
	st, err := c.PagePoolStats(ifindex)
	if err != nil {
		note("page-pool-stats", err)
		return h
	}
	h.pp = map[string]uint64{}
	for i := range st {
		if mine[st[i].PoolID] {
			for k, v := range st[i].Map() {
				h.pp[k] += v
			}
		}
	}
	return h
}

// Close unbinds (closing the netlink socket), restores the NIC, then frees the dma-buf, the order
// the C tool tears down in.
func (f *devmemRXFlows) Close() error {
	f.once.Do(func() {
		var errs []error
		if f.setup != nil {
			errs = append(errs, f.setup.Close())
		}
		if f.client != nil {
			errs = append(errs, f.client.Close())
		}
		f.cerr = errors.Join(errs...)
	})
	return f.cerr
}

func setupDevmemTX(ctx context.Context, k *devmemKernel, spec *TestSpec, ifi *net.Interface, kind string, size int64, logf func(string, ...any)) (_ Flows, err error) {
	f := &devmemTXFlows{k: k, spec: spec, ifname: ifi.Name}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	per := size / int64(max(spec.Flows, 1)) / 4096 * 4096
	if per < pattern.Period {
		return nil, fmt.Errorf("devmem tx: a %d-byte dma-buf split over %d flows leaves less than %d bytes each (raise --dmabuf-size)", size, spec.Flows, pattern.Period)
	}
	f.per = per
	if spec.DryRun {
		logf("devmem tx: would allocate a %d-byte %s dma-buf, fill it with the pattern and bind it for TX on %s", size, kind, ifi.Name)
		return f, nil
	}
	if err := testHold(ctx, holdDevmemAlloc); err != nil {
		return nil, stopped(ctx, "allocating the dma-buf")
	}
	f.buf, err = within(ctx, "allocating and filling the dma-buf", func() (dmabuf.Buffer, error) {
		buf, err := k.open(kind, size)
		if err != nil {
			return nil, fmt.Errorf("devmem tx --tx-mem %s: %w", kind, err)
		}
		if err := tx.FillDevmem(buf); err != nil {
			buf.Close()
			return nil, err
		}
		return buf, nil
	}, closeBuffer)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, stopped(ctx, "binding the dma-buf")
	}
	if f.binding, err = k.bindTX(ifi.Index, f.buf.FD()); err != nil {
		return nil, fmt.Errorf("devmem tx: %w", err)
	}
	logf("devmem tx: %d-byte %s dma-buf bound for TX on %s as dma-buf id %d", size, kind, ifi.Name, f.binding.ID())
	return f, nil
}

// devmemTXFlows is a prepared devmem source: one TX binding, the buffer split between the flows.
type devmemTXFlows struct {
	k       *devmemKernel
	spec    *TestSpec
	ifname  string
	per     int64
	buf     dmabuf.Buffer
	binding binding

	win  window
	once sync.Once
	cerr error
}

// Control binds each data socket to the device (so the route uses the bound NIC) and turns on
// SO_ZEROCOPY before connect.
func (f *devmemTXFlows) Control(network, address string, c syscall.RawConn) error {
	return tx.Control(f.k.txSys, f.ifname)(network, address, c)
}

func (f *devmemTXFlows) Receiver(int, syscall.RawConn) (rx.Engine, error) {
	return nil, errors.New("devmem tx: the source does not receive")
}

func (f *devmemTXFlows) Sender(id int, _ syscall.RawConn) (tx.Engine, error) {
	if f.binding == nil {
		return nil, errors.New("devmem tx: no dma-buf binding (dry run)")
	}
	e, err := tx.NewDevmem(tx.DevmemConfig{Buf: f.buf, DmabufID: f.binding.ID(), Base: int64(id) * f.per, Length: f.per,
		WriteSize: f.spec.WriteSize, Ifname: f.ifname, Sys: f.k.txSys})
	if err != nil {
		return nil, err
	}
	f.win.addEngine(e.Stats.AddTo)
	return e, nil
}

func (f *devmemTXFlows) WindowStart() error     { f.win.start(f.win.engineSum(), hwStats{}); return nil }
func (f *devmemTXFlows) WindowEnd() error       { f.win.end(f.win.engineSum(), hwStats{}); return nil }
func (f *devmemTXFlows) Report() *report.Devmem { return f.win.report() }

// Close unbinds, then frees the dma-buf.
func (f *devmemTXFlows) Close() error {
	f.once.Do(func() {
		var errs []error
		if f.binding != nil {
			errs = append(errs, f.binding.Close())
		}
		if f.buf != nil {
			errs = append(errs, f.buf.Close())
		}
		f.cerr = errors.Join(errs...)
	})
	return f.cerr
}

// hwStats are cumulative NIC counters for the bound queues, by netdev.yaml name.
type hwStats struct {
	qstats, pp map[string]uint64
}

// window turns cumulative counters into the measurement window's deltas.
type window struct {
	mu      sync.Mutex
	engines []func(*report.Devmem) // each engine's AddTo
	a, b    *report.Devmem
	ha, hb  hwStats
	noted   map[string]bool
}

// addEngine adds an engine's counters (its Stats.AddTo) to those engineSum sums.
func (w *window) addEngine(addTo func(*report.Devmem)) {
	w.mu.Lock()
	w.engines = append(w.engines, addTo)
	w.mu.Unlock()
}

// engineSum is the engines' cumulative counters now.
func (w *window) engineSum() *report.Devmem {
	d := &report.Devmem{}
	w.mu.Lock()
	for _, addTo := range w.engines {
		addTo(d)
	}
	w.mu.Unlock()
	return d
}

func (w *window) note(logf func(string, ...any), what string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.noted == nil {
		w.noted = map[string]bool{}
	}
	if !w.noted[what] && logf != nil {
		logf("devmem: no %s counters for the bound queues: %v", what, err)
	}
	w.noted[what] = true
}

func (w *window) start(d *report.Devmem, h hwStats) {
	w.mu.Lock()
	w.a, w.ha = d, h
	w.mu.Unlock()
}

func (w *window) end(d *report.Devmem, h hwStats) {
	w.mu.Lock()
	w.b, w.hb = d, h
	w.mu.Unlock()
}

func (w *window) report() *report.Devmem {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b == nil {
		return nil
	}
	a := w.a
	if a == nil {
		a = &report.Devmem{}
	}
	d := &report.Devmem{
		DmabufBytes:      w.b.DmabufBytes - a.DmabufBytes,
		LinearBytes:      w.b.LinearBytes - a.LinearBytes,
		Frags:            w.b.Frags - a.Frags,
		PageAlignedFrags: w.b.PageAlignedFrags - a.PageAlignedFrags,
		Tokens:           w.b.Tokens - a.Tokens,
		DontneedCalls:    w.b.DontneedCalls - a.DontneedCalls,
		ShortDontneed:    w.b.ShortDontneed - a.ShortDontneed,
		Qstats:           deltas(w.ha.qstats, w.hb.qstats),
		PagePool:         deltas(w.ha.pp, w.hb.pp),
	}
	for i, hb := range w.b.FragHist {
		if i < len(a.FragHist) {
			hb.Count -= a.FragHist[i].Count
		}
		d.FragHist = append(d.FragHist, hb)
	}
	return d
}

// deltas subtracts counter maps; a counter missing on either side, or one that went backwards
// (a queue restarted), is left out.
func deltas(a, b map[string]uint64) map[string]uint64 {
	if a == nil || b == nil {
		return nil
	}
	out := map[string]uint64{}
	for k, vb := range b {
		if va, ok := a[k]; ok && vb >= va {
			out[k] = vb - va
		}
	}
	return out
}

// share wraps a dma-buf that several flows use at once: the providers (udmabuf, cuda) reuse
// per-buffer state for each sync or copy, so calls are serialised. Bytes needs no lock: the flows
// read disjoint frags, and the mapping does not change.
func share(b dmabuf.Buffer, mu *sync.Mutex) dmabuf.Buffer {
	s := &sharedBuffer{Buffer: b, mu: mu}
	if m, ok := b.(dmabuf.Mapped); ok {
		return &sharedMapped{sharedBuffer: s, m: m}
	}
	return s
}

type sharedBuffer struct {
	dmabuf.Buffer
	mu *sync.Mutex
}

func (s *sharedBuffer) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Buffer.ReadAt(p, off)
}

func (s *sharedBuffer) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Buffer.WriteAt(p, off)
}

// Close is the datapath's job, once, not a flow's.
func (s *sharedBuffer) Close() error { return nil }

type sharedMapped struct {
	*sharedBuffer
	m dmabuf.Mapped
}

func (s *sharedMapped) Bytes() []byte { return s.m.Bytes() }

func (s *sharedMapped) BeginCPU(write bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.BeginCPU(write)
}

func (s *sharedMapped) EndCPU(write bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.EndCPU(write)
}
