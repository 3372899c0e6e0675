// SPDX-License-Identifier: MIT

package nic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
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
	j       *journal // open while the NIC is prepared; nil after a failed Restore released it
	path    string   // the journal, "" for a dry run
	done    bool     // restored (or dry run): nothing left to undo
	crashed bool     // tests: a simulated crash stopped this Setup
	recs    []record // as written; a record's seq is its index + 1
	rules   []Rule
	context uint32
	plan    *PlanResult
}

// crashHook simulates a crash in tests: called at every point between a journal write and a kernel
// change, it returns true to stop right there, leaving the journal and NIC as a kill -9 would.
var crashHook func() bool

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
	s := &Setup{k: k, ifname: req.Ifname, log: req.log(), plan: p, done: req.DryRun}
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
	if crashHook != nil && crashHook() {
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

// apply makes one change, journaling its undo first.
func (s *Setup) apply(st Step) error {
	k, ifname := s.k, s.ifname
	switch st.kind {
	case stepChannels:
		cur, err := k.Channels(ifname)
		if err != nil {
			return err
		}
		if err := s.write(record{Kind: recChannels, Channels: cur}); err != nil {
			return err
		}
		if err := k.SetChannels(ifname, st.channels); err != nil {
			return err
		}
	case stepRings:
		cur, err := k.Rings(ifname)
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
				return fmt.Errorf("prepare %s: hds-thresh is no longer reported", ifname)
			}
		}
		if err := s.write(r); err != nil {
			return err
		}
		if err := k.SetRings(ifname, st.rings); err != nil {
			return err
		}
	case stepIndir:
		cur, err := k.Indir(ifname)
		if err != nil {
			return err
		}
		rxq, err := rxRings(k, ifname)
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
		if err := k.SetIndir(ifname, st.table); err != nil {
			return err
		}
	case stepContext:
		predict, err := lowestFreeContext(k, ifname)
		if err != nil {
			return err
		}
		if err := s.write(record{Kind: recContextPending, ID: predict, Table: st.table}); err != nil {
			return err
		}
		id, err := k.CreateRSSContext(ifname, st.table)
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
	case stepRule:
		r := st.rule
		if st.toCtx {
			r.Context, r.Queue = s.context, 0
		}
		count, _, _, err := k.RuleCount(ifname)
		if err != nil {
			return err
		}
		locs, err := k.RuleLocations(ifname, count)
		if err != nil {
			return err
		}
		if err := s.write(record{Kind: recRulePending, Loc: r.Location, Existing: locs, Rule: r}); err != nil {
			return err
		}
		loc, err := k.InsertRule(ifname, r)
		if err != nil && hasSource(r) && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)) {
			// Some NICs steer on the destination only. As the C ncdevmem does, retry with
			// dst-ip and dst-port; the journal holds the rule actually applied.
			three := r
			three.Src = netip.AddrPort{}
			s.logf("nic %s: rule %s refused (%v); retrying as the 3-tuple %s", ifname, r, errnoOf(err), three)
			if dup, ok := s.sameRule(three); ok {
				// An earlier flow's fallback already steers this destination.
				s.logf("nic %s: rule %d already steers %s", ifname, dup.Location, three.matchString())
				st.New = fmt.Sprintf("%d: %s (3-tuple, shared)", dup.Location, dup)
				s.logf("%s", st)
				return s.point()
			}
			if err := s.point(); err != nil {
				return err
			}
			if err := s.write(record{Kind: recRulePending, Loc: three.Location, Existing: locs, Rule: three}); err != nil {
				return err
			}
			r = three
			loc, err = k.InsertRule(ifname, r)
			if err == nil {
				st.What = "rule (3-tuple fallback)"
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
	}
	s.logf("%s", st)
	return s.point()
}

// hasSource reports whether r matches a source address or port (a 5-tuple rule).
func hasSource(r Rule) bool { return r.Src.Addr().IsValid() || r.Src.Port() != 0 }

// sameRule returns a rule this setup applied with the same match as r.
func (s *Setup) sameRule(r Rule) (Rule, bool) {
	for _, got := range s.rules {
		if got.sameMatch(r) {
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

// Restore undoes every change in reverse order, verifies each by reading it back, and deletes the
// journal. Close the devmem binding first: the kernel refuses to turn header split off while a
// memory provider is bound. On failure the journal stays, with what was undone marked, and its
// lock is released: `ncdevmem cleanup -f IF` (the error says so) or another call of Restore
// finishes the job once the cause is fixed. Restore on a dry run, or after success, does nothing.
func (s *Setup) Restore() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.crashed {
		return errCrash
	}
	if s.done {
		return nil
	}
	if s.j == nil {
		// A failed Restore released the journal; cleanup may have worked on it since.
		j, recs, err := openJournal(s.path)
		if errors.Is(err, fs.ErrNotExist) {
			s.done = true // `ncdevmem cleanup` finished it
			return nil
		}
		if err != nil {
			return fmt.Errorf("restore %s: %w", s.ifname, err)
		}
		s.j, s.recs = j, recs
	}
	// undo appends its "undone" marks to s.recs, so a retry after a failure resumes.
	err := undo(s.k, s.ifname, &s.recs, s.j, s.log)
	if errors.Is(err, errCrash) {
		s.j, s.crashed = nil, true
		return err
	}
	if err != nil {
		s.j.close()
		s.j = nil
		return err
	}
	s.j, s.done = nil, true
	return nil
}

// Cleanup replays the journal a crashed run left for ifname under stateDir (empty = the default),
// restoring the NIC, and deletes it. With no journal it returns an error matching ErrNoJournal.
// It refuses while the run that owns the journal is alive, and when ifname is now a different
// device than the one journaled. Needs CAP_NET_ADMIN.
func Cleanup(stateDir, ifname string, log io.Writer) error {
	return cleanup(System(), stateDir, ifname, log)
}

func cleanup(k Kernel, stateDir, ifname string, log io.Writer) error {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	if log == nil {
		log = io.Discard
	}
	if err := checkIfname(ifname); err != nil {
		return err
	}
	path := journalPath(stateDir, ifname)
	j, recs, err := openJournal(path)
	var busy *journalBusyError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w for %s in %s", ErrNoJournal, ifname, stateDir)
	case errors.As(err, &busy):
		owner := "another ncdevmem"
		if busy.PID != 0 {
			owner = fmt.Sprintf("ncdevmem pid %d", busy.PID)
		}
		return fmt.Errorf("cleanup %s: %s is still running on it and will restore the NIC when it stops (stop it with kill -TERM, not -9)", ifname, owner)
	case errors.Is(err, errDamaged):
		return fmt.Errorf("cleanup %s: %w (check the NIC by hand: ethtool -g/-l/-x/-n %s; then delete the journal)", ifname, err, ifname)
	case err != nil:
		return fmt.Errorf("cleanup %s: %w", ifname, err)
	}
	if len(recs) == 0 {
		// Not even the begin record made it to disk, so nothing was changed.
		fmt.Fprintf(log, "nic %s: the journal is empty, nothing was changed\n", ifname)
		return j.remove()
	}
	if recs[0].Ifname != ifname {
		j.close()
		return fmt.Errorf("cleanup %s: journal %s belongs to %s (delete it if that is wrong)", ifname, path, recs[0].Ifname)
	}
	ifindex, err := k.Ifindex(ifname)
	if err != nil {
		j.close()
		return fmt.Errorf("cleanup %s: %w; the journal %s is kept (if the device is gone for good, its settings went with it: delete the journal)", ifname, err, path)
	}
	if ifindex != recs[0].Ifindex {
		j.close()
		return fmt.Errorf("cleanup %s: the interface is now ifindex %d, the journal was written for ifindex %d: the device was recreated and its settings went with it; delete %s", ifname, ifindex, recs[0].Ifindex, path)
	}
	fmt.Fprintf(log, "nic %s: restoring from the journal of ncdevmem pid %d\n", ifname, recs[0].PID)
	err = undo(k, ifname, &recs, j, log)
	if errors.Is(err, errCrash) {
		return err
	}
	if err != nil {
		j.close()
		return err
	}
	return nil
}

// undo reverts the records newest first, marking each undone in the journal, then deletes the
// journal. It keeps going past a failed record so independent settings still come back.
func undo(k Kernel, ifname string, recsp *[]record, j *journal, log io.Writer) error {
	recs := *recsp
	done := map[int]bool{}
	for _, r := range recs {
		if r.Kind == recUndone {
			done[r.Seq] = true
		}
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(log, "nic %s: "+format+"\n", append([]any{ifname}, a...)...)
	}
	var errs []error
	for i := len(recs) - 1; i >= 0; i-- {
		r, seq := recs[i], i+1
		if done[seq] || r.Kind == recBegin || r.Kind == recUndone {
			continue
		}
		// A pending record followed by its completion is undone through the completion.
		if (r.Kind == recContextPending || r.Kind == recRulePending) && i+1 < len(recs) &&
			(recs[i+1].Kind == recContext || recs[i+1].Kind == recRule) {
			continue
		}
		if err := undoOne(k, ifname, r, logf); err != nil {
			errs = append(errs, err)
			continue
		}
		if crashHook != nil && crashHook() {
			j.close()
			return errCrash
		}
		mark := record{Kind: recUndone, Seq: seq}
		if err := j.append(mark); err != nil {
			return err
		}
		*recsp = append(*recsp, mark)
		if crashHook != nil && crashHook() {
			j.close()
			return errCrash
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("restore %s: %w (the journal %s is kept: fix the cause, then run `ncdevmem cleanup -f %s`)", ifname, errors.Join(errs...), j.path, ifname)
	}
	return j.remove()
}

func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)
}

func undoOne(k Kernel, ifname string, r record, logf func(string, ...any)) error {
	switch r.Kind {
	case recChannels:
		cur, err := k.Channels(ifname)
		if err != nil {
			return err
		}
		var u ChannelsUpdate
		var desc string
		for _, f := range []struct {
			name      string
			cur, want uint32
			dst       **uint32
		}{
			{"rx", cur.RX, r.Channels.RX, &u.RX}, {"tx", cur.TX, r.Channels.TX, &u.TX},
			{"other", cur.Other, r.Channels.Other, &u.Other}, {"combined", cur.Combined, r.Channels.Combined, &u.Combined},
		} {
			if f.cur != f.want {
				v := f.want
				*f.dst = &v
				desc += fmt.Sprintf(" %s %d -> %d", f.name, f.cur, f.want)
			}
		}
		if desc == "" {
			return nil
		}
		if err := k.SetChannels(ifname, u); err != nil {
			return err
		}
		got, err := k.Channels(ifname)
		if err != nil {
			return err
		}
		if got.RX != r.Channels.RX || got.TX != r.Channels.TX || got.Other != r.Channels.Other || got.Combined != r.Channels.Combined {
			return fmt.Errorf("restore channels %s: read back %+v, want rx %d tx %d other %d combined %d", ifname, *got, r.Channels.RX, r.Channels.TX, r.Channels.Other, r.Channels.Combined)
		}
		logf("channels%s (restored)", desc)
	case recRings:
		return undoRings(k, ifname, r, logf)
	case recIndir:
		var want []uint32
		if !r.Default {
			want = r.Table
		}
		if err := k.SetIndir(ifname, want); err != nil {
			return err
		}
		got, err := k.Indir(ifname)
		if err != nil {
			return err
		}
		if r.Default {
			rxq, err := rxRings(k, ifname)
			if err != nil {
				return err
			}
			if !isDefaultIndir(got, rxq) {
				return fmt.Errorf("restore rss indirection %s: read back %v, want the default over %d queues", ifname, got, rxq)
			}
			logf("rss indirection -> default (restored)")
		} else {
			if !slices.Equal(got, r.Table) {
				return fmt.Errorf("restore rss indirection %s: read back %v, want %v", ifname, got, r.Table)
			}
			logf("rss indirection -> %s (restored)", describeIndir(r.Table, false))
		}
	case recContextPending, recContext:
		t, err := k.RSSContext(ifname, r.ID)
		if gone(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.Kind == recContextPending && !slices.Equal(t, r.Table) {
			// The create never happened; this context belongs to someone else.
			return nil
		}
		if err := k.DeleteRSSContext(ifname, r.ID); err != nil {
			return err
		}
		if _, err := k.RSSContext(ifname, r.ID); !gone(err) {
			return fmt.Errorf("restore %s: rss context %d still exists after delete (%v)", ifname, r.ID, err)
		}
		logf("rss context %d -> none (restored)", r.ID)
	case recRule:
		got, err := k.Rule(ifname, r.Loc)
		if gone(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !got.sameMatch(r.Rule) {
			logf("rule %d is not the one this tool installed (%s); left alone", r.Loc, got)
			return nil
		}
		return deleteRule(k, ifname, r.Loc, r.Rule, logf)
	case recRulePending:
		count, _, _, err := k.RuleCount(ifname)
		if gone(err) {
			return nil
		}
		if err != nil {
			return err
		}
		locs, err := k.RuleLocations(ifname, count)
		if err != nil {
			return err
		}
		for _, loc := range locs {
			if slices.Contains(r.Existing, loc) {
				continue
			}
			got, err := k.Rule(ifname, loc)
			if err != nil {
				return err
			}
			if got.sameMatch(r.Rule) {
				return deleteRule(k, ifname, loc, r.Rule, logf)
			}
		}
	}
	return nil
}

func deleteRule(k Kernel, ifname string, loc uint32, r Rule, logf func(string, ...any)) error {
	if err := k.DeleteRule(ifname, loc); err != nil {
		return err
	}
	if got, err := k.Rule(ifname, loc); err == nil && got.sameMatch(r) {
		return fmt.Errorf("restore %s: rule %d still there after delete", ifname, loc)
	}
	logf("rule %d -> none (restored)", loc)
	return nil
}

// undoRings puts tcp-data-split and hds-thresh back. tcp-data-split goes to "auto" (the driver
// default) first, as the C tool does, and is set explicitly only if auto reads back different from
// what was there: a default stays a default and an explicit setting that differs from it comes back.
// (An explicit setting equal to the default comes back as the default: no read can tell them apart.)
func undoRings(k Kernel, ifname string, r record, logf func(string, ...any)) error {
	cur, err := k.Rings(ifname)
	if err != nil {
		return err
	}
	var u RingsUpdate
	var desc []string
	// A driver that reports no header split never took the change (it would report "on").
	if r.Split != nil && !(*r.Split == TCPDataSplitUnknown && cur.TCPDataSplit == TCPDataSplitUnknown) {
		auto := TCPDataSplitUnknown
		u.TCPDataSplit = &auto
		desc = append(desc, fmt.Sprintf("tcp-data-split %s -> %s", cur.TCPDataSplit, *r.Split))
	}
	if r.HDS != nil && (cur.HDSThresh == nil || *cur.HDSThresh != *r.HDS) {
		u.HDSThresh = r.HDS
		desc = append(desc, fmt.Sprintf("hds-thresh %s -> %d", optU32(cur.HDSThresh), *r.HDS))
	}
	if u.TCPDataSplit == nil && u.HDSThresh == nil {
		return nil
	}
	if err := k.SetRings(ifname, u); err != nil {
		return err
	}
	got, err := k.Rings(ifname)
	if err != nil {
		return err
	}
	if u.TCPDataSplit != nil && *r.Split != TCPDataSplitUnknown && got.TCPDataSplit != *r.Split {
		if err := k.SetRings(ifname, RingsUpdate{TCPDataSplit: r.Split}); err != nil {
			return err
		}
		if got, err = k.Rings(ifname); err != nil {
			return err
		}
	}
	if r.Split != nil && *r.Split != TCPDataSplitUnknown && got.TCPDataSplit != *r.Split {
		return fmt.Errorf("restore tcp-data-split %s: read back %s, want %s", ifname, got.TCPDataSplit, *r.Split)
	}
	if r.HDS != nil && (got.HDSThresh == nil || *got.HDSThresh != *r.HDS) {
		return fmt.Errorf("restore hds-thresh %s: read back %s, want %d", ifname, optU32(got.HDSThresh), *r.HDS)
	}
	logf("%s (restored)", strings.Join(desc, ", "))
	return nil
}

func optU32(p *uint32) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprint(*p)
}
