// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package selftest runs the kernel's devmem TCP selftest (tools/testing/selftests/drivers/net/hw/
// devmem.py) natively and prints its KTAP: the same probe, the same ncdevmem invocations on this
// host (run in-process through package legacy) and the same pass conditions. The remote side,
// which devmem.py drives with socat over ssh, is the peer role of an `ncdevmem server` on the
// other host (bench.PeerClient).
//
// Like devmem.py, every check first requires devmem support (`ncdevmem -f IF` exits 0) and is
// skipped with "Test requires devmem support" otherwise; the exit code is kselftest's: 0 all
// passed, 1 something failed, 4 (KSFT_SKIP) everything was skipped.
//
// The checks change the NIC only through the legacy tool (journaled, restored after each
// invocation); rx_large_niov raises vm.nr_hugepages to 64 for its probe, as devmem.py does, and
// puts the old value back at the end.
package selftest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/devmemtcp/ncdevmem/bench"
	"github.com/devmemtcp/ncdevmem/legacy"
)

// The checks, by the names --only takes.
const (
	CheckProbe       = "probe"         // require_devmem: `ncdevmem -f IF` must exit 0
	CheckRX          = "rx"            // check_rx: 1 KiB of the -v 7 pattern from the peer
	CheckTX          = "tx"            // check_tx: "hello\nworld" to the peer
	CheckTXChunks    = "tx_chunks"     // check_tx_chunks: the same in 3-byte iovecs
	CheckRXHDS       = "rx_hds"        // check_rx_hds: header split for payloads of 1..8192 bytes
	CheckRXLargeNiov = "rx_large_niov" // check_rx_large_niov: 16 KiB rx pages (-b 16384)
)

// Checks is every check, in the order they run.
var Checks = []string{CheckProbe, CheckRX, CheckTX, CheckTXChunks, CheckRXHDS, CheckRXLargeNiov}

// caseNames are the KTAP names: devmem.py's test functions.
var caseNames = map[string]string{
	CheckProbe:       "devmem.require_devmem",
	CheckRX:          "devmem.check_rx",
	CheckTX:          "devmem.check_tx",
	CheckTXChunks:    "devmem.check_tx_chunks",
	CheckRXHDS:       "devmem.check_rx_hds",
	CheckRXLargeNiov: "devmem.check_rx_large_niov",
}

// The payloads and sizes of devmem.py.
var (
	hdsSizes       = []int{1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192}
	largeNiovSizes = []int{1 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10}
)

const (
	rxSize         = 1 << 10 // check_rx: yes ... | head -c 1K
	largeRxPage    = 16384   // check_rx_large_niov: -b 16384
	minHugepages   = 64      // require_devmem raises vm.nr_hugepages to this for -b
	txInput        = "hello\nworld\n"
	txWant         = "hello\nworld"
	skipReason     = "Test requires devmem support"
	stderrLines    = 20 // legacy stderr lines shown on failure
	stderrKeep     = 64 << 10
	listenMarker   = "Waiting or connection on" // the C tool's line once it listens (sic)
	nrHugepages    = "/proc/sys/vm/nr_hugepages"
	meminfo        = "/proc/meminfo"
	hugeWait       = 30 * time.Second // how long rx_large_niov waits for huge pages to come back
	defaultTimeout = 60 * time.Second
)

// Config is one selftest run.
type Config struct {
	// Ifname is the NIC under test (devmem.py's cfg.ifname).
	Ifname string
	// Peer is the control address (host:port) of the `ncdevmem server` on the remote host.
	Peer string
	// Key is the pre-shared key of the peer server (nil: none); Software names this build.
	Key      []byte
	Software string
	// Addr is this host's address on Ifname (cfg.addr); zero: the local address of the control
	// connection, i.e. of the route to the peer.
	Addr netip.Addr
	// PeerAddr is the remote's address on the tested link (cfg.remote_addr); zero: the peer
	// host's address.
	PeerAddr netip.Addr
	// Port is the data port of the first invocation; each further invocation takes the next one,
	// as devmem.py takes a fresh random port for each. 0: random free ports.
	Port int
	// Only restricts the run to these checks (names from Checks); nil runs all.
	Only []string
	// Timeout bounds each ncdevmem invocation and each peer op (60 s when 0).
	Timeout time.Duration

	// system returns the kernel of one legacy invocation (nil: the real one); tests substitute
	// the in-memory NIC and the devmem socket simulator.
	system func() *legacy.System
	// hugepages raises vm.nr_hugepages to at least n and returns how to put it back (nil:
	// /proc/sys/vm/nr_hugepages).
	hugepages func(n int) (restore func() error, err error)
}

// ParseOnly parses a comma-separated list of check names for Config.Only.
func ParseOnly(s string) ([]string, error) {
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(Checks, name) {
			return nil, fmt.Errorf("unknown check %q (want some of %s)", name, strings.Join(Checks, ","))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no checks named in %q (want some of %s)", s, strings.Join(Checks, ","))
	}
	return out, nil
}

// Validate reports a configuration that cannot run, in one line.
func (c *Config) Validate() error {
	if c.Ifname == "" {
		return errors.New("no interface: give -f IF")
	}
	if c.Peer == "" {
		return errors.New("no peer: give --peer HOST (a host running `ncdevmem server`)")
	}
	if _, _, err := net.SplitHostPort(c.Peer); err != nil {
		return fmt.Errorf("peer %q: %v (want HOST:PORT)", c.Peer, err)
	}
	if c.Port < 0 || c.Port > 65535-len(hdsSizes)-len(largeNiovSizes)-3 {
		return fmt.Errorf("port %d out of range (1..%d: the run takes up to %d consecutive ports)", c.Port,
			65535-len(hdsSizes)-len(largeNiovSizes)-3, len(hdsSizes)+len(largeNiovSizes)+3)
	}
	if c.Addr.IsValid() && c.PeerAddr.IsValid() && c.Addr.Unmap().Is4() != c.PeerAddr.Unmap().Is4() {
		return fmt.Errorf("local address %s and peer address %s are of different families", c.Addr, c.PeerAddr)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout %v is negative", c.Timeout)
	}
	for _, name := range c.Only {
		if !slices.Contains(Checks, name) {
			return fmt.Errorf("unknown check %q (want some of %s)", name, strings.Join(Checks, ","))
		}
	}
	return nil
}

func (c *Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return defaultTimeout
}

// peerTimeout is the time limit of a peer op: the invocation's, within what the peer accepts.
func (c *Config) peerTimeout() time.Duration {
	return min(c.timeout(), bench.PeerMaxTimeout)
}

// Run runs the selected checks and writes KTAP to out. It returns the kselftest exit code
// (ExitPass, ExitFail, ExitSkip); the error is a configuration that cannot run (nothing was run)
// or a failure to write out.
func Run(ctx context.Context, cfg Config, out io.Writer) (int, error) {
	if err := cfg.Validate(); err != nil {
		return ExitFail, err
	}
	var checks []string
	for _, name := range Checks {
		if cfg.Only == nil || slices.Contains(cfg.Only, name) {
			checks = append(checks, name)
		}
	}
	r := &runner{cfg: cfg, probes: map[int]*probeResult{}}
	defer r.closePeer()
	k := NewKTAP(out, len(checks))
	for _, name := range checks {
		var res result
		if ctx.Err() != nil {
			res = failf("interrupted before it ran")
		} else {
			res = r.check(ctx, name)
		}
		for _, d := range res.diags {
			k.Diag(d)
		}
		k.Result(caseNames[name], res.status, res.reason)
	}
	for _, restore := range r.restore {
		if err := restore(); err != nil {
			k.Diag(err.Error())
		}
	}
	if err := k.Finish(); err != nil {
		return ExitFail, fmt.Errorf("write KTAP: %w", err)
	}
	return k.Totals().ExitCode(), nil
}

// result is one case's outcome with the diagnostics printed before its line.
type result struct {
	status Status
	reason string
	diags  []string
}

func failf(format string, a ...any) result {
	return result{status: Fail, diags: []string{fmt.Sprintf(format, a...)}}
}

// probeResult is a cached require_devmem answer.
type probeResult struct {
	ok     bool
	reason string
	diag   string
	shown  bool
}

type runner struct {
	cfg     Config
	peer    *bench.PeerClient
	dialErr error
	probes  map[int]*probeResult
	ports   int
	restore []func() error
}

func (r *runner) check(ctx context.Context, name string) result {
	switch name {
	case CheckProbe:
		p := r.require(ctx, 0)
		if !p.ok {
			p.shown = true
			return result{status: Skip, reason: p.reason, diags: []string{p.diag}}
		}
		return result{status: Pass}
	case CheckRX:
		return r.checkRX(ctx)
	case CheckTX:
		return r.checkTX(ctx, nil)
	case CheckTXChunks:
		return r.checkTX(ctx, []string{"-z", "3"})
	case CheckRXHDS:
		return r.checkRXHDS(ctx)
	case CheckRXLargeNiov:
		return r.checkRXLargeNiov(ctx)
	}
	return failf("unknown check %q", name)
}

// skipUnless is require_devmem for rx page size ps (0: the default): ok, or the skip result
// (with the probe's output the first time it is reported).
func (r *runner) skipUnless(ctx context.Context, ps int) (result, bool) {
	p := r.require(ctx, ps)
	if p.ok {
		return result{}, true
	}
	res := result{status: Skip, reason: p.reason}
	if !p.shown {
		p.shown = true
		res.diags = []string{p.diag}
	}
	return res, false
}

// require runs and caches the probe: `ncdevmem -f IF`, and for ps > 0 `ncdevmem -f IF -b ps`
// after raising vm.nr_hugepages, as devmem_lib.py's require_devmem does.
func (r *runner) require(ctx context.Context, ps int) *probeResult {
	if p := r.probes[ps]; p != nil {
		return p
	}
	if ps > 0 {
		if base := r.require(ctx, 0); !base.ok {
			return base
		}
	}
	p := &probeResult{}
	r.probes[ps] = p
	args := []string{"-f", r.cfg.Ifname}
	if ps > 0 {
		if page := os.Getpagesize(); ps%page != 0 {
			p.reason = fmt.Sprintf("rx page size %d is not a multiple of the page size %d", ps, page)
			p.diag = p.reason
			return p
		}
		if err := r.raiseHugepages(); err != nil {
			p.diag = err.Error() + "\n"
		}
		args = append(args, "-b", strconv.Itoa(ps))
	}
	inv := r.start(ctx, args, "").wait()
	if inv.code == legacy.ExitOK {
		p.ok = true
		return p
	}
	p.reason = skipReason
	if ps > 0 {
		p.reason = fmt.Sprintf("%s with rx page size %d", skipReason, ps)
	}
	p.diag += inv.describe()
	return p
}

func (r *runner) raiseHugepages() error {
	raise := r.cfg.hugepages
	if raise == nil {
		raise = raiseNrHugepages
	}
	restore, err := raise(minHugepages)
	if err != nil {
		return err
	}
	r.restore = append(r.restore, restore)
	return nil
}

// raiseNrHugepages sets vm.nr_hugepages to at least n.
func raiseNrHugepages(n int) (func() error, error) {
	b, err := os.ReadFile(nrHugepages)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", nrHugepages, err)
	}
	cur, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %q is not a number", nrHugepages, strings.TrimSpace(string(b)))
	}
	if cur >= n {
		return func() error { return nil }, nil
	}
	if err := os.WriteFile(nrHugepages, []byte(strconv.Itoa(n)), 0o644); err != nil {
		return nil, fmt.Errorf("raise %s from %d to %d for the rx page size probe: %w (run as root)", nrHugepages, cur, n, err)
	}
	return func() error {
		if err := os.WriteFile(nrHugepages, []byte(strconv.Itoa(cur)), 0o644); err != nil {
			return fmt.Errorf("restore %s to %d: %w (echo %d > %s)", nrHugepages, cur, err, cur, nrHugepages)
		}
		return nil
	}, nil
}

// waitHugePagesFree waits, up to max, until the hugetlb pool has need free pages: the pages of
// the previous invocation's dma-buf go back only once the kernel has released its binding's
// page pools, which can lag the process's exit (seen in slow guests: a 96-page pool held too few
// for the sixth size). It returns at once when the pool is too small to ever hold need pages,
// when it cannot be read, or when ctx ends: the invocation then reports the shortage itself.
func waitHugePagesFree(ctx context.Context, need int, max time.Duration) {
	deadline := time.Now().Add(max)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		total, free, ok := hugePages()
		if !ok || total < need || free >= need || time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// hugePages reads HugePages_Total and HugePages_Free from /proc/meminfo.
func hugePages() (total, free int, ok bool) {
	b, err := os.ReadFile(meminfo)
	if err != nil {
		return 0, 0, false
	}
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		x, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		switch k {
		case "HugePages_Total":
			total, n = x, n+1
		case "HugePages_Free":
			free, n = x, n+1
		}
	}
	return total, free, n == 2
}

// dial connects to the peer server once; a failed dial is not retried.
func (r *runner) dial(ctx context.Context) (*bench.PeerClient, error) {
	if r.peer != nil {
		return r.peer, nil
	}
	if r.dialErr != nil {
		return nil, r.dialErr
	}
	p, err := bench.DialPeer(ctx, r.cfg.Peer, r.cfg.Key, r.cfg.Software)
	if err != nil {
		r.dialErr = err
		return nil, err
	}
	r.peer = p
	return p, nil
}

// closePeer drops the control connection; after a failed op the next check dials afresh, so a
// half-finished exchange cannot confuse it.
func (r *runner) closePeer() {
	if r.peer != nil {
		r.peer.Close()
		r.peer = nil
	}
}

// addrs returns this host's and the peer's data addresses.
func (r *runner) addrs(ctx context.Context) (local, remote string, err error) {
	l, p := r.cfg.Addr, r.cfg.PeerAddr
	if !l.IsValid() || !p.IsValid() {
		peer, err := r.dial(ctx)
		if err != nil {
			return "", "", err
		}
		if !l.IsValid() {
			l = peer.LocalAddr()
		}
		if !p.IsValid() {
			p = peer.RemoteAddr()
		}
	}
	l, p = l.Unmap(), p.Unmap()
	if l.Is4() != p.Is4() {
		return "", "", fmt.Errorf("local address %s and peer address %s are of different families (give --addr and --peer-addr)", l, p)
	}
	return l.String(), p.String(), nil
}

// port returns the data port of the next invocation: the next of --port, or a random port free
// here (devmem.py's rand_port).
func (r *runner) port() int {
	if r.cfg.Port != 0 {
		p := r.cfg.Port + r.ports
		r.ports++
		return p
	}
	for range 100 {
		p := 10000 + rand.IntN(50000)
		if ln, err := net.Listen("tcp", ":"+strconv.Itoa(p)); err == nil {
			ln.Close()
			return p
		}
	}
	return 10000 + rand.IntN(50000)
}

// invocation is one run of the C tool's command line.
type invocation struct {
	args     []string
	code     int
	timedOut time.Duration
	stderr   tailWriter
}

// describe is the failure diagnosis: the command, its exit code and the end of its stderr.
func (inv *invocation) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ncdevmem %s: exit %d", strings.Join(inv.args, " "), inv.code)
	if inv.timedOut > 0 {
		fmt.Fprintf(&b, " (stopped after %v)", inv.timedOut)
	}
	b.WriteByte('\n')
	b.WriteString(inv.stderr.tail(stderrLines))
	return b.String()
}

// running is an invocation under way.
type running struct {
	inv       *invocation
	cancel    context.CancelFunc
	done      chan struct{}
	listening chan struct{}
}

func (r *running) wait() *invocation {
	<-r.done
	return r.inv
}

// start runs the C tool's command line in-process, with stdin as its input, bounded by the
// configured timeout.
func (r *runner) start(ctx context.Context, args []string, stdin string) *running {
	limit := r.cfg.timeout()
	ctx, cancel := context.WithTimeout(ctx, limit)
	run := &running{inv: &invocation{args: args}, cancel: cancel, done: make(chan struct{}), listening: make(chan struct{})}
	run.inv.stderr.marker, run.inv.stderr.seen = []byte(listenMarker), run.listening
	var sys *legacy.System
	if r.cfg.system != nil {
		sys = r.cfg.system()
	}
	go func() {
		defer close(run.done)
		defer cancel()
		run.inv.code = legacy.Run(ctx, args, sys, strings.NewReader(stdin), io.Discard, &run.inv.stderr)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			run.inv.timedOut = limit
		}
	}()
	return run
}

// rxOnce is one RX invocation of devmem.py: the local listener, then (once it listens) the
// remote sender; it passes when both succeed.
func (r *runner) rxOnce(ctx context.Context, args []string, req bench.PeerRequest) []string {
	peer, err := r.dial(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	run := r.start(ctx, args, "")
	select {
	case <-run.listening:
	case <-run.done:
		return []string{run.inv.describe()}
	}
	req.Timeout = r.cfg.peerTimeout()
	_, perr := peer.Send(ctx, req)
	if perr != nil {
		// The listener would wait for a connection that is not coming.
		run.cancel()
		r.closePeer()
	}
	inv := run.wait()
	var diags []string
	if perr != nil {
		diags = append(diags, perr.Error())
	}
	if inv.code != legacy.ExitOK {
		diags = append(diags, inv.describe())
	}
	return diags
}

func (r *runner) checkRX(ctx context.Context) result {
	if res, ok := r.skipUnless(ctx, 0); !ok {
		return res
	}
	local, remote, err := r.addrs(ctx)
	if err != nil {
		return failf("%v", err)
	}
	p := r.port()
	args := []string{"-l", "-f", r.cfg.Ifname, "-s", local, "-p", strconv.Itoa(p), "-c", remote, "-v", "7"}
	req := bench.PeerRequest{Addr: local, Local: remote, Port: p, Size: rxSize, Pattern: bench.PatternYes7}
	if diags := r.rxOnce(ctx, args, req); diags != nil {
		return result{status: Fail, diags: diags}
	}
	return result{status: Pass}
}

func (r *runner) checkRXHDS(ctx context.Context) result {
	if res, ok := r.skipUnless(ctx, 0); !ok {
		return res
	}
	local, remote, err := r.addrs(ctx)
	if err != nil {
		return failf("%v", err)
	}
	res := result{status: Pass}
	for _, size := range hdsSizes {
		p := r.port()
		args := []string{"-L", "-l", "-f", r.cfg.Ifname, "-s", local, "-p", strconv.Itoa(p)}
		req := bench.PeerRequest{Addr: local, Local: remote, Port: p, Size: int64(size), Pattern: bench.PatternZero, Block: size, NoDelay: true}
		if diags := r.rxOnce(ctx, args, req); diags != nil {
			res.status = Fail
			res.diags = append(res.diags, fmt.Sprintf("HDS failed for payload size %d", size))
			res.diags = append(res.diags, diags...)
		}
	}
	return res
}

func (r *runner) checkRXLargeNiov(ctx context.Context) result {
	if res, ok := r.skipUnless(ctx, 0); !ok {
		return res
	}
	if res, ok := r.skipUnless(ctx, largeRxPage); !ok {
		return res
	}
	local, remote, err := r.addrs(ctx)
	if err != nil {
		return failf("%v", err)
	}
	res := result{status: Pass}
	for _, size := range largeNiovSizes {
		waitHugePagesFree(ctx, legacy.HugePagesFor, hugeWait)
		p := r.port()
		args := []string{"-l", "-f", r.cfg.Ifname, "-s", local, "-p", strconv.Itoa(p), "-c", remote, "-v", "7", "-b", strconv.Itoa(largeRxPage)}
		req := bench.PeerRequest{Addr: local, Local: remote, Port: p, Size: int64(size), Pattern: bench.PatternYes7}
		if diags := r.rxOnce(ctx, args, req); diags != nil {
			res.status = Fail
			res.diags = append(res.diags, fmt.Sprintf("large niov RX failed for payload size %d", size))
			res.diags = append(res.diags, diags...)
		}
	}
	return res
}

// checkTX is check_tx (and with -z 3, check_tx_chunks): the peer listens, this host sends
// "hello\nworld\n" from the dma-buf, and the peer must have received exactly that.
func (r *runner) checkTX(ctx context.Context, extra []string) result {
	if res, ok := r.skipUnless(ctx, 0); !ok {
		return res
	}
	_, remote, err := r.addrs(ctx)
	if err != nil {
		return failf("%v", err)
	}
	peer, err := r.dial(ctx)
	if err != nil {
		return failf("%v", err)
	}
	p := r.port()
	l, err := peer.Listen(ctx, bench.PeerRequest{Port: p, Timeout: r.cfg.peerTimeout()})
	if err != nil {
		r.closePeer()
		return failf("%v", err)
	}
	args := append([]string{"-f", r.cfg.Ifname, "-s", remote, "-p", strconv.Itoa(p)}, extra...)
	inv := r.start(ctx, args, txInput).wait()
	if inv.code != legacy.ExitOK {
		if err := l.Abort(); err != nil {
			r.closePeer()
		}
		return result{status: Fail, diags: []string{inv.describe()}}
	}
	got, err := l.Wait()
	if err != nil {
		r.closePeer()
		return result{status: Fail, diags: []string{err.Error(), inv.describe()}}
	}
	if s := strings.TrimSpace(string(got.Data)); s != txWant {
		return result{status: Fail, diags: []string{fmt.Sprintf("peer received %q (%d bytes), want %q", got.Data, got.Count, txWant), inv.describe()}}
	}
	return result{status: Pass}
}

// tailWriter keeps the end of a stream (the legacy tool's stderr) and closes seen once marker
// appears in it.
type tailWriter struct {
	mu     sync.Mutex
	buf    []byte
	marker []byte
	seen   chan struct{}
	found  bool
	lineAt int // start of the line being scanned for the marker
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if !w.found && len(w.marker) > 0 && bytes.Contains(w.buf[w.lineAt:], w.marker) {
		w.found = true
		close(w.seen)
	}
	if !w.found {
		if i := bytes.LastIndexByte(w.buf, '\n'); i >= 0 {
			w.lineAt = i + 1
		}
	}
	if len(w.buf) > 2*stderrKeep {
		cut := len(w.buf) - stderrKeep
		w.buf = append(w.buf[:0], w.buf[cut:]...)
		w.lineAt = max(0, w.lineAt-cut)
	}
	return len(p), nil
}

// tail returns the last n lines.
func (w *tailWriter) tail(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.TrimRight(string(w.buf), "\n")
	if s == "" {
		return "(no output)"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("(last %d lines)", n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
