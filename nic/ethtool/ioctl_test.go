// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package ethtool

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

var addrPortEq = cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })

// bytesOf returns the memory of a command struct, as the kernel reads it.
func bytesOf[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

func wordBytes(w []uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), len(w)*8)
}

// golden builds an expected buffer from (offset, bytes) pairs taken from devmem-uapi.md §4.5, so
// the layout is checked against the spec rather than against the mirror.
func golden(size int, parts ...any) []byte {
	b := make([]byte, size)
	for i := 0; i < len(parts); i += 2 {
		copy(b[parts[i].(int):], parts[i+1].([]byte))
	}
	return b
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func ones(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xff
	}
	return b
}

func TestInsertRequestGoldenTCP4(t *testing.T) {
	r := Rule{Location: uapi.RX_CLS_LOC_ANY, FlowType: unix.TCP_V4_FLOW, Src: netip.MustParseAddrPort("192.0.2.2:40000"),
		Dst: netip.MustParseAddrPort("192.0.2.1:5201"), Queue: 7}
	req := insertRequest(r)
	want := golden(192,
		0, le32(0x32), // cmd SRXCLSRLINS
		4, le32(1), // flow_type TCP_V4_FLOW
		16, le32(1), // fs.flow_type
		20, []byte{192, 0, 2, 2, 192, 0, 2, 1, 0x9c, 0x40, 0x14, 0x51}, // h_u: src, dst, sport 40000, dport 5201 (big endian)
		16+76, ones(12), // m_u: both addresses and ports
		16+152, le64(7), // ring_cookie = queue 7
		16+160, le32(0xffffffff), // location RX_CLS_LOC_ANY
	)
	if diff := cmp.Diff(want, bytesOf(&req)); diff != "" {
		t.Fatalf("SRXCLSRLINS bytes (-want +got):\n%s", diff)
	}
}

func TestInsertRequestGoldenTCP6Context(t *testing.T) {
	r := Rule{Location: 5, FlowType: unix.TCP_V6_FLOW, Dst: netip.MustParseAddrPort("[2001:db8::1]:5201"), Context: 3}
	req := insertRequest(r)
	dst := netip.MustParseAddr("2001:db8::1").As16()
	want := golden(192,
		0, le32(0x32),
		4, le32(0x20000005), // TCP_V6_FLOW | FLOW_RSS
		16, le32(0x20000005),
		20+16, dst[:], // ip6dst at 16 in tcpip6_spec
		20+34, []byte{0x14, 0x51}, // pdst
		16+76+16, ones(16), // m_u ip6dst
		16+76+34, ones(2), // m_u pdst
		16+160, le32(5),
		184, le32(3), // rss_context
	)
	if diff := cmp.Diff(want, bytesOf(&req)); diff != "" {
		t.Fatalf("SRXCLSRLINS bytes (-want +got):\n%s", diff)
	}
}

func TestIndirRequestGolden(t *testing.T) {
	got := wordBytes(indirRequest([]uint32{0, 1, 0, 1}))
	want := golden(24, 0, le32(0x39), 4, le32(4), 8, le32(0), 12, le32(1), 16, le32(0), 20, le32(1))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("SRXFHINDIR bytes (-want +got):\n%s", diff)
	}
	got = wordBytes(indirRequest(nil))
	if diff := cmp.Diff(golden(8, 0, le32(0x39)), got); diff != "" {
		t.Fatalf("SRXFHINDIR reset bytes (-want +got):\n%s", diff)
	}
}

func TestRxfhRequestGolden(t *testing.T) {
	got := wordBytes(rxfhRequest(unix.ETHTOOL_SRSSH, uapi.ETH_RXFH_CONTEXT_ALLOC, []uint32{6, 7}))
	// cmd, rss_context, indir_size, key_size 0, hfunc 0 (no change), input_xfrm 0, reserved, table.
	want := golden(32, 0, le32(0x47), 4, le32(0xffffffff), 8, le32(2), 24, le32(6), 28, le32(7))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("SRSSH create bytes (-want +got):\n%s", diff)
	}
	got = wordBytes(rxfhRequest(unix.ETHTOOL_SRSSH, 4, nil))
	if diff := cmp.Diff(golden(24, 0, le32(0x47), 4, le32(4)), got); diff != "" {
		t.Fatalf("SRSSH delete bytes (-want +got):\n%s", diff)
	}
}

func TestChannelsAndDrvinfoGolden(t *testing.T) {
	ch := uapi.EthtoolChannels{Cmd: unix.ETHTOOL_GCHANNELS, MaxRX: 1, MaxTX: 2, MaxOther: 3, MaxCombined: 4, RXCount: 5, TXCount: 6, OtherCount: 7, CombinedCount: 8}
	want := golden(36, 0, le32(0x3c), 4, le32(1), 8, le32(2), 12, le32(3), 16, le32(4), 20, le32(5), 24, le32(6), 28, le32(7), 32, le32(8))
	if diff := cmp.Diff(want, bytesOf(&ch)); diff != "" {
		t.Fatalf("ethtool_channels bytes (-want +got):\n%s", diff)
	}
	var di unix.EthtoolDrvinfo
	if n := unsafe.Sizeof(di); n != 196 {
		t.Fatalf("sizeof(ethtool_drvinfo) = %d, want 196", n)
	}
	raw := golden(196, 0, le32(3), 4, []byte("veth\x00"), 36, []byte("1.0\x00"), 68, []byte("fw\x00"), 100, []byte("0000:01:00.0"))
	copy(bytesOf(&di), raw)
	d := driverOf(&di)
	if diff := cmp.Diff(&Driver{Driver: "veth", Version: "1.0", Firmware: "fw", Bus: "0000:01:00.0"}, d); diff != "" {
		t.Fatalf("drvinfo (-want +got):\n%s", diff)
	}
}

func TestFlowSpecRoundTrip(t *testing.T) {
	for _, r := range []Rule{
		{FlowType: unix.TCP_V4_FLOW, Dst: netip.MustParseAddrPort("192.0.2.1:5201"), Queue: 3, Location: 9},
		{FlowType: unix.TCP_V4_FLOW, Src: netip.MustParseAddrPort("192.0.2.2:1"), Dst: netip.MustParseAddrPort("192.0.2.1:5201"), Queue: 3},
		{FlowType: unix.TCP_V6_FLOW, Src: netip.MustParseAddrPort("[2001:db8::2]:0"), Dst: netip.MustParseAddrPort("[2001:db8::1]:80"), Context: 2},
	} {
		fs := encodeFlowSpec(r)
		got := decodeFlowSpec(&fs, r.Context)
		if diff := cmp.Diff(r, got, addrPortEq); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
	// A partial mask or a TOS match is not one of ours.
	fs := encodeFlowSpec(Rule{FlowType: unix.TCP_V4_FLOW, Dst: netip.MustParseAddrPort("192.0.2.1:5201")})
	fs.MU[4] = 0xf0
	if !decodeFlowSpec(&fs, 0).Other {
		t.Error("partial address mask not flagged Other")
	}
	fs = encodeFlowSpec(Rule{FlowType: unix.TCP_V4_FLOW, Dst: netip.MustParseAddrPort("192.0.2.1:5201")})
	fs.MU[12] = 0xff
	if !decodeFlowSpec(&fs, 0).Other {
		t.Error("TOS match not flagged Other")
	}
	fs = uapi.EthtoolRxFlowSpec{FlowType: unix.UDP_V4_FLOW}
	if !decodeFlowSpec(&fs, 0).Other {
		t.Error("UDP rule not flagged Other")
	}
}

func FuzzDecodeFlowSpec(f *testing.F) {
	fs := encodeFlowSpec(Rule{FlowType: unix.TCP_V4_FLOW, Dst: netip.MustParseAddrPort("192.0.2.1:5201"), Queue: 3})
	f.Add(append([]byte(nil), bytesOf(&fs)...), uint32(0))
	fs = encodeFlowSpec(Rule{FlowType: unix.TCP_V6_FLOW, Src: netip.MustParseAddrPort("[2001:db8::2]:9"), Dst: netip.MustParseAddrPort("[2001:db8::1]:80"), Context: 1})
	f.Add(append([]byte(nil), bytesOf(&fs)...), uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, ctx uint32) {
		var fs uapi.EthtoolRxFlowSpec
		copy(bytesOf(&fs), b)
		r := decodeFlowSpec(&fs, ctx)
		if r.Other {
			return
		}
		// A rule we understand must encode back to a spec that decodes to the same rule.
		again := encodeFlowSpec(r)
		if diff := cmp.Diff(r, decodeFlowSpec(&again, ctx), addrPortEq); diff != "" {
			t.Fatalf("re-decode (-first +second):\n%s", diff)
		}
	})
}
