// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nic

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

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
	u := &undoer{k: s.k, ifname: s.ifname, log: s.log, crash: s.crash}
	err := u.undo(&s.recs, s.j)
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
	return cleanup(&undoer{k: System(), ifname: ifname, log: log}, stateDir)
}

// cleanup is Cleanup with u's kernel, interface, log and (tests) crash simulator.
func cleanup(u *undoer, stateDir string) error {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	if u.log == nil {
		u.log = io.Discard
	}
	ifname := u.ifname
	if err := checkIfname(ifname); err != nil {
		return err
	}
	path := journalPath(stateDir, ifname)
	j, recs, err := openJournal(path)
	if err != nil {
		return openError(err, stateDir, ifname)
	}
	if len(recs) == 0 {
		// Not even the begin record made it to disk, so nothing was changed.
		fmt.Fprintf(u.log, "nic %s: the journal is empty, nothing was changed\n", ifname)
		return j.remove()
	}
	if err := sameDevice(u.k, recs[0], path, ifname); err != nil {
		j.close()
		return err
	}
	fmt.Fprintf(u.log, "nic %s: restoring from the journal of ncdevmem pid %d\n", ifname, recs[0].PID)
	err = u.undo(&recs, j)
	if errors.Is(err, errCrash) {
		return err
	}
	if err != nil {
		j.close()
		return err
	}
	return nil
}

// openError explains why cleanup could not open the journal.
func openError(err error, stateDir, ifname string) error {
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
	}
	return fmt.Errorf("cleanup %s: %w", ifname, err)
}

// sameDevice refuses a journal written for another interface, or for a device since recreated.
func sameDevice(k Kernel, begin record, path, ifname string) error {
	if begin.Ifname != ifname {
		return fmt.Errorf("cleanup %s: journal %s belongs to %s (delete it if that is wrong)", ifname, path, begin.Ifname)
	}
	ifindex, err := k.Ifindex(ifname)
	if err != nil {
		return fmt.Errorf("cleanup %s: %w; the journal %s is kept (if the device is gone for good, its settings went with it: delete the journal)", ifname, err, path)
	}
	if ifindex != begin.Ifindex {
		return fmt.Errorf("cleanup %s: the interface is now ifindex %d, the journal was written for ifindex %d: the device was recreated and its settings went with it; delete %s", ifname, ifindex, begin.Ifindex, path)
	}
	return nil
}

// undoer replays journal records against a kernel: Setup.Restore and Cleanup share it.
type undoer struct {
	k      Kernel
	ifname string
	log    io.Writer
	// crash simulates a kill -9 in tests (Request.crash): called before and after each "undone"
	// mark, it returns true to stop right there.
	crash func() bool
}

func (u *undoer) logf(format string, a ...any) {
	fmt.Fprintf(u.log, "nic %s: "+format+"\n", append([]any{u.ifname}, a...)...)
}

func (u *undoer) crashes() bool { return u.crash != nil && u.crash() }

// undo reverts the records newest first, marking each undone in the journal, then deletes the
// journal. It keeps going past a failed record so independent settings still come back.
func (u *undoer) undo(recsp *[]record, j *journal) error {
	recs := *recsp
	done := map[int]bool{}
	for _, r := range recs {
		if r.Kind == recUndone {
			done[r.Seq] = true
		}
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
		if err := u.undoOne(r); err != nil {
			errs = append(errs, err)
			continue
		}
		if u.crashes() {
			j.close()
			return errCrash
		}
		mark := record{Kind: recUndone, Seq: seq}
		if err := j.append(mark); err != nil {
			return err
		}
		*recsp = append(*recsp, mark)
		if u.crashes() {
			j.close()
			return errCrash
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("restore %s: %w (the journal %s is kept: fix the cause, then run `ncdevmem cleanup -f %s`)", u.ifname, errors.Join(errs...), j.path, u.ifname)
	}
	return j.remove()
}

func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)
}

// undoOne reverts one record and verifies it by reading back.
func (u *undoer) undoOne(r record) error {
	switch r.Kind {
	case recChannels:
		return u.undoChannels(r)
	case recRings:
		return u.undoRings(r)
	case recIndir:
		return u.undoIndir(r)
	case recContextPending, recContext:
		return u.undoContext(r)
	case recRule:
		return u.undoRule(r)
	case recRulePending:
		return u.undoRulePending(r)
	}
	return nil
}

func (u *undoer) undoChannels(r record) error {
	k, ifname := u.k, u.ifname
	cur, err := k.Channels(ifname)
	if err != nil {
		return err
	}
	var upd ChannelsUpdate
	var desc string
	for _, f := range []struct {
		name      string
		cur, want uint32
		dst       **uint32
	}{
		{"rx", cur.RX, r.Channels.RX, &upd.RX}, {"tx", cur.TX, r.Channels.TX, &upd.TX},
		{"other", cur.Other, r.Channels.Other, &upd.Other}, {"combined", cur.Combined, r.Channels.Combined, &upd.Combined},
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
	if err := k.SetChannels(ifname, upd); err != nil {
		return err
	}
	got, err := k.Channels(ifname)
	if err != nil {
		return err
	}
	if got.RX != r.Channels.RX || got.TX != r.Channels.TX || got.Other != r.Channels.Other || got.Combined != r.Channels.Combined {
		return fmt.Errorf("restore channels %s: read back %+v, want rx %d tx %d other %d combined %d", ifname, *got, r.Channels.RX, r.Channels.TX, r.Channels.Other, r.Channels.Combined)
	}
	u.logf("channels%s (restored)", desc)
	return nil
}

func (u *undoer) undoIndir(r record) error {
	k, ifname := u.k, u.ifname
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
	if !r.Default {
		if !slices.Equal(got, r.Table) {
			return fmt.Errorf("restore rss indirection %s: read back %v, want %v", ifname, got, r.Table)
		}
		u.logf("rss indirection -> %s (restored)", describeIndir(r.Table, false))
		return nil
	}
	rxq, err := rxRings(k, ifname)
	if err != nil {
		return err
	}
	if !isDefaultIndir(got, rxq) {
		return fmt.Errorf("restore rss indirection %s: read back %v, want the default over %d queues", ifname, got, rxq)
	}
	u.logf("rss indirection -> default (restored)")
	return nil
}

func (u *undoer) undoContext(r record) error {
	k, ifname := u.k, u.ifname
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
	u.logf("rss context %d -> none (restored)", r.ID)
	return nil
}

func (u *undoer) undoRule(r record) error {
	got, err := u.k.Rule(u.ifname, r.Loc)
	if gone(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !got.SameMatch(r.Rule) {
		u.logf("rule %d is not the one this tool installed (%s); left alone", r.Loc, got)
		return nil
	}
	return u.deleteRule(r.Loc, r.Rule)
}

// undoRulePending finds the rule a crash may have left between the insert and its record: a
// location that did not exist before, holding a rule with the same match.
func (u *undoer) undoRulePending(r record) error {
	k, ifname := u.k, u.ifname
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
		if got.SameMatch(r.Rule) {
			return u.deleteRule(loc, r.Rule)
		}
	}
	return nil
}

func (u *undoer) deleteRule(loc uint32, r Rule) error {
	if err := u.k.DeleteRule(u.ifname, loc); err != nil {
		return err
	}
	if got, err := u.k.Rule(u.ifname, loc); err == nil && got.SameMatch(r) {
		return fmt.Errorf("restore %s: rule %d still there after delete", u.ifname, loc)
	}
	u.logf("rule %d -> none (restored)", loc)
	return nil
}

// undoRings puts tcp-data-split and hds-thresh back. tcp-data-split goes to "auto" (the driver
// default) first, as the C tool does, and is set explicitly only if auto reads back different from
// what was there: a default stays a default and an explicit setting that differs from it comes back.
// (An explicit setting equal to the default comes back as the default: no read can tell them apart.)
func (u *undoer) undoRings(r record) error {
	k, ifname := u.k, u.ifname
	cur, err := k.Rings(ifname)
	if err != nil {
		return err
	}
	var upd RingsUpdate
	var desc []string
	// A driver that reports no header split never took the change (it would report "on").
	if r.Split != nil && !(*r.Split == TCPDataSplitUnknown && cur.TCPDataSplit == TCPDataSplitUnknown) {
		auto := TCPDataSplitUnknown
		upd.TCPDataSplit = &auto
		desc = append(desc, fmt.Sprintf("tcp-data-split %s -> %s", cur.TCPDataSplit, *r.Split))
	}
	if r.HDS != nil && (cur.HDSThresh == nil || *cur.HDSThresh != *r.HDS) {
		upd.HDSThresh = r.HDS
		desc = append(desc, fmt.Sprintf("hds-thresh %s -> %d", optU32(cur.HDSThresh), *r.HDS))
	}
	if upd.TCPDataSplit == nil && upd.HDSThresh == nil {
		return nil
	}
	if err := k.SetRings(ifname, upd); err != nil {
		return err
	}
	got, err := k.Rings(ifname)
	if err != nil {
		return err
	}
	if upd.TCPDataSplit != nil && *r.Split != TCPDataSplitUnknown && got.TCPDataSplit != *r.Split {
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
	u.logf("%s (restored)", strings.Join(desc, ", "))
	return nil
}

func optU32(p *uint32) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprint(*p)
}
