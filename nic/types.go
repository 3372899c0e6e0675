// SPDX-License-Identifier: MIT

package nic

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TCPDataSplit is the ethtool tcp-data-split ring setting (header/data split).
type TCPDataSplit uint8

// TCPDataSplit values, as in enum ethtool_tcp_data_split. Unknown on a get means the driver does not
// report it; on a set it means "driver default" (ethtool's "auto").
const (
	TCPDataSplitUnknown  TCPDataSplit = 0
	TCPDataSplitDisabled TCPDataSplit = 1
	TCPDataSplitEnabled  TCPDataSplit = 2
)

// String returns ethtool's words: "auto", "off", "on".
func (s TCPDataSplit) String() string {
	switch s {
	case TCPDataSplitUnknown:
		return "auto"
	case TCPDataSplitDisabled:
		return "off"
	case TCPDataSplitEnabled:
		return "on"
	}
	return "tcp-data-split(" + strconv.Itoa(int(s)) + ")"
}

// Rings is the ethtool ring state (RINGS_GET).
type Rings struct {
	RX, RXMax, TX, TXMax uint32
	// TCPDataSplit is Unknown when the driver does not report header split.
	TCPDataSplit TCPDataSplit
	// HDSThresh and HDSThreshMax are nil when the driver (or a kernel before 6.14) does not report them.
	HDSThresh, HDSThreshMax *uint32
}

// RingsUpdate is a RINGS_SET request; only non-nil fields are sent.
type RingsUpdate struct {
	RX, TX       *uint32
	TCPDataSplit *TCPDataSplit
	HDSThresh    *uint32
}

// Channels is the ethtool channel state (CHANNELS_GET).
type Channels struct {
	RX, TX, Other, Combined             uint32
	RXMax, TXMax, OtherMax, CombinedMax uint32
}

// RXQueues is the number of RX queues the channels give: rx + combined.
func (c *Channels) RXQueues() uint32 { return c.RX + c.Combined }

// ChannelsUpdate is a CHANNELS_SET request; only non-nil fields are sent.
type ChannelsUpdate struct {
	RX, TX, Other, Combined *uint32
}

// Driver is ETHTOOL_GDRVINFO.
type Driver struct {
	Driver, Version, Firmware, Bus string
}

// Flow is one TCP flow to steer to the devmem queues. Dst is the local (listening) address and
// port. Src is the peer: its zero value gives a 3-tuple rule (dst-ip, dst-port); a valid address
// adds src-ip, and a non-zero port adds src-port (a 5-tuple). IPv4-mapped IPv6 addresses are
// treated as IPv4, as the C tool does.
type Flow struct {
	Dst netip.AddrPort
	Src netip.AddrPort
}

// String prints the flow as ethtool -N arguments.
func (f Flow) String() string {
	return ruleFromFlow(f, 0, 0).matchString()
}

// Rule is one ntuple (RX classification) rule.
type Rule struct {
	// Location is the rule's slot: its ID for deletion.
	Location uint32
	// FlowType is unix.TCP_V4_FLOW or unix.TCP_V6_FLOW for the rules this package writes; other
	// flow types are listed with Other set.
	FlowType uint32
	// Src and Dst match when their address is valid (full mask) or port non-zero (full mask).
	Src, Dst netip.AddrPort
	// Queue is the ring_cookie: the RX queue, or the queue offset inside Context.
	Queue uint64
	// Context is the RSS context the rule targets (FLOW_RSS), 0 for none.
	Context uint32
	// Other means the rule uses matches this package does not model (partial masks, TOS, VLAN,
	// MAC, non-TCP flow types); such a rule is listed but never taken for one of ours.
	Other bool
}

// String prints the rule as ethtool -N arguments.
func (r Rule) String() string {
	var b strings.Builder
	b.WriteString(r.matchString())
	switch {
	case r.Queue == ^uint64(0):
		b.WriteString(" action -1")
	case r.Context != 0:
		fmt.Fprintf(&b, " context %d", r.Context)
		if r.Queue != 0 {
			fmt.Fprintf(&b, " queue %d", r.Queue)
		}
	default:
		fmt.Fprintf(&b, " queue %d", r.Queue)
	}
	return b.String()
}

func (r Rule) matchString() string {
	var b strings.Builder
	switch r.FlowType {
	case unix.TCP_V4_FLOW:
		b.WriteString("flow-type tcp4")
	case unix.TCP_V6_FLOW:
		b.WriteString("flow-type tcp6")
	default:
		fmt.Fprintf(&b, "flow-type %#x", r.FlowType)
	}
	if r.Src.Addr().IsValid() {
		b.WriteString(" src-ip " + r.Src.Addr().String())
	}
	if r.Dst.Addr().IsValid() {
		b.WriteString(" dst-ip " + r.Dst.Addr().String())
	}
	if r.Src.Port() != 0 {
		fmt.Fprintf(&b, " src-port %d", r.Src.Port())
	}
	if r.Dst.Port() != 0 {
		fmt.Fprintf(&b, " dst-port %d", r.Dst.Port())
	}
	if r.Other {
		b.WriteString(" (plus matches not shown)")
	}
	return b.String()
}

// sameMatch reports whether two rules match the same packets. The destination (queue, context)
// is left out on purpose: drivers differ in what GRXCLSRULE reports back for it (rss_context is
// not filled in by all of them), while the match fields come back as written.
func (r Rule) sameMatch(o Rule) bool {
	return !r.Other && !o.Other && r.FlowType == o.FlowType && r.Src == o.Src && r.Dst == o.Dst
}

// ruleFromFlow builds the rule for f to queue q (or to RSS context ctx when ctx != 0, q = 0).
func ruleFromFlow(f Flow, q uint64, ctx uint32) Rule {
	r := Rule{FlowType: unix.TCP_V6_FLOW, Queue: q, Context: ctx}
	dst, src := f.Dst.Addr().Unmap(), f.Src.Addr().Unmap()
	if dst.Is4() {
		r.FlowType = unix.TCP_V4_FLOW
	}
	r.Dst = netip.AddrPortFrom(dst, f.Dst.Port())
	r.Src = netip.AddrPortFrom(src, f.Src.Port())
	return r
}

// Ntuple is the ntuple rule table of a NIC.
type Ntuple struct {
	// TableSize is the number of rule slots (GRXCLSRLCNT data, without the flag bit).
	TableSize uint32
	// Count is the number of rules installed (GRXCLSRLCNT rule_cnt).
	Count uint32
	// LocAny reports whether the driver picks the slot itself (RX_CLS_LOC_ANY).
	LocAny bool
	// Rules are the installed rules, by location.
	Rules []Rule
}

// RSS is the RSS state of a NIC.
type RSS struct {
	// RXRings is the number of RX rings RSS spreads over (GRXRINGS).
	RXRings uint32
	// Indir is the main indirection table (GRXFHINDIR), nil when the driver has none.
	Indir []uint32
	// Contexts reports whether the driver supports additional RSS contexts.
	Contexts bool
}

// Kernel is the seam between this package's logic and the kernel: one method per ethtool
// operation, all on the interface named ifname. System() is the real kernel; package nictest has
// an in-memory NIC with the kernel's rules. Methods return *Error for kernel refusals.
type Kernel interface {
	// Ifindex returns the interface index, or an error when the interface does not exist.
	Ifindex(ifname string) (int, error)
	// Rings is ethtool netlink RINGS_GET.
	Rings(ifname string) (*Rings, error)
	// SetRings is RINGS_SET with the non-nil fields of u.
	SetRings(ifname string, u RingsUpdate) error
	// Channels is CHANNELS_GET.
	Channels(ifname string) (*Channels, error)
	// SetChannels is CHANNELS_SET with the non-nil fields of u.
	SetChannels(ifname string, u ChannelsUpdate) error
	// DriverInfo is ETHTOOL_GDRVINFO.
	DriverInfo(ifname string) (*Driver, error)
	// RXRings is ETHTOOL_GRXRINGS.
	RXRings(ifname string) (uint32, error)
	// RuleCount is ETHTOOL_GRXCLSRLCNT: rules installed, table size, and RX_CLS_LOC_SPECIAL.
	RuleCount(ifname string) (count, tableSize uint32, locSpecial bool, err error)
	// RuleLocations is ETHTOOL_GRXCLSRLALL for up to count rules.
	RuleLocations(ifname string, count uint32) ([]uint32, error)
	// Rule is ETHTOOL_GRXCLSRULE.
	Rule(ifname string, loc uint32) (*Rule, error)
	// InsertRule is ETHTOOL_SRXCLSRLINS; r.Location may be RX_CLS_LOC_ANY. It returns the location used.
	InsertRule(ifname string, r Rule) (uint32, error)
	// DeleteRule is ETHTOOL_SRXCLSRLDEL.
	DeleteRule(ifname string, loc uint32) error
	// Indir is ETHTOOL_GRXFHINDIR.
	Indir(ifname string) ([]uint32, error)
	// SetIndir is ETHTOOL_SRXFHINDIR; an empty table resets the driver default.
	SetIndir(ifname string, table []uint32) error
	// RSSContext is ETHTOOL_GRSSH for context ctx (> 0): its indirection table. A missing context is
	// ENOENT, a driver without contexts EOPNOTSUPP.
	RSSContext(ifname string, ctx uint32) ([]uint32, error)
	// CreateRSSContext is ETHTOOL_SRSSH with ETH_RXFH_CONTEXT_ALLOC; it returns the new context ID.
	CreateRSSContext(ifname string, table []uint32) (uint32, error)
	// DeleteRSSContext is ETHTOOL_SRSSH with indir_size 0 and key_size 0 (delete).
	DeleteRSSContext(ifname string, ctx uint32) error
}
