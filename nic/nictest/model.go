// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package nictest is an in-memory NIC that implements nic.Kernel with the kernel's rules: ntuple
// slots, RSS table sizes and queue bounds, RSS contexts (lowest free ID, busy while a rule uses
// them), header split refused off while a memory provider is bound, channel counts refused below
// what RSS, rules or a bound provider use. Tests use it to drive nic.Prepare, Restore and Cleanup
// without root and to inject a failure at any kernel call.
package nictest

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/devmemtcp/ncdevmem/nic"
	"golang.org/x/sys/unix"
)

// NIC is the state of one modelled device. Fields are public so tests can set up and compare.
type NIC struct {
	Ifindex int
	Driver  string

	// Header split. HDS false: the driver rejects tcp-data-split (EOPNOTSUPP) and reports none.
	HDS bool
	// SplitConfig is the configured tcp-data-split (Unknown = auto); SplitDefault what auto gives.
	SplitConfig, SplitDefault nic.TCPDataSplit
	// HDSThreshSupported: hds-thresh reported and settable (kernel >= 6.14 with a capable driver).
	HDSThreshSupported      bool
	HDSThresh, HDSThreshMax uint32
	RX, RXMax, TX, TXMax    uint32

	Channels nic.Channels

	// Ntuple: rules by location in a table of TableSize; LocAny = RX_CLS_LOC_SPECIAL.
	Ntuple    bool
	TableSize uint32
	LocAny    bool
	Rules     map[uint32]nic.Rule
	// No5Tuple refuses rules that match a source (EOPNOTSUPP), as NICs that steer on the
	// destination only do (softnic's fault switch models the same).
	No5Tuple bool

	// RSS: IndirSize entries; Indir nil means the default (i mod RX queues).
	RSS         bool
	IndirSize   uint32
	Indir       []uint32
	Contexts    bool
	MaxContexts uint32
	ContextMap  map[uint32][]uint32

	// NoRXRings makes GRXRINGS unsupported although the RSS table works (netdevsim on 7.x).
	NoRXRings bool

	// HideRuleContext makes GRXCLSRULE report rules without their RSS context, as drivers that do
	// not fill in rss_context do.
	HideRuleContext bool

	// Kernel612 makes bind-rx check as 6.12 does (ERANGE after the header-split check, no
	// hds-thresh check) instead of 6.18 and later.
	Kernel612 bool

	// Bound models a devmem binding on BoundQueues.
	Bound       bool
	BoundQueues []uint32
}

// Clone returns a deep copy, for before/after comparison.
func (n *NIC) Clone() *NIC {
	c := *n
	c.Rules = maps.Clone(n.Rules)
	c.Indir = slices.Clone(n.Indir)
	c.ContextMap = map[uint32][]uint32{}
	for k, v := range n.ContextMap {
		c.ContextMap[k] = slices.Clone(v)
	}
	c.BoundQueues = slices.Clone(n.BoundQueues)
	return &c
}

// DevmemNIC returns a NIC like a bnxt/mlx5 port: 8 combined channels (max 16), header split off by
// default, hds-thresh 256, 1024-slot ntuple table with RX_CLS_LOC_ANY, 128-entry RSS table with
// 7 contexts.
func DevmemNIC(ifindex int) *NIC {
	return &NIC{
		Ifindex: ifindex, Driver: "model",
		HDS: true, SplitDefault: nic.TCPDataSplitDisabled,
		HDSThreshSupported: true, HDSThresh: 256, HDSThreshMax: 1024,
		RX: 1024, RXMax: 4096, TX: 1024, TXMax: 4096,
		Channels: nic.Channels{Combined: 8, CombinedMax: 16, OtherMax: 1, Other: 1},
		Ntuple:   true, TableSize: 1024, LocAny: true, Rules: map[uint32]nic.Rule{},
		RSS: true, IndirSize: 128, Contexts: true, MaxContexts: 7, ContextMap: map[uint32][]uint32{},
	}
}

// Model is a set of NICs by name implementing nic.Kernel.
type Model struct {
	mu   sync.Mutex
	NICs map[string]*NIC
	// FailAt makes the FailAt-th changing call (1-based, counted in Changes) fail with EIO before it
	// changes anything; 0 never fails.
	FailAt  int
	Changes int
}

// New returns a model holding nics.
func New(nics map[string]*NIC) *Model { return &Model{NICs: nics} }

var _ nic.Kernel = (*Model)(nil)

func kerr(ifname, op string, errno unix.Errno, msg string) error {
	return &nic.Error{Ifname: ifname, Op: op, Message: msg, Err: errno}
}

func (m *Model) get(ifname, op string) (*NIC, error) {
	n, ok := m.NICs[ifname]
	if !ok {
		return nil, kerr(ifname, op, unix.ENODEV, "no device matches name")
	}
	return n, nil
}

// change counts a changing call and injects the configured failure.
func (m *Model) change(ifname, op string) (*NIC, error) {
	n, err := m.get(ifname, op)
	if err != nil {
		return nil, err
	}
	m.Changes++
	if m.FailAt != 0 && m.Changes == m.FailAt {
		return nil, kerr(ifname, op, unix.EIO, "injected failure")
	}
	return n, nil
}

func (n *NIC) rxQueues() uint32 { return n.Channels.RX + n.Channels.Combined }

func (n *NIC) split() nic.TCPDataSplit {
	if !n.HDS {
		return nic.TCPDataSplitUnknown
	}
	if n.SplitConfig == nic.TCPDataSplitUnknown {
		return n.SplitDefault
	}
	return n.SplitConfig
}

func (n *NIC) indir() []uint32 {
	if n.Indir != nil {
		return slices.Clone(n.Indir)
	}
	t := make([]uint32, n.IndirSize)
	for i := range t {
		t[i] = uint32(i) % n.rxQueues()
	}
	return t
}

// Ifindex implements nic.Kernel.
func (m *Model) Ifindex(ifname string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.get(ifname, "look up interface")
	if err != nil {
		return 0, err
	}
	return n.Ifindex, nil
}

// Rings implements nic.Kernel.
func (m *Model) Rings(ifname string) (*nic.Rings, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.get(ifname, "get rings")
	if err != nil {
		return nil, err
	}
	r := &nic.Rings{RX: n.RX, RXMax: n.RXMax, TX: n.TX, TXMax: n.TXMax, TCPDataSplit: n.split()}
	if n.HDSThreshSupported {
		v, mx := n.HDSThresh, n.HDSThreshMax
		r.HDSThresh, r.HDSThreshMax = &v, &mx
	}
	return r, nil
}

// SetRings implements nic.Kernel with net/ethtool/rings.c's checks.
func (m *Model) SetRings(ifname string, u nic.RingsUpdate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.change(ifname, "set rings")
	if err != nil {
		return err
	}
	split := n.SplitConfig
	if u.TCPDataSplit != nil {
		if !n.HDS {
			return kerr(ifname, "set rings", unix.EOPNOTSUPP, "setting TCP data split is not supported")
		}
		split = *u.TCPDataSplit
	}
	thresh := n.HDSThresh
	if u.HDSThresh != nil {
		if !n.HDSThreshSupported {
			return kerr(ifname, "set rings", unix.EOPNOTSUPP, "setting hds-thresh is not supported")
		}
		if *u.HDSThresh > n.HDSThreshMax {
			return kerr(ifname, "set rings", unix.EINVAL, "hds-thresh is out of range")
		}
		thresh = *u.HDSThresh
	}
	if n.Bound {
		// The kernel checks the configured value: auto counts as not enabled.
		if split != nic.TCPDataSplitEnabled {
			return kerr(ifname, "set rings", unix.EINVAL, "can't disable tcp-data-split while device has memory provider enabled")
		}
		if thresh != 0 {
			return kerr(ifname, "set rings", unix.EINVAL, "can't set non-zero hds_thresh while device is memory provider enabled")
		}
	}
	if u.RX != nil {
		if *u.RX > n.RXMax {
			return kerr(ifname, "set rings", unix.EINVAL, "requested ring size exceeds maximum")
		}
		n.RX = *u.RX
	}
	if u.TX != nil {
		if *u.TX > n.TXMax {
			return kerr(ifname, "set rings", unix.EINVAL, "requested ring size exceeds maximum")
		}
		n.TX = *u.TX
	}
	n.SplitConfig, n.HDSThresh = split, thresh
	return nil
}

// Channels implements nic.Kernel.
func (m *Model) Channels(ifname string) (*nic.Channels, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.get(ifname, "get channels")
	if err != nil {
		return nil, err
	}
	c := n.Channels
	return &c, nil
}

// SetChannels implements nic.Kernel with net/ethtool/channels.c's checks.
func (m *Model) SetChannels(ifname string, u nic.ChannelsUpdate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.change(ifname, "set channels")
	if err != nil {
		return err
	}
	c := n.Channels
	for _, f := range []struct {
		v        *uint32
		dst      *uint32
		maxCount uint32
	}{{u.RX, &c.RX, c.RXMax}, {u.TX, &c.TX, c.TXMax}, {u.Other, &c.Other, c.OtherMax}, {u.Combined, &c.Combined, c.CombinedMax}} {
		if f.v != nil {
			if *f.v > f.maxCount {
				return kerr(ifname, "set channels", unix.EINVAL, "requested channel count exceeds maximum")
			}
			*f.dst = *f.v
		}
	}
	rxq := c.RX + c.Combined
	if rxq == 0 {
		return kerr(ifname, "set channels", unix.EINVAL, "requested channel counts are too low")
	}
	maxUsed := int64(-1)
	use := func(q uint32) { maxUsed = max(maxUsed, int64(q)) }
	if n.Indir != nil {
		for _, q := range n.Indir {
			use(q)
		}
	}
	for _, t := range n.ContextMap {
		for _, q := range t {
			use(q)
		}
	}
	for _, r := range n.Rules {
		if r.Context == 0 && r.Queue != ^uint64(0) {
			use(uint32(r.Queue))
		}
	}
	if maxUsed >= int64(rxq) {
		return kerr(ifname, "set channels", unix.EINVAL, "requested channel counts are too low for existing indirection table or ntuple rule settings")
	}
	if n.Bound {
		for _, q := range n.BoundQueues {
			if q >= rxq {
				return kerr(ifname, "set channels", unix.EINVAL, fmt.Sprintf("requested channel counts are too low for existing memory provider setting (%d)", q))
			}
		}
	}
	n.Channels = c
	return nil
}

// DriverInfo implements nic.Kernel.
func (m *Model) DriverInfo(ifname string) (*nic.Driver, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.get(ifname, "get driver info")
	if err != nil {
		return nil, err
	}
	return &nic.Driver{Driver: n.Driver, Version: "1", Bus: "model"}, nil
}

// RXRings implements nic.Kernel.
func (m *Model) RXRings(ifname string) (uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.get(ifname, "get RX ring count")
	if err != nil {
		return 0, err
	}
	if (!n.RSS && !n.Ntuple) || n.NoRXRings {
		return 0, kerr(ifname, "get RX ring count", unix.EOPNOTSUPP, "")
	}
	return n.rxQueues(), nil
}

// RuleCount implements nic.Kernel.
func (m *Model) RuleCount(ifname string) (uint32, uint32, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.get(ifname, "get RX class rule count")
	if err != nil {
		return 0, 0, false, err
	}
	if !n.Ntuple {
		return 0, 0, false, kerr(ifname, "get RX class rule count", unix.EOPNOTSUPP, "")
	}
	return uint32(len(n.Rules)), n.TableSize, n.LocAny, nil
}

// RuleLocations implements nic.Kernel.
func (m *Model) RuleLocations(ifname string, count uint32) ([]uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.get(ifname, "list RX class rules")
	if err != nil {
		return nil, err
	}
	if !n.Ntuple {
		return nil, kerr(ifname, "list RX class rules", unix.EOPNOTSUPP, "")
	}
	if count < uint32(len(n.Rules)) {
		return nil, kerr(ifname, "list RX class rules", unix.EMSGSIZE, "")
	}
	return slices.Sorted(maps.Keys(n.Rules)), nil
}

// Rule implements nic.Kernel.
func (m *Model) Rule(ifname string, loc uint32) (*nic.Rule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.get(ifname, "get rule")
	if err != nil {
		return nil, err
	}
	if !n.Ntuple {
		return nil, kerr(ifname, "get rule", unix.EOPNOTSUPP, "")
	}
	r, ok := n.Rules[loc]
	if !ok {
		return nil, kerr(ifname, "get rule", unix.ENOENT, "")
	}
	if n.HideRuleContext {
		r.Context = 0
	}
	return &r, nil
}

// InsertRule implements nic.Kernel; like most drivers it replaces a rule at a taken location.
func (m *Model) InsertRule(ifname string, r nic.Rule) (uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.change(ifname, "insert rule")
	if err != nil {
		return 0, err
	}
	if !n.Ntuple || n.No5Tuple && (r.Src.Addr().IsValid() || r.Src.Port() != 0) {
		return 0, kerr(ifname, "insert rule", unix.EOPNOTSUPP, "")
	}
	if r.Context != 0 {
		if _, ok := n.ContextMap[r.Context]; !ok {
			return 0, kerr(ifname, "insert rule", unix.EINVAL, "")
		}
	} else if r.Queue >= uint64(n.rxQueues()) {
		return 0, kerr(ifname, "insert rule", unix.EINVAL, "")
	}
	loc := r.Location
	if loc == 0xffffffff {
		if !n.LocAny {
			return 0, kerr(ifname, "insert rule", unix.EINVAL, "")
		}
		loc = n.TableSize
		for l := range n.TableSize {
			if _, used := n.Rules[n.TableSize-1-l]; !used {
				loc = n.TableSize - 1 - l // drivers tend to fill from the end
				break
			}
		}
		if loc == n.TableSize {
			return 0, kerr(ifname, "insert rule", unix.ENOSPC, "")
		}
	} else if loc >= n.TableSize {
		return 0, kerr(ifname, "insert rule", unix.EINVAL, "")
	}
	r.Location = loc
	n.Rules[loc] = r
	return loc, nil
}

// DeleteRule implements nic.Kernel.
func (m *Model) DeleteRule(ifname string, loc uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.change(ifname, "delete rule")
	if err != nil {
		return err
	}
	if !n.Ntuple {
		return kerr(ifname, "delete rule", unix.EOPNOTSUPP, "")
	}
	if _, ok := n.Rules[loc]; !ok {
		return kerr(ifname, "delete rule", unix.ENOENT, "")
	}
	delete(n.Rules, loc)
	return nil
}

// Indir implements nic.Kernel.
func (m *Model) Indir(ifname string) ([]uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.get(ifname, "get RSS indirection table")
	if err != nil {
		return nil, err
	}
	if !n.RSS {
		return nil, kerr(ifname, "get RSS indirection table", unix.EOPNOTSUPP, "")
	}
	return n.indir(), nil
}

func (n *NIC) checkTable(ifname, op string, t []uint32) error {
	if uint32(len(t)) != n.IndirSize {
		return kerr(ifname, op, unix.EINVAL, "")
	}
	for _, q := range t {
		if q >= n.rxQueues() {
			return kerr(ifname, op, unix.EINVAL, "")
		}
	}
	return nil
}

// SetIndir implements nic.Kernel.
func (m *Model) SetIndir(ifname string, t []uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.change(ifname, "set RSS indirection table")
	if err != nil {
		return err
	}
	if !n.RSS {
		return kerr(ifname, "set RSS indirection table", unix.EOPNOTSUPP, "")
	}
	if len(t) == 0 {
		n.Indir = nil
		return nil
	}
	if err := n.checkTable(ifname, "set RSS indirection table", t); err != nil {
		return err
	}
	n.Indir = slices.Clone(t)
	return nil
}

// RSSContext implements nic.Kernel.
func (m *Model) RSSContext(ifname string, ctx uint32) ([]uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.get(ifname, "get RSS context")
	if err != nil {
		return nil, err
	}
	if !n.RSS || !n.Contexts {
		return nil, kerr(ifname, "get RSS context", unix.EOPNOTSUPP, "")
	}
	t, ok := n.ContextMap[ctx]
	if !ok {
		return nil, kerr(ifname, "get RSS context", unix.ENOENT, "")
	}
	return slices.Clone(t), nil
}

// CreateRSSContext implements nic.Kernel: the lowest free ID from 1, as xa_alloc gives.
func (m *Model) CreateRSSContext(ifname string, t []uint32) (uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.change(ifname, "create RSS context")
	if err != nil {
		return 0, err
	}
	if !n.RSS || !n.Contexts {
		return 0, kerr(ifname, "create RSS context", unix.EOPNOTSUPP, "")
	}
	if err := n.checkTable(ifname, "create RSS context", t); err != nil {
		return 0, err
	}
	for id := uint32(1); id <= n.MaxContexts; id++ {
		if _, used := n.ContextMap[id]; !used {
			n.ContextMap[id] = slices.Clone(t)
			return id, nil
		}
	}
	return 0, kerr(ifname, "create RSS context", unix.EBUSY, "")
}

// DeleteRSSContext implements nic.Kernel; a context a rule still targets is busy.
func (m *Model) DeleteRSSContext(ifname string, ctx uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.change(ifname, "delete RSS context")
	if err != nil {
		return err
	}
	if !n.RSS || !n.Contexts {
		return kerr(ifname, "delete RSS context", unix.EOPNOTSUPP, "")
	}
	if _, ok := n.ContextMap[ctx]; !ok {
		return kerr(ifname, "delete RSS context", unix.ENOENT, "")
	}
	for _, r := range n.Rules {
		if r.Context == ctx {
			return kerr(ifname, "delete RSS context", unix.EBUSY, "")
		}
	}
	delete(n.ContextMap, ctx)
	return nil
}
