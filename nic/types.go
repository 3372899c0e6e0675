// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nic

import (
	"net/netip"

	"github.com/devmemtcp/ncdevmem/nic/ethtool"
	"golang.org/x/sys/unix"
)

// The kernel's ethtool types live in package ethtool, with the clients that read and write them;
// these aliases keep them under the names callers of nic have always used.
type (
	// TCPDataSplit is the ethtool tcp-data-split ring setting (see ethtool.TCPDataSplit).
	TCPDataSplit = ethtool.TCPDataSplit
	// Rings is the ethtool ring state (RINGS_GET).
	Rings = ethtool.Rings
	// RingsUpdate is a RINGS_SET request; only non-nil fields are sent.
	RingsUpdate = ethtool.RingsUpdate
	// Channels is the ethtool channel state (CHANNELS_GET).
	Channels = ethtool.Channels
	// ChannelsUpdate is a CHANNELS_SET request; only non-nil fields are sent.
	ChannelsUpdate = ethtool.ChannelsUpdate
	// Driver is ETHTOOL_GDRVINFO.
	Driver = ethtool.Driver
	// Rule is one ntuple (RX classification) rule.
	Rule = ethtool.Rule
)

// TCPDataSplit values, as in enum ethtool_tcp_data_split (see package ethtool).
const (
	TCPDataSplitUnknown  = ethtool.TCPDataSplitUnknown
	TCPDataSplitDisabled = ethtool.TCPDataSplitDisabled
	TCPDataSplitEnabled  = ethtool.TCPDataSplitEnabled
)

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
	return ruleFromFlow(f, 0, 0).Match()
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
// operation, all on the interface named ifname. System() is the real kernel, through the clients
// of package nic/ethtool (Rings to SetChannels on its netlink Client, DriverInfo onwards on its
// IoctlClient); package nictest has an in-memory NIC with the kernel's rules. Methods return
// *Error for kernel refusals.
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
