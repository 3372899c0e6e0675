// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind

import (
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Fake kernel at the byte level: sockConn talks to one end of a SOCK_SEQPACKET socketpair and a
// goroutine on the other end answers with hand-built netlink datagrams. This is the tier that
// reaches extended acks, which genltest cannot produce.

type rawReq struct {
	hdr   netlink.Header
	bytes []byte // the whole request, header included
}

// fakeSock serves requests with answer, which returns the datagrams to send back.
func fakeSock(t *testing.T, answer func(n int, req rawReq) [][]byte) *sockConn {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	c, err := newSockConn(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1<<16)
		for n := 0; ; n++ {
			l, err := unix.Read(fds[1], buf)
			if err != nil || l == 0 {
				return
			}
			b := append([]byte(nil), buf[:l]...)
			req := rawReq{bytes: b, hdr: netlink.Header{
				Length:   binary.NativeEndian.Uint32(b[0:]),
				Type:     netlink.HeaderType(binary.NativeEndian.Uint16(b[4:])),
				Flags:    netlink.HeaderFlags(binary.NativeEndian.Uint16(b[6:])),
				Sequence: binary.NativeEndian.Uint32(b[8:]),
			}}
			for _, d := range answer(n, req) {
				if _, err := unix.Write(fds[1], d); err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		unix.Close(fds[1])
		wg.Wait()
	})
	return c
}

func nlmsg(typ netlink.HeaderType, flags netlink.HeaderFlags, seq uint32, payload []byte) []byte {
	b := make([]byte, nlmsgHdrLen+len(payload), nlmsgAlign(nlmsgHdrLen+len(payload)))
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], uint16(typ))
	binary.NativeEndian.PutUint16(b[6:], uint16(flags))
	binary.NativeEndian.PutUint32(b[8:], seq)
	copy(b[nlmsgHdrLen:], payload)
	return b[:cap(b)]
}

func genlPayload(cmd uint8, attrs []byte) []byte {
	return append([]byte{cmd, 1, 0, 0}, attrs...)
}

func tlv(typ uint16, data []byte) []byte {
	b := make([]byte, 4+len(data), nlmsgAlign(4+len(data)))
	binary.NativeEndian.PutUint16(b[0:], uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[4:], data)
	return b[:cap(b)]
}

func u32b(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func errno32(e unix.Errno) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(-int32(e))) }

// errorMsg builds an NLMSG_ERROR for req. capped omits the echoed payload, as NETLINK_CAP_ACK asks.
func errorMsg(req rawReq, e unix.Errno, capped bool, tlvs ...[]byte) []byte {
	p := errno32(e)
	flags := netlink.HeaderFlags(0)
	if capped {
		p = append(p, req.bytes[:nlmsgHdrLen]...)
		flags |= netlink.Capped
	} else {
		p = append(p, req.bytes...)
	}
	if len(tlvs) > 0 {
		flags |= netlink.AcknowledgeTLVs
	}
	for _, t := range tlvs {
		p = append(p, t...)
	}
	return nlmsg(netlink.Error, flags, req.hdr.Sequence, p)
}

func ackMsg(req rawReq) []byte {
	return nlmsg(netlink.Error, netlink.Capped, req.hdr.Sequence, append(make([]byte, 4), req.bytes[:nlmsgHdrLen]...))
}

func TestSockConnDo(t *testing.T) {
	var got rawReq
	c := fakeSock(t, func(_ int, req rawReq) [][]byte {
		got = req
		reply := nlmsg(testFamilyID, 0, req.hdr.Sequence, genlPayload(1, tlv(1, u32b(3))))
		// A stale answer to an older request must be skipped.
		stale := nlmsg(testFamilyID, 0, req.hdr.Sequence-1, genlPayload(1, tlv(1, u32b(99))))
		return [][]byte{append(stale, reply...), ackMsg(req)}
	})
	msgs, err := c.execute(genetlink.Message{Header: genetlink.Header{Command: 1, Version: 1}, Data: tlv(1, u32b(3))}, testFamilyID, netlink.Request|netlink.Acknowledge)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || !cmp.Equal(msgs[0].Data, tlv(1, u32b(3))) {
		t.Fatalf("replies %+v", msgs)
	}
	want := nlmsg(testFamilyID, netlink.Request|netlink.Acknowledge, got.hdr.Sequence, genlPayload(1, tlv(1, u32b(3))))
	if diff := cmp.Diff(want, got.bytes); diff != "" {
		t.Errorf("request bytes (-want +got):\n%s", diff)
	}
	if _, err := c.execute(genetlink.Message{}, testFamilyID, netlink.Request); err == nil {
		t.Error("a request without ack or dump flag was sent")
	}
}

func TestSockConnDump(t *testing.T) {
	c := fakeSock(t, func(_ int, req rawReq) [][]byte {
		var d1, d2 []byte
		for i := range uint32(3) {
			d1 = append(d1, nlmsg(testFamilyID, netlink.Multi, req.hdr.Sequence, genlPayload(10, tlv(1, u32b(i))))...)
		}
		d2 = append(nlmsg(testFamilyID, netlink.Multi, req.hdr.Sequence, genlPayload(10, tlv(1, u32b(3)))),
			nlmsg(netlink.Done, netlink.Multi, req.hdr.Sequence, make([]byte, 4))...)
		return [][]byte{d1, d2}
	})
	msgs, err := c.execute(genetlink.Message{Header: genetlink.Header{Command: 10, Version: 1}}, testFamilyID, netlink.Request|netlink.Dump)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := parseQueues(msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 4 || qs[3].ID != 3 || qs[0].ID != 0 {
		t.Errorf("queues %+v", qs)
	}
}

func TestSockConnExtack(t *testing.T) {
	for _, capped := range []bool{true, false} {
		c := fakeSock(t, func(_ int, req rawReq) [][]byte {
			return [][]byte{errorMsg(req, unix.EINVAL, capped,
				tlv(unix.NLMSGERR_ATTR_MSG, []byte("tcp-data-split is disabled\x00")),
				tlv(unix.NLMSGERR_ATTR_OFFS, u32b(36)),
				tlv(uapi.NLMSGERR_ATTR_MISS_TYPE, u32b(3)),
				tlv(uapi.NLMSGERR_ATTR_MISS_NEST, u32b(36)),
				tlv(99, []byte{1, 2, 3, 4}), // an ack attribute newer than this program
			)}
		})
		_, err := c.execute(genetlink.Message{Header: genetlink.Header{Command: 13, Version: 1}, Data: mustHex(t, bindRXRequest)}, testFamilyID, netlink.Request|netlink.Acknowledge)
		var ae *ackError
		if !errors.As(err, &ae) {
			t.Fatalf("capped %v: %v, want *ackError", capped, err)
		}
		want := &ackError{Errno: unix.EINVAL, Message: "tcp-data-split is disabled", Offset: 36, MissType: 3, MissNest: 36, HasMiss: true}
		if diff := cmp.Diff(want, ae); diff != "" {
			t.Errorf("capped %v: ack (-want +got):\n%s", capped, diff)
		}
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("errors.Is(%v, EINVAL) = false", err)
		}
	}
}

// A dump refused up front: 6.18 answers qstats-get filtered by a veth's ifindex this way.
func TestSockConnDumpRefused(t *testing.T) {
	c := fakeSock(t, func(n int, req rawReq) [][]byte {
		if n == 0 {
			return [][]byte{nlmsg(unix.GENL_ID_CTRL, 0, req.hdr.Sequence, genlPayload(unix.CTRL_CMD_NEWFAMILY, familyReply(t, allOps).Data)), ackMsg(req)}
		}
		return [][]byte{errorMsg(req, unix.EOPNOTSUPP, true, tlv(unix.NLMSGERR_ATTR_OFFS, u32b(20)))}
	})
	cl, err := newClient(c)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.QstatsQueues(2)
	var e *Error
	if !errors.As(err, &e) || e.Attr != "ifindex" || !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(e.Advice, "no queue statistics") {
		t.Errorf("refused qstats dump: %v", err)
	}
}

// A dump that fails part way ends in NLMSG_DONE carrying the errno and ack TLVs.
func TestSockConnDoneWithError(t *testing.T) {
	c := fakeSock(t, func(_ int, req rawReq) [][]byte {
		p := append(errno32(unix.EMSGSIZE), tlv(unix.NLMSGERR_ATTR_MSG, []byte("too big\x00"))...)
		return [][]byte{
			nlmsg(testFamilyID, netlink.Multi, req.hdr.Sequence, genlPayload(10, nil)),
			nlmsg(netlink.Done, netlink.Multi|netlink.AcknowledgeTLVs, req.hdr.Sequence, p),
		}
	})
	_, err := c.execute(genetlink.Message{Header: genetlink.Header{Command: 10, Version: 1}}, testFamilyID, netlink.Request|netlink.Dump)
	var ae *ackError
	if !errors.As(err, &ae) || ae.Errno != unix.EMSGSIZE || ae.Message != "too big" {
		t.Errorf("done with error: %v", err)
	}
}

func TestDumpInterruptedRetried(t *testing.T) {
	var dumps int
	c := fakeSock(t, func(n int, req rawReq) [][]byte {
		if n == 0 {
			return [][]byte{nlmsg(unix.GENL_ID_CTRL, 0, req.hdr.Sequence, genlPayload(unix.CTRL_CMD_NEWFAMILY, familyReply(t, allOps).Data)), ackMsg(req)}
		}
		dumps++
		flags := netlink.Multi
		if dumps == 1 {
			flags |= netlink.DumpInterrupted
		}
		return [][]byte{
			nlmsg(testFamilyID, flags, req.hdr.Sequence, genlPayload(1, tlv(1, u32b(uint32(dumps))))),
			nlmsg(netlink.Done, netlink.Multi, req.hdr.Sequence, make([]byte, 4)),
		}
	})
	cl, err := newClient(c)
	if err != nil {
		t.Fatal(err)
	}
	devs, err := cl.Devs()
	if err != nil {
		t.Fatal(err)
	}
	if dumps != 2 || len(devs) != 1 || devs[0].Ifindex != 2 {
		t.Errorf("%d dumps, devs %+v; want the second, consistent dump", dumps, devs)
	}
}

func TestSplitMessagesBad(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		make([]byte, 15),
		append(binary.NativeEndian.AppendUint32(nil, 100), make([]byte, 12)...), // length past the end
		append(binary.NativeEndian.AppendUint32(nil, 8), make([]byte, 12)...),   // length below a header
	} {
		if _, err := splitMessages(b); err == nil {
			t.Errorf("splitMessages(%x) accepted", b)
		}
	}
}

func TestParseAckShort(t *testing.T) {
	m := netlink.Message{Header: netlink.Header{Type: netlink.Error}, Data: errno32(unix.EINVAL)}
	if _, err := parseAck(m); err == nil {
		t.Error("an error message without the request header was accepted")
	}
	// Not capped, but the echoed request claims more bytes than there are.
	d := append(errno32(unix.EINVAL), nlmsg(testFamilyID, 0, 1, nil)...)
	binary.NativeEndian.PutUint32(d[4:], 400)
	m = netlink.Message{Header: netlink.Header{Type: netlink.Error, Flags: netlink.AcknowledgeTLVs}, Data: d}
	if _, err := parseAck(m); err == nil {
		t.Error("an echoed request running past the end was accepted")
	}
}
