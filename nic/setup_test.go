// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nic_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/nic/nictest"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

const eth = "eth1"

func flows() []nic.Flow {
	return []nic.Flow{
		{Dst: netip.MustParseAddrPort("192.0.2.1:5201"), Src: netip.MustParseAddrPort("192.0.2.2:40000")},
		{Dst: netip.MustParseAddrPort("192.0.2.1:5201"), Src: netip.MustParseAddrPort("192.0.2.2:40001")},
	}
}

type fixture struct {
	model  *nictest.Model
	before *nictest.NIC
	dir    string
	log    *strings.Builder
}

func newFixture(t *testing.T, mod func(*nictest.NIC)) *fixture {
	t.Helper()
	n := nictest.DevmemNIC(7)
	if mod != nil {
		mod(n)
	}
	return &fixture{model: nictest.New(map[string]*nictest.NIC{eth: n}), before: n.Clone(), dir: t.TempDir(), log: &strings.Builder{}}
}

func (f *fixture) req(queues ...int) nic.Request {
	return nic.Request{Ifname: eth, Queues: queues, Flows: flows(), StateDir: f.dir, Log: f.log, Kernel: f.model}
}

func (f *fixture) nic() *nictest.NIC { return f.model.NICs[eth] }

// prepare runs Prepare and fails t on an error.
func (f *fixture) prepare(t *testing.T, req nic.Request) *nic.Setup {
	t.Helper()
	s, err := nic.Prepare(context.Background(), req)
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, f.log)
	}
	return s
}

// restore runs s.Restore and checks that the NIC is back as it was.
func (f *fixture) restore(t *testing.T, s *nic.Setup) {
	t.Helper()
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	f.checkRestored(t)
}

// restoreWhileBound prepares the NIC, binds the devmem queues as a devmem binding would, and
// returns the Setup and the error of a Restore tried while bound. The queues are unbound again
// before it returns; a failed Restore leaves the rest of the NIC as it found it.
func (f *fixture) restoreWhileBound(t *testing.T) (*nic.Setup, error) {
	t.Helper()
	s := f.prepare(t, f.req(6, 7))
	n := f.nic()
	n.Bound, n.BoundQueues = true, []uint32{6, 7}
	err := s.Restore()
	n.Bound, n.BoundQueues = false, nil
	return s, err
}

// checkRestored fails t unless the NIC is exactly as before and no journal is left.
func (f *fixture) checkRestored(t *testing.T) {
	t.Helper()
	if diff := cmp.Diff(f.before, f.nic(), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Fatalf("NIC not restored (-before +after):\n%s\nlog:\n%s", diff, f.log)
	}
	if err := nic.CheckClean(f.dir, eth); err != nil {
		t.Fatalf("journal left behind: %v", err)
	}
}

func TestPrepareWithContext(t *testing.T) {
	f := newFixture(t, nil)
	s := f.prepare(t, f.req(6, 7))
	n := f.nic()
	if n.SplitConfig != nic.TCPDataSplitEnabled || n.HDSThresh != 0 {
		t.Errorf("header split config %v hds-thresh %d, want on and 0", n.SplitConfig, n.HDSThresh)
	}
	for i, q := range n.Indir {
		if q >= 6 {
			t.Fatalf("main table entry %d = queue %d, a devmem queue", i, q)
		}
	}
	if s.Context() != 1 || len(n.ContextMap[1]) != 128 || n.ContextMap[1][0] != 6 || n.ContextMap[1][1] != 7 {
		t.Errorf("context %d table %v, want context 1 over queues 6,7", s.Context(), n.ContextMap[1])
	}
	rules := s.Rules()
	if len(rules) != 2 {
		t.Fatalf("rules %v, want 2", rules)
	}
	for _, r := range rules {
		if r.Context != 1 || n.Rules[r.Location] != r {
			t.Errorf("rule %+v not installed to context 1", r)
		}
	}
	if err := nic.CheckClean(f.dir, eth); err == nil || !strings.Contains(err.Error(), "ncdevmem cleanup -f eth1 --state-dir") {
		t.Errorf("CheckClean during the run = %v, want the cleanup advice", err)
	}
	if _, err := nic.Prepare(context.Background(), f.req(6, 7)); err == nil || !strings.Contains(err.Error(), "ncdevmem cleanup -f eth1") {
		t.Errorf("second Prepare = %v, want refusal naming cleanup", err)
	}
	if err := nic.CleanupWith(f.model, f.dir, eth, f.log); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Errorf("Cleanup during the run = %v, want refusal", err)
	}
	wantLog := []string{
		"nic eth1: tcp-data-split off -> on",
		"nic eth1: hds-thresh 256 -> 0",
		"nic eth1: rss indirection default -> queues 0,1,2,3,4,5",
		"nic eth1: rss context none -> 1: queues 6,7",
		"nic eth1: rule none -> 1023: flow-type tcp4 src-ip 192.0.2.2 dst-ip 192.0.2.1 src-port 40000 dst-port 5201 context 1",
	}
	for _, w := range wantLog {
		if !strings.Contains(f.log.String(), w+"\n") {
			t.Errorf("log lacks %q:\n%s", w, f.log)
		}
	}
	f.restore(t, s)
	if err := s.Restore(); err != nil {
		t.Fatalf("second Restore: %v", err)
	}
}

func TestPrepareWithoutContext(t *testing.T) {
	f := newFixture(t, func(n *nictest.NIC) {
		n.Contexts, n.LocAny = false, false
		n.Rules[0] = nic.Rule{Location: 0, FlowType: unix.TCP_V4_FLOW, Dst: netip.MustParseAddrPort("192.0.2.9:22"), Queue: 1}
	})
	s := f.prepare(t, f.req(6, 7))
	rules := s.Rules()
	if len(rules) != 2 || rules[0].Location != 1 || rules[0].Queue != 6 || rules[1].Location != 2 || rules[1].Queue != 7 {
		t.Fatalf("rules %+v, want slots 1 and 2 to queues 6 and 7", rules)
	}
	if s.Context() != 0 || len(f.nic().ContextMap) != 0 {
		t.Fatalf("context created on a NIC without contexts")
	}
	f.restore(t, s)
}

// TestPrepare3TupleFallback: a NIC that refuses rules with a source gets the 3-tuple dst-ip +
// dst-port, as the C ncdevmem retries; the flows that share the destination share the rule, and
// the journal holds what was applied, so Restore and a crash's cleanup remove exactly it
// (fidelity row 2).
func TestPrepare3TupleFallback(t *testing.T) {
	for _, ctx := range []bool{true, false} {
		f := newFixture(t, func(n *nictest.NIC) { n.No5Tuple, n.Contexts, n.LocAny = true, ctx, ctx })
		s, err := nic.Prepare(context.Background(), f.req(6, 7))
		if err != nil {
			t.Fatalf("context %v: %v\nlog:\n%s", ctx, err, f.log)
		}
		rules := s.Rules()
		n := f.nic()
		if len(rules) != 1 || rules[0].Src.IsValid() || rules[0].Dst != flows()[0].Dst || len(n.Rules) != 1 {
			t.Fatalf("context %v: rules %+v (NIC %+v), want one 3-tuple rule for %v", ctx, rules, n.Rules, flows()[0].Dst)
		}
		for _, w := range []string{"refused (operation not supported); retrying as the 3-tuple flow-type tcp4 dst-ip 192.0.2.1 dst-port 5201",
			"rule (3-tuple fallback) none -> ", "already steers flow-type tcp4 dst-ip 192.0.2.1 dst-port 5201"} {
			if !strings.Contains(f.log.String(), w) {
				t.Errorf("context %v: log lacks %q:\n%s", ctx, w, f.log)
			}
		}
		if strings.Contains(f.log.String(), "nic eth1: nic eth1:") {
			t.Errorf("context %v: a log line names the device twice:\n%s", ctx, f.log)
		}
		f.restore(t, s)
	}
}

func TestPrepareRaisesChannels(t *testing.T) {
	f := newFixture(t, func(n *nictest.NIC) { n.Indir = []uint32{1, 0}; n.IndirSize = 2 })
	f.before = f.nic().Clone()
	no := false
	req := f.req(9)
	req.UseRSSContext = &no
	s := f.prepare(t, req)
	if got := f.nic().Channels.Combined; got != 10 {
		t.Fatalf("combined = %d, want 10", got)
	}
	f.restore(t, s)
}

// TestNetdevsimLike is a driver with an RSS table but no GRXRINGS, contexts or ntuple filters, and
// no flows to steer (netdevsim on 7.x, probe mode).
func TestNetdevsimLike(t *testing.T) {
	f := newFixture(t, func(n *nictest.NIC) { n.NoRXRings, n.Contexts, n.Ntuple = true, false, false })
	req := f.req(6, 7)
	req.Flows = nil
	s := f.prepare(t, req)
	if f.nic().Indir == nil {
		t.Fatal("RSS table not set")
	}
	f.restore(t, s)
}

// TestHeaderSplitDefaultOn is a driver that splits by default ("auto" reads as on): Prepare must
// still configure it (bind-rx checks the configuration), and Restore must leave it "auto" again.
func TestHeaderSplitDefaultOn(t *testing.T) {
	f := newFixture(t, func(n *nictest.NIC) { n.SplitDefault, n.HDSThresh = nic.TCPDataSplitEnabled, 0 })
	s := f.prepare(t, f.req(6, 7))
	if f.nic().SplitConfig != nic.TCPDataSplitEnabled {
		t.Fatalf("tcp-data-split config %v, want on", f.nic().SplitConfig)
	}
	if !strings.Contains(f.log.String(), "nic eth1: tcp-data-split on -> on (configured explicitly)\n") {
		t.Errorf("log:\n%s", f.log)
	}
	f.restore(t, s)
}

// TestHeaderSplitExplicitOff: an admin's explicit "off" on a driver whose default is on comes back
// as an explicit off.
func TestHeaderSplitExplicitOff(t *testing.T) {
	f := newFixture(t, func(n *nictest.NIC) {
		n.SplitDefault, n.SplitConfig = nic.TCPDataSplitEnabled, nic.TCPDataSplitDisabled
	})
	s := f.prepare(t, f.req(6, 7))
	f.restore(t, s)
}

func TestDryRunChangesNothing(t *testing.T) {
	f := newFixture(t, nil)
	req := f.req(6, 7)
	req.DryRun = true
	s := f.prepare(t, req)
	if f.model.Changes != 0 {
		t.Fatalf("dry run made %d changes", f.model.Changes)
	}
	if !strings.Contains(f.log.String(), "nic eth1: rss context none -> queues 6,7\n") {
		t.Fatalf("dry run output:\n%s", f.log)
	}
	f.restore(t, s)
}

func TestHeaderSplitOnly(t *testing.T) {
	f := newFixture(t, nil)
	req := nic.Request{Ifname: eth, StateDir: f.dir, Kernel: f.model, HeaderSplitOnly: true}
	p, err := nic.Plan(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 2 || p.Steps[0].What != "tcp-data-split" || p.Steps[1].What != "hds-thresh" {
		t.Fatalf("plan:\n%s", p)
	}
	s := f.prepare(t, req)
	f.restore(t, s)
}

// TestFailureAtEveryStep injects a kernel error at each changing call of Prepare in turn: every
// time the NIC must come back exactly and the journal must go.
func TestFailureAtEveryStep(t *testing.T) {
	for _, ctx := range []bool{true, false} {
		for at := 1; ; at++ {
			f := newFixture(t, func(n *nictest.NIC) { n.Contexts = ctx })
			f.model.FailAt = at
			s, err := nic.Prepare(context.Background(), f.req(6, 7))
			if err == nil {
				if at < 3 {
					t.Fatalf("only %d changing calls", at-1)
				}
				f.model.FailAt = 0
				if err := s.Restore(); err != nil {
					t.Fatal(err)
				}
				break
			}
			if !errors.Is(err, unix.EIO) {
				t.Fatalf("contexts=%v fail at %d: %v", ctx, at, err)
			}
			f.checkRestored(t)
		}
	}
}

// crasher simulates a crash at the at-th call of its hook; off disarms it (after the run under
// test returns, so that a later Restore runs to the end).
type crasher struct {
	at, calls  int
	fired, off bool
}

func (c *crasher) hook() bool {
	if c.off {
		return false
	}
	c.calls++
	if c.calls == c.at {
		c.fired = true
		return true
	}
	return false
}

// prepareCrashing runs Prepare with a crash at the point-th point and reports whether it fired.
func (f *fixture) prepareCrashing(point int) (*nic.Setup, bool, error) {
	c := &crasher{at: point}
	s, err := nic.Prepare(context.Background(), nic.WithCrash(f.req(6, 7), c.hook))
	c.off = true
	return s, c.fired, err
}

// TestCrashAtEveryPoint stops Prepare as kill -9 would at every point between journal writes and
// kernel changes; Cleanup must then restore exactly. It also crashes Cleanup itself at every point
// of the replay and runs it again.
func TestCrashAtEveryPoint(t *testing.T) {
	for _, cfg := range []struct{ ctx, hide, no5 bool }{{true, false, false}, {false, false, false}, {true, true, false}, {true, false, true}, {false, false, true}} {
		ctx := cfg.ctx
		for point := 1; ; point++ {
			f := newFixture(t, func(n *nictest.NIC) {
				n.Contexts, n.LocAny, n.HideRuleContext, n.No5Tuple = ctx, ctx, cfg.hide, cfg.no5
			})
			s, fired, err := f.prepareCrashing(point)
			if !fired {
				if err != nil {
					t.Fatal(err)
				}
				f.restore(t, s)
				if point < 8 {
					t.Fatalf("only %d crash points", point-1)
				}
				t.Logf("%+v: crashed at each of %d points, then at every point of the cleanup", cfg, point-1)
				break
			}
			if !nic.IsCrash(err) {
				t.Fatalf("point %d: %v", point, err)
			}
			if err := nic.CheckClean(f.dir, eth); err == nil {
				t.Fatalf("point %d: no journal after crash", point)
			}
			// Crash the cleanup too, at each of its points, before a final clean run.
			for cp := 1; ; cp++ {
				c := &crasher{at: cp}
				err := nic.CleanupCrashing(f.model, f.dir, eth, f.log, c.hook)
				if !c.fired {
					if err != nil {
						t.Fatalf("point %d cleanup: %v", point, err)
					}
					break
				}
				if !nic.IsCrash(err) {
					t.Fatalf("point %d cleanup crash %d: %v", point, cp, err)
				}
			}
			f.checkRestored(t)
		}
	}
}

func TestTornJournalLine(t *testing.T) {
	f := newFixture(t, nil)
	_, _, err := f.prepareCrashing(6)
	if !nic.IsCrash(err) {
		t.Fatal(err)
	}
	path := nic.JournalPath(f.dir, eth)
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("1234abcd rule-pending loc=42 exi") // a power cut mid-write
	fh.Close()
	if err := nic.CleanupWith(f.model, f.dir, eth, f.log); err != nil {
		t.Fatal(err)
	}
	f.checkRestored(t)
}

func TestRestoreWhileBound(t *testing.T) {
	f := newFixture(t, nil)
	s, err := f.restoreWhileBound(t)
	n := f.nic()
	if err == nil || !strings.Contains(err.Error(), "can't disable tcp-data-split while device has memory provider enabled") ||
		!strings.Contains(err.Error(), "ncdevmem cleanup -f eth1") {
		t.Fatalf("Restore while bound = %v", err)
	}
	if len(n.Rules) != 0 || len(n.ContextMap) != 0 || n.Indir != nil {
		t.Fatalf("independent settings not restored: rules %v contexts %v indir %v", n.Rules, n.ContextMap, n.Indir)
	}
	f.restore(t, s)
}

// After a failed Restore the journal is released, so cleanup can finish the job (a server that
// gave up on its Setup must not block it); a later Restore then finds nothing to do.
func TestCleanupAfterFailedRestore(t *testing.T) {
	f := newFixture(t, nil)
	s, err := f.restoreWhileBound(t)
	if err == nil {
		t.Fatal("Restore while bound succeeded")
	}
	if err := nic.CleanupWith(f.model, f.dir, eth, f.log); err != nil {
		t.Fatal(err)
	}
	f.checkRestored(t)
	if err := s.Restore(); err != nil {
		t.Fatalf("Restore after cleanup: %v", err)
	}
	f.checkRestored(t)
}

func TestStopOnCancel(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := nic.Prepare(ctx, f.req(6, 7))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
	f.checkRestored(t)
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*nictest.NIC)
		req  func(nic.Request) nic.Request
		want string
	}{
		{"no header split", func(n *nictest.NIC) { n.HDS = false }, nil, "setting TCP data split is not supported"},
		{"no ntuple", func(n *nictest.NIC) { n.Ntuple = false }, nil, "ethtool -K eth1 ntuple on"},
		{"no rss", func(n *nictest.NIC) { n.RSS, n.Ntuple = false, false }, nil, "ethtool -X eth1 equal N"},
		{"all queues devmem", func(n *nictest.NIC) { n.Channels.CombinedMax = 8 }, func(r nic.Request) nic.Request {
			r.Queues = []int{0, 1, 2, 3, 4, 5, 6, 7}
			return r
		}, "allows at most 8"},
		{"unknown interface", nil, func(r nic.Request) nic.Request { r.Ifname = "nope0"; return r }, "no device matches name"},
		{"bad name", nil, func(r nic.Request) nic.Request { r.Ifname = "../etc"; return r }, "not a valid interface name"},
		{"context required", func(n *nictest.NIC) { n.Contexts = false }, func(r nic.Request) nic.Request {
			yes := true
			r.UseRSSContext = &yes
			return r
		}, "no RSS contexts"},
		{"conflicting rule", func(n *nictest.NIC) {
			n.Rules[3] = nic.Rule{Location: 3, FlowType: unix.TCP_V4_FLOW, Src: netip.MustParseAddrPort("192.0.2.2:40000"), Dst: netip.MustParseAddrPort("192.0.2.1:5201"), Queue: 0}
		}, nil, "ethtool -N eth1 delete 3"},
		{"no queues", nil, func(r nic.Request) nic.Request { r.Queues = nil; return r }, "no devmem queues"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.mod)
			req := f.req(6, 7)
			if tt.req != nil {
				req = tt.req(req)
			}
			_, err := nic.Prepare(context.Background(), req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			f.checkRestored(t)
		})
	}
}

func TestCleanupNothing(t *testing.T) {
	f := newFixture(t, nil)
	if err := nic.CleanupWith(f.model, f.dir, eth, nil); !errors.Is(err, nic.ErrNoJournal) {
		t.Fatalf("err = %v, want ErrNoJournal", err)
	}
}

func TestCleanupRecreatedDevice(t *testing.T) {
	f := newFixture(t, nil)
	_, _, err := f.prepareCrashing(4)
	if !nic.IsCrash(err) {
		t.Fatal(err)
	}
	f.nic().Ifindex = 99
	if err := nic.CleanupWith(f.model, f.dir, eth, nil); err == nil || !strings.Contains(err.Error(), "recreated") {
		t.Fatalf("err = %v, want the recreated-device refusal", err)
	}
}

func TestInfoFromModel(t *testing.T) {
	f := newFixture(t, func(n *nictest.NIC) {
		n.Rules[4] = nic.Rule{Location: 4, FlowType: unix.TCP_V6_FLOW, Dst: netip.MustParseAddrPort("[2001:db8::1]:80"), Queue: 2}
	})
	nt, err := nic.NtupleInfoWith(f.model, eth)
	if err != nil {
		t.Fatal(err)
	}
	if nt.TableSize != 1024 || nt.Count != 1 || !nt.LocAny || len(nt.Rules) != 1 || nt.Rules[0].Location != 4 {
		t.Fatalf("ntuple %+v", nt)
	}
	rss, err := nic.RSSInfoWith(f.model, eth)
	if err != nil {
		t.Fatal(err)
	}
	if rss.RXRings != 8 || len(rss.Indir) != 128 || !rss.Contexts {
		t.Fatalf("rss %+v", rss)
	}
}

// A crash between creating the journal and writing its first record leaves an empty file: nothing
// was changed, and cleanup just removes it.
func TestCleanupEmptyJournal(t *testing.T) {
	f := newFixture(t, nil)
	if err := os.WriteFile(nic.JournalPath(f.dir, eth), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := nic.CleanupWith(f.model, f.dir, eth, f.log); err != nil {
		t.Fatal(err)
	}
	f.checkRestored(t)
	if f.model.Changes != 0 {
		t.Fatalf("cleanup of an empty journal made %d changes", f.model.Changes)
	}
}
