// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind

import (
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// FuzzDecoders feeds arbitrary attribute bytes to every reply decoder: none may panic, and a reply
// that decodes must decode the same way twice (no hidden state).
func FuzzDecoders(f *testing.F) {
	f.Add(mustHex(f, "08000100 00000000 08000200 02000000 08000300 00000000 08000400 01010000 08000500 03000000 05002a00 01000000"))
	f.Add(mustHex(f, "08000100 02000000 08000800 0a000000 0c000900 0100000001000000"))
	f.Add(mustHex(f, "14000180 08000100 09000000 08000200 02000000 0c000800 0500000000000000"))
	f.Add(mustHex(f, "28000880 08000100 07000000 14000280 08000100 04000000 08000300 00000000 08000300 ffffffff"))
	f.Add(mustHex(f, "07000800 010203 00"))
	f.Add(familyReply(f, allOps).Data)
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs := []genetlink.Message{{Data: b}}
		parseDevs(msgs)
		parseQueues(msgs)
		parseNapis(msgs)
		parsePagePools(msgs)
		parsePagePoolStats(msgs)
		parseBindReply(msgs)
		parseFamily(b)
		q1, err1 := parseQstats(msgs)
		q2, err2 := parseQstats(msgs)
		if (err1 == nil) != (err2 == nil) || err1 == nil && len(q1) == 1 && len(q1[0].Map()) != len(q2[0].Map()) {
			t.Fatal("qstats decoded differently twice")
		}
	})
}

// FuzzAck feeds arbitrary datagrams to the framing and ack parsers sockConn runs on kernel bytes.
func FuzzAck(f *testing.F) {
	req := nlmsg(testFamilyID, netlink.Request|netlink.Acknowledge, 7, genlPayload(13, mustHex(f, bindRXRequest)))
	r := rawReq{bytes: req, hdr: netlink.Header{Sequence: 7}}
	f.Add(errorMsg(r, unix.EINVAL, true, tlv(unix.NLMSGERR_ATTR_MSG, []byte("tcp-data-split is disabled\x00")), tlv(unix.NLMSGERR_ATTR_OFFS, u32b(36)),
		tlv(uapi.NLMSGERR_ATTR_MISS_TYPE, u32b(1)), tlv(uapi.NLMSGERR_ATTR_MISS_NEST, u32b(36))))
	f.Add(errorMsg(r, unix.EOPNOTSUPP, false, tlv(unix.NLMSGERR_ATTR_OFFS, u32b(20))))
	f.Add(ackMsg(r))
	f.Add(nlmsg(netlink.Done, netlink.Multi|netlink.AcknowledgeTLVs, 7, append(errno32(unix.EMSGSIZE), tlv(1, []byte("x\x00"))...)))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := splitMessages(b)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if int(m.Header.Length) != nlmsgHdrLen+len(m.Data) {
				t.Fatalf("message length %d with %d data bytes", m.Header.Length, len(m.Data))
			}
			ae, err := parseAck(m)
			if err == nil && ae != nil {
				if ae.Errno == 0 {
					t.Fatal("an error ack with errno 0")
				}
				// What the user would see must be computable for any ack.
				if s := translate(&request{cmd: uapi.NETDEV_CMD_BIND_RX, ifindex: 1, queues: []uint32{14, 15}, fd: 7, attrs: mustHex(t, bindRXRequest)}, ae, nil).Error(); s == "" {
					t.Fatal("empty error text")
				}
			}
			parseDone(m)
		}
	})
}

// FuzzAttrPath walks arbitrary request bytes to arbitrary offsets.
func FuzzAttrPath(f *testing.F) {
	f.Add(mustHex(f, bindRXRequest), 60)
	f.Add([]byte{4, 0, 2, 0x80}, 20)
	f.Fuzz(func(t *testing.T, attrs []byte, off int) {
		p := attrPath(attrs, off)
		for _, s := range p {
			if s.nth < 0 {
				t.Fatal("negative occurrence")
			}
		}
		attrName(uapi.NETDEV_CMD_BIND_RX, p)
	})
}
