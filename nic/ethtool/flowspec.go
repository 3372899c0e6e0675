// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package ethtool

import (
	"encoding/binary"
	"net/netip"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"golang.org/x/sys/unix"
)

// encodeFlowSpec builds the ethtool_rx_flow_spec for a TCP rule. Set bits in m_u mean "match this
// bit" (ethtool's convention in the ioctl; the driver inverts if it needs to).
func encodeFlowSpec(r Rule) uapi.EthtoolRxFlowSpec {
	fs := uapi.EthtoolRxFlowSpec{FlowType: r.FlowType, RingCookie: r.Queue, Location: r.Location}
	if r.Context != 0 {
		fs.FlowType |= uapi.FLOW_RSS
	}
	full := [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// Field offsets inside the union: tcpip4 src 0 dst 4 psrc 8 pdst 10; tcpip6 src 0 dst 16 psrc 32 pdst 34.
	alen, psrc := 4, 8
	if r.FlowType == unix.TCP_V6_FLOW {
		alen, psrc = 16, 32
	}
	put := func(off int, a netip.Addr) {
		if !a.IsValid() {
			return
		}
		s := a.AsSlice()
		copy(fs.HU[off:off+alen], s)
		copy(fs.MU[off:off+alen], full[:alen])
	}
	port := func(off int, p uint16) {
		if p == 0 {
			return
		}
		binary.BigEndian.PutUint16(fs.HU[off:], p)
		binary.BigEndian.PutUint16(fs.MU[off:], 0xffff)
	}
	put(0, r.Src.Addr())
	put(alen, r.Dst.Addr())
	port(psrc, r.Src.Port())
	port(psrc+2, r.Dst.Port())
	return fs
}

// decodeFlowSpec turns a flow spec from GRXCLSRULE into a Rule. Anything beyond exact TCP address
// and port matches sets Other: such a rule is never mistaken for one of ours.
func decodeFlowSpec(fs *uapi.EthtoolRxFlowSpec, rssContext uint32) Rule {
	r := Rule{
		Location: fs.Location,
		FlowType: fs.FlowType & uapi.ETHTOOL_FLOW_TYPE_MASK,
		Queue:    fs.RingCookie,
	}
	if fs.FlowType&uapi.FLOW_RSS != 0 {
		r.Context = rssContext
	}
	if fs.FlowType&(uapi.FLOW_EXT|uapi.FLOW_MAC_EXT) != 0 && (fs.MExt != uapi.EthtoolFlowExt{}) {
		r.Other = true
	}
	var alen, psrc, used int
	switch r.FlowType {
	case unix.TCP_V4_FLOW:
		alen, psrc, used = 4, 8, uapi.SizeofEthtoolTCPIP4Spec
	case unix.TCP_V6_FLOW:
		alen, psrc, used = 16, 32, uapi.SizeofEthtoolTCPIP6Spec
	default:
		r.Other = true
		return r
	}
	// Anything masked beyond addresses and ports (tos/tclass, or union bytes past the spec).
	for _, b := range fs.MU[psrc+4 : used] {
		if b != 0 {
			r.Other = true
		}
	}
	for _, b := range fs.MU[used:] {
		if b != 0 {
			r.Other = true
		}
	}
	addr := func(off int) netip.Addr {
		m := fs.MU[off : off+alen]
		switch classify(m) {
		case maskNone:
			return netip.Addr{}
		case maskFull:
			if alen == 4 {
				return netip.AddrFrom4([4]byte(fs.HU[off : off+4]))
			}
			return netip.AddrFrom16([16]byte(fs.HU[off : off+16]))
		}
		r.Other = true
		return netip.Addr{}
	}
	port := func(off int) uint16 {
		switch classify(fs.MU[off : off+2]) {
		case maskNone:
			return 0
		case maskFull:
			return binary.BigEndian.Uint16(fs.HU[off:])
		}
		r.Other = true
		return 0
	}
	src, dst := addr(0), addr(alen)
	sp, dp := port(psrc), port(psrc+2)
	r.Src, r.Dst = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return r
}

type maskKind int

const (
	maskNone maskKind = iota
	maskFull
	maskPartial
)

func classify(m []byte) maskKind {
	zero, ones := true, true
	for _, b := range m {
		if b != 0 {
			zero = false
		}
		if b != 0xff {
			ones = false
		}
	}
	switch {
	case zero:
		return maskNone
	case ones:
		return maskFull
	}
	return maskPartial
}
