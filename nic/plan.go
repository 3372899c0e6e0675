// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nic

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"golang.org/x/sys/unix"
)

// DefaultStateDir is where journals live unless Request.StateDir says otherwise: tmpfs, so a reboot
// (which resets the NIC too) clears them.
const DefaultStateDir = "/run/ncdevmem"

// Request says which NIC to prepare for which devmem queues and flows.
type Request struct {
	Ifname string
	// Queues are the RX queues the dma-buf will be bound to.
	Queues []int
	// Flows are steered to the devmem queues, one rule per distinct match.
	Flows []Flow
	// StateDir holds the journal; empty means DefaultStateDir.
	StateDir string
	// DryRun makes Prepare print the plan to Log and change nothing.
	DryRun bool
	// Log gets one line per change ("nic eth1: tcp-data-split off -> on"); nil discards.
	Log io.Writer
	// UseRSSContext: nil prefers an RSS context over the devmem queues when the driver has
	// contexts; true requires one; false never creates one.
	UseRSSContext *bool
	// HeaderSplitOnly limits the plan to tcp-data-split on and hds-thresh 0 (probe mode, TX).
	HeaderSplitOnly bool
	// Kernel is the seam to the kernel; nil means System().
	Kernel Kernel

	// crash simulates a kill -9, for tests only (export_test.go): called at every point between a
	// journal write and a kernel change, in Prepare and in the Restore of its Setup, it returns
	// true to stop right there, leaving the journal and the NIC as the kill would.
	crash func() bool
}

func (r *Request) kernel() Kernel {
	if r.Kernel == nil {
		return System()
	}
	return r.Kernel
}

func (r *Request) stateDir() string {
	if r.StateDir == "" {
		return DefaultStateDir
	}
	return r.StateDir
}

func (r *Request) log() io.Writer {
	if r.Log == nil {
		return io.Discard
	}
	return r.Log
}

// stepKind says what a Step changes.
type stepKind int

const (
	stepChannels stepKind = iota + 1
	stepRings
	stepIndir
	stepContext
	stepRule
)

// Step is one change of the plan.
type Step struct {
	// What names the setting in ethtool's words ("tcp-data-split", "rss indirection", "rule").
	What string
	// Old and New describe the value before and after ("off" -> "on").
	Old, New string

	kind     stepKind
	channels ChannelsUpdate
	rings    RingsUpdate
	oldCh    *Channels
	table    []uint32 // new main table, or the context's table
	rule     Rule     // Location RX_CLS_LOC_ANY or a free slot; Context set later for context rules
	toCtx    bool     // rule targets the context this plan creates
}

// String is the log line of the step: "tcp-data-split off -> on".
func (s Step) String() string { return s.What + " " + s.Old + " -> " + s.New }

// PlanResult is the computed plan: the changes Prepare would make, in order.
type PlanResult struct {
	Ifname string
	Steps  []Step
	// Context reports whether the plan creates an RSS context for the devmem queues.
	Context bool
	// Notes explain choices (why no context, shared rules) and print after the steps.
	Notes []string
}

// String prints one line per change, as Prepare logs them, then the notes.
func (p *PlanResult) String() string {
	var b strings.Builder
	if len(p.Steps) == 0 {
		fmt.Fprintf(&b, "nic %s: nothing to change\n", p.Ifname)
	}
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "nic %s: %s\n", p.Ifname, s)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "nic %s: note: %s\n", p.Ifname, n)
	}
	return b.String()
}

// Plan computes the changes that would prepare req.Ifname, from its current state; it changes
// nothing. Unsupported features give an *Error with advice; impossible requests a plain error.
func Plan(req Request) (*PlanResult, error) {
	if err := validate(&req); err != nil {
		return nil, err
	}
	return plan(req.kernel(), &req)
}

func validate(req *Request) error {
	if err := checkIfname(req.Ifname); err != nil {
		return err
	}
	if len(req.Queues) == 0 && !req.HeaderSplitOnly {
		return fmt.Errorf("prepare %s: no devmem queues given", req.Ifname)
	}
	seen := map[int]bool{}
	for _, q := range req.Queues {
		if q < 0 {
			return fmt.Errorf("prepare %s: queue %d is negative", req.Ifname, q)
		}
		if seen[q] {
			return fmt.Errorf("prepare %s: queue %d given twice", req.Ifname, q)
		}
		seen[q] = true
	}
	for _, f := range req.Flows {
		if !f.Dst.Addr().IsValid() || f.Dst.Port() == 0 {
			return fmt.Errorf("prepare %s: flow needs a destination address and port, got %v", req.Ifname, f.Dst)
		}
		d, s := f.Dst.Addr().Unmap(), f.Src.Addr().Unmap()
		if s.IsValid() && s.Is4() != d.Is4() {
			return fmt.Errorf("prepare %s: flow %v -> %v mixes IPv4 and IPv6", req.Ifname, f.Src, f.Dst)
		}
	}
	return nil
}

// ErrBadIfname is matched by errors for names no interface can have.
var ErrBadIfname = errors.New("not a valid interface name")

// checkIfname refuses names the kernel cannot have, which would also escape the state directory.
func checkIfname(ifname string) error {
	if ifname == "" || len(ifname) >= unix.IFNAMSIZ || ifname == "." || ifname == ".." ||
		strings.ContainsAny(ifname, "/ \t\n:") {
		return fmt.Errorf("interface name %q: %w (1-15 characters, no '/', ':' or spaces)", ifname, ErrBadIfname)
	}
	return nil
}

func plan(k Kernel, req *Request) (*PlanResult, error) {
	ifname := req.Ifname
	p := &PlanResult{Ifname: ifname}
	if _, err := k.Ifindex(ifname); err != nil {
		return nil, err
	}
	rxq := uint32(0)
	if !req.HeaderSplitOnly {
		var err error
		if rxq, err = planChannels(k, req, p); err != nil {
			return nil, err
		}
	}
	if err := planRings(k, ifname, p); err != nil {
		return nil, err
	}
	if req.HeaderSplitOnly {
		return p, nil
	}
	dq := make([]uint32, 0, len(req.Queues))
	for _, q := range req.Queues {
		dq = append(dq, uint32(q))
	}
	useCtx, err := planRSS(k, req, p, rxq, dq)
	if err != nil {
		return nil, err
	}
	if len(req.Flows) == 0 {
		return p, nil
	}
	if err := planRules(k, req, p, dq, useCtx); err != nil {
		return nil, err
	}
	return p, nil
}

// planChannels adds a channel step when the devmem queues do not exist or leave no queue for other
// traffic. It returns the RX queue count after the plan.
func planChannels(k Kernel, req *Request, p *PlanResult) (uint32, error) {
	ifname := req.Ifname
	ch, err := k.Channels(ifname)
	if err != nil {
		return 0, err
	}
	rxq := ch.RXQueues()
	need := uint32(slices.Max(req.Queues)) + 1
	if need <= uint32(len(req.Queues)) {
		need = uint32(len(req.Queues)) + 1 // queues 0..n-1 all devmem: one more for other traffic
	}
	if need <= rxq {
		return rxq, nil
	}
	s := Step{kind: stepChannels, oldCh: ch}
	switch {
	case ch.Combined > 0 && need-ch.RX <= ch.CombinedMax:
		v := need - ch.RX
		s.channels.Combined = &v
		s.What, s.Old, s.New = "channels combined", strconv.Itoa(int(ch.Combined)), strconv.Itoa(int(v))
	case ch.Combined == 0 && need <= ch.RXMax:
		s.channels.RX = &need
		s.What, s.Old, s.New = "channels rx", strconv.Itoa(int(ch.RX)), strconv.Itoa(int(need))
	default:
		return 0, fmt.Errorf("prepare %s: queues %s need %d RX queues but the device has %d and allows at most %d (pick lower queues with -t/-q; see ethtool -l %s)",
			ifname, queueList(req.Queues), need, rxq, max(ch.RXMax, ch.RX+ch.CombinedMax), ifname)
	}
	p.Steps = append(p.Steps, s)
	return need, nil
}

// planRings turns header split on: tcp-data-split on, hds-thresh 0 (the kernel's checks for
// binding a provider). Both are set even when they already read as wanted: bind-rx checks the
// configured values (dev->cfg), and a driver may report "on" or 0 while the configuration is
// "auto", which binding refuses. The C tool sets them unconditionally for the same reason.
func planRings(k Kernel, ifname string, p *PlanResult) error {
	rings, err := k.Rings(ifname)
	if err != nil {
		return err
	}
	on := TCPDataSplitEnabled
	st := Step{What: "tcp-data-split", Old: rings.TCPDataSplit.String(), New: "on", kind: stepRings, rings: RingsUpdate{TCPDataSplit: &on}}
	if rings.TCPDataSplit == TCPDataSplitEnabled {
		st.New = "on (configured explicitly)"
	}
	p.Steps = append(p.Steps, st)
	if rings.HDSThresh != nil {
		zero := uint32(0)
		st := Step{What: "hds-thresh", Old: strconv.Itoa(int(*rings.HDSThresh)), New: "0", kind: stepRings, rings: RingsUpdate{HDSThresh: &zero}}
		if *rings.HDSThresh == 0 {
			st.New = "0 (configured explicitly)"
		}
		p.Steps = append(p.Steps, st)
	}
	return nil
}

// planRSS keeps the main table off the devmem queues dq and, when the driver has contexts and
// there are flows, adds an RSS context spreading them over dq. It reports whether it did.
func planRSS(k Kernel, req *Request, p *PlanResult, rxq uint32, dq []uint32) (bool, error) {
	ifname := req.Ifname
	cur, err := k.Indir(ifname)
	if err != nil {
		return false, rssAdvice(err, ifname)
	}
	if len(cur) == 0 {
		return false, fmt.Errorf("prepare %s: the driver has no RSS indirection table, so traffic cannot be kept off the devmem queues (run with --no-setup on queues prepared another way)", ifname)
	}
	useCtx, err := planContext(k, req, p)
	if err != nil {
		return false, err
	}
	var others []uint32
	for q := range rxq {
		if !slices.Contains(dq, q) {
			others = append(others, q)
		}
	}
	hits := slices.ContainsFunc(cur, func(q uint32) bool { return slices.Contains(dq, q) })
	if hits || hasChannelStep(p) {
		// A channel change rebuilds a default table over all queues, so write ours after it.
		table := spread(len(cur), others)
		if !slices.Equal(table, cur) || hasChannelStep(p) {
			old := describeIndir(cur, isDefaultIndir(cur, rxqBefore(p, rxq)))
			p.Steps = append(p.Steps, Step{What: "rss indirection", Old: old, New: "queues " + queueList32(others), kind: stepIndir, table: table})
		}
	}
	if useCtx {
		p.Context = true
		p.Steps = append(p.Steps, Step{What: "rss context", Old: "none", New: "queues " + queueList32(dq), kind: stepContext, table: spread(len(cur), dq)})
	}
	return useCtx, nil
}

// planContext decides whether the plan creates an RSS context, as req.UseRSSContext asks.
func planContext(k Kernel, req *Request, p *PlanResult) (bool, error) {
	if req.UseRSSContext != nil && !*req.UseRSSContext {
		return false, nil
	}
	have, err := haveContexts(k, req.Ifname)
	if err != nil {
		return false, err
	}
	switch {
	case have && len(req.Flows) > 0:
		return true, nil
	case req.UseRSSContext != nil && !have:
		return false, fmt.Errorf("prepare %s: the driver has no RSS contexts (drop --rss-context)", req.Ifname)
	case !have:
		p.Notes = append(p.Notes, "the driver has no RSS contexts: each rule targets one devmem queue")
	}
	return false, nil
}

// planRules adds one rule per distinct match (5-tuple when the peer is known), to the context
// when useCtx, else round-robin over the devmem queues dq.
func planRules(k Kernel, req *Request, p *PlanResult, dq []uint32, useCtx bool) error {
	ifname := req.Ifname
	nt, err := ntupleInfo(k, ifname)
	if err != nil {
		return ntupleAdvice(err, ifname)
	}
	used := map[uint32]bool{}
	for _, e := range nt.Rules {
		used[e.Location] = true
	}
	var planned []Rule
	for i, f := range req.Flows {
		q := uint64(0)
		if !useCtx {
			q = uint64(dq[i%len(dq)])
		}
		r := ruleFromFlow(f, q, 0)
		if slices.ContainsFunc(planned, r.SameMatch) {
			if !useCtx {
				p.Notes = append(p.Notes, fmt.Sprintf("flows %s share one rule and so one queue (give peer addresses for one rule per flow)", r.Match()))
			}
			continue
		}
		if i := slices.IndexFunc(nt.Rules, r.SameMatch); i >= 0 {
			e := nt.Rules[i]
			return fmt.Errorf("prepare %s: rule %d already matches %s (delete it: ethtool -N %s delete %d)", ifname, e.Location, r.Match(), ifname, e.Location)
		}
		r.Location = uapi.RX_CLS_LOC_ANY
		if !nt.LocAny {
			loc, ok := freeSlot(nt.TableSize, used)
			if !ok {
				return fmt.Errorf("prepare %s: all %d ntuple rule slots are in use (delete one: ethtool -n %s, ethtool -N %s delete ID)", ifname, nt.TableSize, ifname, ifname)
			}
			used[loc] = true
			r.Location = loc
		}
		planned = append(planned, r)
		s := Step{What: "rule", Old: "none", New: r.Match(), kind: stepRule, rule: r, toCtx: useCtx}
		if useCtx {
			s.New += " context (new)"
		} else {
			s.New += fmt.Sprintf(" queue %d", r.Queue)
		}
		p.Steps = append(p.Steps, s)
	}
	return nil
}

func hasChannelStep(p *PlanResult) bool {
	return slices.ContainsFunc(p.Steps, func(s Step) bool { return s.kind == stepChannels })
}

// rxqBefore is the RX queue count the current main table was built for.
func rxqBefore(p *PlanResult, rxq uint32) uint32 {
	for _, s := range p.Steps {
		if s.kind == stepChannels {
			return s.oldCh.RXQueues()
		}
	}
	return rxq
}

// isDefaultIndir reports whether t is the kernel's default table (ethtool_rxfh_indir_default:
// entry i = i mod rx rings), which restore resets with SRXFHINDIR size 0 instead of writing back.
func isDefaultIndir(t []uint32, rxq uint32) bool {
	if rxq == 0 {
		return false
	}
	for i, q := range t {
		if q != uint32(i)%rxq {
			return false
		}
	}
	return true
}

func describeIndir(t []uint32, isDefault bool) string {
	if isDefault {
		return "default"
	}
	var qs []uint32
	for _, q := range t {
		if !slices.Contains(qs, q) {
			qs = append(qs, q)
		}
	}
	slices.Sort(qs)
	return "queues " + queueList32(qs)
}

// spread fills a table of n entries round-robin over queues (ethtool -X equal, over a set).
func spread(n int, queues []uint32) []uint32 {
	t := make([]uint32, n)
	for i := range t {
		t[i] = queues[i%len(queues)]
	}
	return t
}

func freeSlot(size uint32, used map[uint32]bool) (uint32, bool) {
	for loc := range size {
		if !used[loc] {
			return loc, true
		}
	}
	return 0, false
}

func queueList(qs []int) string {
	s := make([]string, len(qs))
	for i, q := range qs {
		s[i] = strconv.Itoa(q)
	}
	return strings.Join(s, ",")
}

func queueList32(qs []uint32) string {
	s := make([]string, len(qs))
	for i, q := range qs {
		s[i] = strconv.Itoa(int(q))
	}
	return strings.Join(s, ",")
}

func rssAdvice(err error, ifname string) error {
	var e *Error
	if errors.As(err, &e) && errors.Is(err, unix.EOPNOTSUPP) {
		e.Advice = "the driver has no RSS table control, so traffic cannot be kept off the devmem queues; devmem RX needs `ethtool -X " + ifname + " equal N` to work, or run with --no-setup on queues prepared another way"
	}
	return err
}

func ntupleAdvice(err error, ifname string) error {
	var e *Error
	if errors.As(err, &e) && errors.Is(err, unix.EOPNOTSUPP) {
		e.Advice = "the driver has no ntuple filters, or they are off: try `ethtool -K " + ifname + " ntuple on`, or run with --no-setup and steer the flow another way"
	}
	return err
}
