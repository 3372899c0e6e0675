// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package uapi

import (
	"testing"
	"unsafe"
)

// The expected numbers are pahole's for x86_64 (v6.12 headers) and match devmem-uapi.md §4.5.
func TestEthtoolLayouts(t *testing.T) {
	var (
		rxnfc EthtoolRxnfc
		fs    EthtoolRxFlowSpec
		t4    EthtoolTCPIP4Spec
		t6    EthtoolTCPIP6Spec
		ext   EthtoolFlowExt
		indir EthtoolRxfhIndir
		rxfh  EthtoolRxfh
		ch    EthtoolChannels
		ifr   Ifreq
	)
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(ethtool_rxnfc)", unsafe.Sizeof(rxnfc), SizeofEthtoolRxnfc},
		{"ethtool_rxnfc.cmd", unsafe.Offsetof(rxnfc.Cmd), 0},
		{"ethtool_rxnfc.flow_type", unsafe.Offsetof(rxnfc.FlowType), 4},
		{"ethtool_rxnfc.data", unsafe.Offsetof(rxnfc.Data), 8},
		{"ethtool_rxnfc.fs", unsafe.Offsetof(rxnfc.FS), 16},
		{"ethtool_rxnfc.rule_cnt", unsafe.Offsetof(rxnfc.RuleCnt), 184},
		{"ethtool_rxnfc.rule_locs", unsafe.Offsetof(rxnfc.RuleCnt) + 4, OffsetofEthtoolRxnfcLocs},

		{"sizeof(ethtool_rx_flow_spec)", unsafe.Sizeof(fs), SizeofEthtoolRxFlowSpec},
		{"ethtool_rx_flow_spec.flow_type", unsafe.Offsetof(fs.FlowType), 0},
		{"ethtool_rx_flow_spec.h_u", unsafe.Offsetof(fs.HU), 4},
		{"ethtool_rx_flow_spec.h_ext", unsafe.Offsetof(fs.HExt), 56},
		{"ethtool_rx_flow_spec.m_u", unsafe.Offsetof(fs.MU), 76},
		{"ethtool_rx_flow_spec.m_ext", unsafe.Offsetof(fs.MExt), 128},
		{"ethtool_rx_flow_spec.ring_cookie", unsafe.Offsetof(fs.RingCookie), 152},
		{"ethtool_rx_flow_spec.location", unsafe.Offsetof(fs.Location), 160},

		{"sizeof(ethtool_tcpip4_spec)", unsafe.Sizeof(t4), SizeofEthtoolTCPIP4Spec},
		{"ethtool_tcpip4_spec.ip4src", unsafe.Offsetof(t4.IP4Src), 0},
		{"ethtool_tcpip4_spec.ip4dst", unsafe.Offsetof(t4.IP4Dst), 4},
		{"ethtool_tcpip4_spec.psrc", unsafe.Offsetof(t4.PSrc), 8},
		{"ethtool_tcpip4_spec.pdst", unsafe.Offsetof(t4.PDst), 10},
		{"ethtool_tcpip4_spec.tos", unsafe.Offsetof(t4.TOS), 12},

		{"sizeof(ethtool_tcpip6_spec)", unsafe.Sizeof(t6), SizeofEthtoolTCPIP6Spec},
		{"ethtool_tcpip6_spec.ip6src", unsafe.Offsetof(t6.IP6Src), 0},
		{"ethtool_tcpip6_spec.ip6dst", unsafe.Offsetof(t6.IP6Dst), 16},
		{"ethtool_tcpip6_spec.psrc", unsafe.Offsetof(t6.PSrc), 32},
		{"ethtool_tcpip6_spec.pdst", unsafe.Offsetof(t6.PDst), 34},
		{"ethtool_tcpip6_spec.tclass", unsafe.Offsetof(t6.TClass), 36},

		{"sizeof(ethtool_flow_ext)", unsafe.Sizeof(ext), SizeofEthtoolFlowExt},
		{"ethtool_flow_ext.h_dest", unsafe.Offsetof(ext.HDest), 2},
		{"ethtool_flow_ext.vlan_etype", unsafe.Offsetof(ext.VLANEtype), 8},
		{"ethtool_flow_ext.vlan_tci", unsafe.Offsetof(ext.VLANTCI), 10},
		{"ethtool_flow_ext.data", unsafe.Offsetof(ext.Data), 12},

		{"sizeof(ethtool_rxfh_indir)", unsafe.Sizeof(indir), SizeofEthtoolRxfhIndir},
		{"ethtool_rxfh_indir.size", unsafe.Offsetof(indir.Size), 4},

		{"sizeof(ethtool_rxfh)", unsafe.Sizeof(rxfh), SizeofEthtoolRxfh},
		{"ethtool_rxfh.rss_context", unsafe.Offsetof(rxfh.RSSContext), 4},
		{"ethtool_rxfh.indir_size", unsafe.Offsetof(rxfh.IndirSize), 8},
		{"ethtool_rxfh.key_size", unsafe.Offsetof(rxfh.KeySize), 12},
		{"ethtool_rxfh.hfunc", unsafe.Offsetof(rxfh.Hfunc), 16},
		{"ethtool_rxfh.input_xfrm", unsafe.Offsetof(rxfh.InputXfrm), 17},

		{"sizeof(ethtool_channels)", unsafe.Sizeof(ch), SizeofEthtoolChannels},
		{"ethtool_channels.max_combined", unsafe.Offsetof(ch.MaxCombined), 16},
		{"ethtool_channels.rx_count", unsafe.Offsetof(ch.RXCount), 20},
		{"ethtool_channels.combined_count", unsafe.Offsetof(ch.CombinedCount), 32},

		{"sizeof(ifreq)", unsafe.Sizeof(ifr), SizeofIfreq},
		{"ifreq.ifr_data", unsafe.Offsetof(ifr.Data), 16},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}
