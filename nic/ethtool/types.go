// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package ethtool

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
	b.WriteString(r.Match())
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

// Match prints the rule's match as ethtool -N arguments, without the destination.
func (r Rule) Match() string {
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

// SameMatch reports whether two rules match the same packets. The destination (queue, context)
// is left out on purpose: drivers differ in what GRXCLSRULE reports back for it (rss_context is
// not filled in by all of them), while the match fields come back as written.
func (r Rule) SameMatch(o Rule) bool {
	return !r.Other && !o.Other && r.FlowType == o.FlowType && r.Src == o.Src && r.Dst == o.Dst
}
