// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// Setup is a NIC prepared by Prepare. Restore puts it back; until then its journal exists and
// holds an exclusive lock, so a concurrent run or cleanup on the same interface is refused.
type Setup struct {
	mu      sync.Mutex
	k       Kernel
	ifname  string
	log     io.Writer
	crash   func() bool // Request.crash: tests only
	j       *journal    // open while the NIC is prepared; nil after a failed Restore released it
	path    string      // the journal, "" for a dry run
	done    bool        // restored (or dry run): nothing left to undo
	crashed bool        // tests: a simulated crash stopped this Setup
	recs    []record    // as written; a record's seq is its index + 1
	rules   []Rule
	context uint32
	plan    *PlanResult
}

var errCrash = errors.New("simulated crash")

// Prepare applies the plan for req, journaling each change before making it. It refuses when a
// journal for the interface exists (a crashed or running run) and says to run `ncdevmem cleanup -f
// IF`. If any step fails, or ctx ends (the cmd layer cancels it on SIGINT/SIGTERM/SIGHUP), it
// restores what it changed and returns the error. With req.DryRun it prints the plan to req.Log
// and returns a Setup whose Restore does nothing. The caller must defer Restore on success.
// Needs CAP_NET_ADMIN.
func Prepare(ctx context.Context, req Request) (*Setup, error) {
	if err := validate(&req); err != nil {
		return nil, err
	}
	k, dir := req.kernel(), req.stateDir()
	if err := CheckClean(dir, req.Ifname); err != nil {
		return nil, err
	}
	p, err := plan(k, &req)
	if err != nil {
		return nil, err
	}
	s := &Setup{k: k, ifname: req.Ifname, log: req.log(), crash: req.crash, plan: p, done: req.DryRun}
	if req.DryRun {
		_, err := io.WriteString(s.log, p.String())
		return s, err
	}
	ifindex, err := k.Ifindex(req.Ifname)
	if err != nil {
		return nil, err
	}
	if s.j, err = createJournal(dir, req.Ifname); err != nil {
		return nil, err
	}
	s.path = s.j.path
	if err := s.write(record{Kind: recBegin, Ifname: req.Ifname, Ifindex: ifindex, PID: os.Getpid()}); err != nil {
		return nil, s.fail(err)
	}
	for _, st := range p.Steps {
		if ctx.Err() != nil {
			return nil, s.fail(fmt.Errorf("prepare %s: stopped before %s: %w", req.Ifname, st.What, context.Cause(ctx)))
		}
		if err := s.apply(st); err != nil {
			return nil, s.fail(err)
		}
	}
	return s, nil
}

// Plan returns the plan Prepare applied (or, for a dry run, printed).
func (s *Setup) Plan() *PlanResult { return s.plan }

// Rules returns the rules Prepare installed, with their locations (rule IDs) and queue or context.
func (s *Setup) Rules() []Rule { return slices.Clone(s.rules) }

// Context returns the RSS context Prepare created, 0 for none.
func (s *Setup) Context() uint32 { return s.context }

// fail restores after a failed step and returns err with any restore error joined. The journal is
// released either way (the caller gets no Setup to retry with), so `ncdevmem cleanup` can finish.
func (s *Setup) fail(err error) error {
	if errors.Is(err, errCrash) {
		return err
	}
	if rerr := s.Restore(); rerr != nil {
		return fmt.Errorf("%w; then restoring: %w", err, rerr)
	}
	return err
}

// point is a place a crash can happen in tests.
func (s *Setup) point() error {
	if s.crash != nil && s.crash() {
		s.j.close()
		s.j = nil
		s.crashed = true
		return errCrash
	}
	return nil
}

func (s *Setup) write(r record) error {
	if err := s.j.append(r); err != nil {
		return err
	}
	s.recs = append(s.recs, r)
	return s.point()
}

func (s *Setup) logf(format string, a ...any) {
	fmt.Fprintf(s.log, "nic %s: "+format+"\n", append([]any{s.ifname}, a...)...)
}

// apply makes one change, journaling its undo first, and logs it.
func (s *Setup) apply(st Step) error {
	var err error
	switch st.kind {
	case stepChannels:
		err = s.applyChannels(st)
	case stepRings:
		err = s.applyRings(st)
	case stepIndir:
		err = s.applyIndir(st)
	case stepContext:
		err = s.applyContext(&st)
	case stepRule:
		err = s.applyRule(&st)
	}
	if err != nil {
		return err
	}
	s.logf("%s", st)
	return s.point()
}

func (s *Setup) applyChannels(st Step) error {
	cur, err := s.k.Channels(s.ifname)
	if err != nil {
		return err
	}
	if err := s.write(record{Kind: recChannels, Channels: cur}); err != nil {
		return err
	}
	return s.k.SetChannels(s.ifname, st.channels)
}

func (s *Setup) applyRings(st Step) error {
	cur, err := s.k.Rings(s.ifname)
	if err != nil {
		return err
	}
	r := record{Kind: recRings}
	if st.rings.TCPDataSplit != nil {
		r.Split = &cur.TCPDataSplit
	}
	if st.rings.HDSThresh != nil {
		r.HDS = cur.HDSThresh
		if r.HDS == nil {
			return fmt.Errorf("prepare %s: hds-thresh is no longer reported", s.ifname)
		}
	}
	if err := s.write(r); err != nil {
		return err
	}
	return s.k.SetRings(s.ifname, st.rings)
}

func (s *Setup) applyIndir(st Step) error {
	cur, err := s.k.Indir(s.ifname)
	if err != nil {
		return err
	}
	rxq, err := rxRings(s.k, s.ifname)
	if err != nil {
		return err
	}
	r := record{Kind: recIndir, Default: isDefaultIndir(cur, rxq)}
	if !r.Default {
		r.Table = cur
	}
	if err := s.write(r); err != nil {
		return err
	}
	return s.k.SetIndir(s.ifname, st.table)
}

// applyContext creates the RSS context. The pending record names the ID the kernel will pick, so a
// crash between the create and its journal entry can still find the context.
func (s *Setup) applyContext(st *Step) error {
	predict, err := lowestFreeContext(s.k, s.ifname)
	if err != nil {
		return err
	}
	if err := s.write(record{Kind: recContextPending, ID: predict, Table: st.table}); err != nil {
		return err
	}
	id, err := s.k.CreateRSSContext(s.ifname, st.table)
	if err != nil {
		return err
	}
	if err := s.point(); err != nil {
		return err
	}
	if err := s.write(record{Kind: recContext, ID: id, Table: st.table}); err != nil {
		return err
	}
	s.context = id
	st.New = fmt.Sprintf("%d: %s", id, st.New)
	return nil
}

// applyRule inserts one ntuple rule; the pending record lists the locations that existed before,
// so a crash before the rule's own record can still find it.
func (s *Setup) applyRule(st *Step) error {
	r := st.rule
	if st.toCtx {
		r.Context, r.Queue = s.context, 0
	}
	count, _, _, err := s.k.RuleCount(s.ifname)
	if err != nil {
		return err
	}
	locs, err := s.k.RuleLocations(s.ifname, count)
	if err != nil {
		return err
	}
	if err := s.write(record{Kind: recRulePending, Loc: r.Location, Existing: locs, Rule: r}); err != nil {
		return err
	}
	loc, err := s.k.InsertRule(s.ifname, r)
	if err != nil && hasSource(r) && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)) {
		var stop bool
		if r, loc, stop, err = s.insert3Tuple(st, r, locs, err); stop {
			return err
		}
	}
	if err != nil {
		return err
	}
	if err := s.point(); err != nil {
		return err
	}
	r.Location = loc
	if err := s.write(record{Kind: recRule, Loc: loc, Rule: r}); err != nil {
		return err
	}
	s.rules = append(s.rules, r)
	st.New = fmt.Sprintf("%d: %s", loc, r)
	return nil
}

// insert3Tuple retries a refused 5-tuple rule r as dst-ip and dst-port only: some NICs steer on the
// destination only, and the C ncdevmem retries the same way. The journal holds the rule actually
// applied. stop means the rule step ends here: with err, or with nothing inserted because an
// earlier flow's fallback already steers this destination (st then says so). Otherwise it returns
// the rule tried and the insert's result.
func (s *Setup) insert3Tuple(st *Step, r Rule, locs []uint32, refused error) (Rule, uint32, bool, error) {
	three := r
	three.Src = netip.AddrPort{}
	s.logf("rule %s refused (%v); retrying as the 3-tuple %s", r, errnoOf(refused), three)
	if dup, ok := s.sameRule(three); ok {
		s.logf("rule %d already steers %s", dup.Location, three.Match())
		st.New = fmt.Sprintf("%d: %s (3-tuple, shared)", dup.Location, dup)
		return three, 0, true, nil
	}
	if err := s.point(); err != nil {
		return three, 0, true, err
	}
	if err := s.write(record{Kind: recRulePending, Loc: three.Location, Existing: locs, Rule: three}); err != nil {
		return three, 0, true, err
	}
	loc, err := s.k.InsertRule(s.ifname, three)
	if err == nil {
		st.What = "rule (3-tuple fallback)"
	}
	return three, loc, false, err
}

// hasSource reports whether r matches a source address or port (a 5-tuple rule).
func hasSource(r Rule) bool { return r.Src.Addr().IsValid() || r.Src.Port() != 0 }

// sameRule returns a rule this setup applied with the same match as r.
func (s *Setup) sameRule(r Rule) (Rule, bool) {
	for _, got := range s.rules {
		if got.SameMatch(r) {
			return got, true
		}
	}
	return Rule{}, false
}

// errnoOf is err's errno for a log line, or err itself.
func errnoOf(err error) error {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return err
}
