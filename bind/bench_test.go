// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind

import (
	"encoding/binary"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// The bench samples qstats and page-pool stats once per interval, not per packet, so these decoders
// are not a hot path; the benchmarks keep their cost visible (allocations are the reply slice and
// the decoder, none per attribute).

func qstatsReplies(n int) []genetlink.Message {
	msgs := make([]genetlink.Message, n)
	for i := range msgs {
		ae := netlink.NewAttributeEncoder()
		ae.Uint32(uapi.NETDEV_A_QSTATS_IFINDEX, 2)
		ae.Uint32(uapi.NETDEV_A_QSTATS_QUEUE_TYPE, 0)
		ae.Uint32(uapi.NETDEV_A_QSTATS_QUEUE_ID, uint32(i))
		for t := uint16(uapi.NETDEV_A_QSTATS_RX_PACKETS); t <= uapi.NETDEV_A_QSTATS_TX_WAKE; t++ {
			ae.Uint64(t, uint64(t)<<33)
		}
		b, _ := ae.Encode()
		msgs[i] = genetlink.Message{Data: b}
	}
	return msgs
}

func BenchmarkParseQstats64Queues(b *testing.B) {
	msgs := qstatsReplies(64)
	b.ReportAllocs()
	for b.Loop() {
		qs, err := parseQstats(msgs)
		if err != nil || len(qs) != 64 {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAck(b *testing.B) {
	d := append(binary.NativeEndian.AppendUint32(nil, uint32(0xffffffea)), nlmsg(testFamilyID, 0, 1, nil)...)
	d = append(d, tlv(1, []byte("tcp-data-split is disabled\x00"))...)
	d = append(d, tlv(2, u32b(36))...)
	m := netlink.Message{Header: netlink.Header{Type: netlink.Error, Flags: netlink.Capped | netlink.AcknowledgeTLVs}, Data: d}
	b.ReportAllocs()
	for b.Loop() {
		if ae, err := parseAck(m); err != nil || ae == nil {
			b.Fatal(err)
		}
	}
}
