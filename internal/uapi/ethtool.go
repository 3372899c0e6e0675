// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package uapi

import (
	"structs"
	"unsafe"
)

// ethtool netlink values x/sys/unix lacks.
// include/uapi/linux/ethtool.h (v6.1+): enum ethtool_tcp_data_split, the value of
// ETHTOOL_A_RINGS_TCP_DATA_SPLIT (u8). UNKNOWN on set means "driver default" (auto).
const (
	ETHTOOL_TCP_DATA_SPLIT_UNKNOWN  = 0 //nolint:revive // kernel spelling
	ETHTOOL_TCP_DATA_SPLIT_DISABLED = 1 //nolint:revive // kernel spelling
	ETHTOOL_TCP_DATA_SPLIT_ENABLED  = 2 //nolint:revive // kernel spelling
)

// include/uapi/linux/ethtool.h (v6.8): RX classification rule locations, ring cookies and
// flow-type flags for struct ethtool_rx_flow_spec, and RSS context allocation for struct ethtool_rxfh.
const (
	RX_CLS_FLOW_DISC         = ^uint64(0)                                  //nolint:revive // ring_cookie: drop
	RX_CLS_FLOW_WAKE         = ^uint64(1)                                  //nolint:revive // ring_cookie: wake-on-lan
	RX_CLS_LOC_SPECIAL       = 0x80000000                                  //nolint:revive // GRXCLSRLCNT data flag: driver takes RX_CLS_LOC_* on insert
	RX_CLS_LOC_ANY           = 0xffffffff                                  //nolint:revive // let the driver pick the slot
	RX_CLS_LOC_FIRST         = 0xfffffffe                                  //nolint:revive
	RX_CLS_LOC_LAST          = 0xfffffffd                                  //nolint:revive
	FLOW_EXT                 = 0x80000000                                  //nolint:revive // h_ext/m_ext valid
	FLOW_MAC_EXT             = 0x40000000                                  //nolint:revive
	FLOW_RSS                 = 0x20000000                                  //nolint:revive // rule targets rss_context, ring_cookie is an offset into it
	ETH_RXFH_CONTEXT_ALLOC   = 0xffffffff                                  //nolint:revive // SRSSH rss_context: create a new context
	ETH_RXFH_INDIR_NO_CHANGE = 0xffffffff                                  //nolint:revive // SRSSH indir_size: leave the table as is
	ETHTOOL_FLOW_TYPE_MASK   = ^uint32(FLOW_EXT | FLOW_MAC_EXT | FLOW_RSS) //nolint:revive // the flow type without flag bits
)

// PROC_NET_INIT_INO is the fixed inode number of the initial network namespace's nsfs file
// (include/linux/proc_ns.h, v6.x; older kernels allocate it dynamically). Not uapi, but stable: it
// tells the host namespace from others without reading /proc/1.
const PROC_NET_INIT_INO = 0xEFFFFFF9 //nolint:revive // kernel spelling

// Sizes of the ethtool ioctl structs (x86_64 and every 64-bit Linux ABI; checked with pahole on v6.12).
const (
	SizeofEthtoolRxnfc       = 192 // struct ethtool_rxnfc with an empty rule_locs[]
	OffsetofEthtoolRxnfcLocs = 188 // offsetof(struct ethtool_rxnfc, rule_locs): GRXCLSRLALL writes here
	SizeofEthtoolRxFlowSpec  = 168
	SizeofEthtoolTCPIP4Spec  = 16 // struct ethtool_tcpip4_spec (h_u/m_u is a 52-byte union)
	SizeofEthtoolTCPIP6Spec  = 40
	SizeofEthtoolFlowExt     = 20
	SizeofEthtoolRxfhIndir   = 8  // header before ring_index[]
	SizeofEthtoolRxfh        = 24 // header before rss_config[] and the key
	SizeofEthtoolChannels    = 36
	SizeofIfreq              = 40
	SizeofEthtoolFlowUnion   = 52 // union ethtool_flow_union
)

// EthtoolTCPIP4Spec mirrors struct ethtool_tcpip4_spec (include/uapi/linux/ethtool.h, v2.6.27+).
// Addresses and ports are in network byte order.
type EthtoolTCPIP4Spec struct {
	_      structs.HostLayout
	IP4Src [4]byte
	IP4Dst [4]byte
	PSrc   [2]byte
	PDst   [2]byte
	TOS    uint8
	_      [3]byte
}

// EthtoolTCPIP6Spec mirrors struct ethtool_tcpip6_spec (v3.16+). Network byte order.
type EthtoolTCPIP6Spec struct {
	_      structs.HostLayout
	IP6Src [16]byte
	IP6Dst [16]byte
	PSrc   [2]byte
	PDst   [2]byte
	TClass uint8
	_      [3]byte
}

// EthtoolFlowExt mirrors struct ethtool_flow_ext (v2.6.36+).
type EthtoolFlowExt struct {
	_         structs.HostLayout
	Padding   [2]byte
	HDest     [6]byte
	VLANEtype [2]byte
	VLANTCI   [2]byte
	Data      [2][4]byte
}

// EthtoolRxFlowSpec mirrors struct ethtool_rx_flow_spec (v2.6.27+; h_ext/m_ext v2.6.36+). HU and MU
// hold union ethtool_flow_union: an EthtoolTCPIP4Spec or EthtoolTCPIP6Spec for TCP rules.
type EthtoolRxFlowSpec struct {
	_          structs.HostLayout
	FlowType   uint32
	HU         [SizeofEthtoolFlowUnion]byte
	HExt       EthtoolFlowExt
	MU         [SizeofEthtoolFlowUnion]byte
	MExt       EthtoolFlowExt
	_          [4]byte // the u64 ring_cookie is 8-byte aligned
	RingCookie uint64
	Location   uint32
	_          [4]byte
}

// EthtoolRxnfc mirrors struct ethtool_rxnfc (v2.6.27+; rss_context union v4.13+). RuleCnt is the
// union { rule_cnt; rss_context }. rule_locs[] starts at OffsetofEthtoolRxnfcLocs, inside the
// trailing padding, so a GRXCLSRLALL buffer is OffsetofEthtoolRxnfcLocs + 4*rule_cnt bytes.
type EthtoolRxnfc struct {
	_        structs.HostLayout
	Cmd      uint32
	FlowType uint32
	Data     uint64
	FS       EthtoolRxFlowSpec
	RuleCnt  uint32
	_        [4]byte // rule_locs[0] and alignment padding
}

// EthtoolRxfhIndir mirrors the header of struct ethtool_rxfh_indir (v3.3+); ring_index[Size] follows.
type EthtoolRxfhIndir struct {
	_    structs.HostLayout
	Cmd  uint32
	Size uint32
}

// EthtoolRxfh mirrors the header of struct ethtool_rxfh (v3.16+; input_xfrm v6.8+); rss_config
// u32[IndirSize] and then KeySize key bytes follow.
type EthtoolRxfh struct {
	_          structs.HostLayout
	Cmd        uint32
	RSSContext uint32
	IndirSize  uint32
	KeySize    uint32
	Hfunc      uint8
	InputXfrm  uint8
	_          [2]byte
	_          uint32
}

// EthtoolChannels mirrors struct ethtool_channels (v3.2+), used by ETHTOOL_GCHANNELS/SCHANNELS.
type EthtoolChannels struct {
	_             structs.HostLayout
	Cmd           uint32
	MaxRX         uint32
	MaxTX         uint32
	MaxOther      uint32
	MaxCombined   uint32
	RXCount       uint32
	TXCount       uint32
	OtherCount    uint32
	CombinedCount uint32
}

// Ifreq mirrors struct ifreq (include/uapi/linux/if.h) with ifr_data: the command struct SIOCETHTOOL
// reads and writes. Data must point at Go memory kept alive across the ioctl. (x/sys's unix.Ifreq
// cannot carry a data pointer.)
type Ifreq struct {
	_    structs.HostLayout
	Name [16]byte
	Data unsafe.Pointer
	_    [16]byte
}
