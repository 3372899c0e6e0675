// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Fake-kernel tier: genltest plays the kernel. Every test asserts the exact request bytes and feeds
// golden replies, including attribute types this program does not know and 4-byte "uint"s.

// genlConn adapts a genltest connection to transport. genltest can only inject a bare errno, so
// extended acks are tested against sockConn in conn_test.go.
type genlConn struct{ c *genetlink.Conn }

func (g genlConn) execute(m genetlink.Message, family uint16, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	msgs, err := g.c.Execute(m, family, flags)
	var oe *netlink.OpError
	if errors.As(err, &oe) {
		if errno, ok := oe.Err.(syscall.Errno); ok {
			return nil, &ackError{Errno: errno, Message: oe.Message, Offset: oe.Offset}
		}
	}
	return msgs, err
}

func (g genlConn) Close() error { return g.c.Close() }

const testFamilyID = 20

// allOps is the op list of a 7.3 kernel: every command, bind-rx uns-admin, bind-tx do only.
var allOps = []Op{
	{Cmd: 1, Flags: 0xe}, {Cmd: 5, Flags: 0xe}, {Cmd: 9, Flags: 0xe}, {Cmd: 10, Flags: 0xe},
	{Cmd: 11, Flags: 0xe}, {Cmd: 12, Flags: 0xc}, {Cmd: 13, Flags: 0x1a}, {Cmd: 14, Flags: 0x1a},
	{Cmd: 15, Flags: 0xa}, {Cmd: 16, Flags: 0x1a},
}

// ops612 is the op list of Debian's 6.12: no page-pool-stats-get, napi-set or bind-tx.
var ops612 = []Op{{Cmd: 1, Flags: 0xe}, {Cmd: 5, Flags: 0xe}, {Cmd: 10, Flags: 0xe}, {Cmd: 11, Flags: 0xe}, {Cmd: 12, Flags: 0xc}, {Cmd: 13, Flags: 0xb}}

func familyReply(t testing.TB, ops []Op) genetlink.Message {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	ae.Uint16(unix.CTRL_ATTR_FAMILY_ID, testFamilyID)
	ae.String(unix.CTRL_ATTR_FAMILY_NAME, "netdev")
	ae.Uint32(unix.CTRL_ATTR_VERSION, 1)
	ae.Uint32(unix.CTRL_ATTR_HDRSIZE, 0)
	ae.Nested(unix.CTRL_ATTR_OPS, func(nae *netlink.AttributeEncoder) error {
		for i, op := range ops {
			nae.Nested(uint16(i+1), func(oae *netlink.AttributeEncoder) error {
				oae.Uint32(unix.CTRL_ATTR_OP_ID, uint32(op.Cmd))
				oae.Uint32(unix.CTRL_ATTR_OP_FLAGS, op.Flags)
				return nil
			})
		}
		return nil
	})
	ae.Nested(unix.CTRL_ATTR_MCAST_GROUPS, func(nae *netlink.AttributeEncoder) error {
		for i, g := range []string{"mgmt", "page-pool"} {
			nae.Nested(uint16(i+1), func(gae *netlink.AttributeEncoder) error {
				gae.String(unix.CTRL_ATTR_MCAST_GRP_NAME, g)
				gae.Uint32(unix.CTRL_ATTR_MCAST_GRP_ID, uint32(4+i))
				return nil
			})
		}
		return nil
	})
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return genetlink.Message{Header: genetlink.Header{Command: unix.CTRL_CMD_NEWFAMILY, Version: 2}, Data: b}
}

// getFamilyRequest is CTRL_CMD_GETFAMILY for "netdev": CTRL_ATTR_FAMILY_NAME (len 11, "netdev\0"),
// padded to 12.
const getFamilyRequest = "0b000200" + "6e657464657600" + "00"

// fakeKernel answers the controller with ops and hands every netdev request to fn.
type fakeKernel struct {
	t   testing.TB
	ops []Op
	fn  func(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error)
}

func (k *fakeKernel) serve(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
	if nreq.Header.Type == unix.GENL_ID_CTRL {
		if greq.Header.Command != unix.CTRL_CMD_GETFAMILY || hex.EncodeToString(greq.Data) != getFamilyRequest {
			k.t.Errorf("controller request cmd %d data %x, want GETFAMILY %s", greq.Header.Command, greq.Data, getFamilyRequest)
		}
		if want := netlink.Request | netlink.Acknowledge; nreq.Header.Flags != want {
			k.t.Errorf("GETFAMILY flags %#x, want %#x", nreq.Header.Flags, want)
		}
		return []genetlink.Message{familyReply(k.t, k.ops)}, nil
	}
	if nreq.Header.Type != testFamilyID {
		k.t.Errorf("request to family %d, want %d", nreq.Header.Type, testFamilyID)
	}
	if greq.Header.Version != 1 {
		k.t.Errorf("request version %d, want 1", greq.Header.Version)
	}
	return k.fn(greq, nreq)
}

func (k *fakeKernel) dial() (transport, error) { return genlConn{genltest.Dial(k.serve)}, nil }

func testClient(t *testing.T, ops []Op, fn func(genetlink.Message, netlink.Message) ([]genetlink.Message, error)) *Client {
	t.Helper()
	k := &fakeKernel{t: t, ops: ops, fn: fn}
	tr, _ := k.dial()
	c, err := newClient(tr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expect returns a fake that checks one request (command, netlink flags and exact attribute bytes
// in hex) and answers with replies (attribute bytes in hex) or err.
func expect(t *testing.T, cmd uint8, flags netlink.HeaderFlags, reqHex string, replies []string, err error) func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
	return func(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
		t.Helper()
		if greq.Header.Command != cmd {
			t.Errorf("command %d, want %d", greq.Header.Command, cmd)
		}
		if nreq.Header.Flags != flags|netlink.Request {
			t.Errorf("flags %#x, want %#x", nreq.Header.Flags, flags|netlink.Request)
		}
		if got := hex.EncodeToString(greq.Data); got != reqHex {
			t.Errorf("request attributes\n got %s\nwant %s", got, reqHex)
		}
		if err != nil {
			return nil, err
		}
		if len(replies) == 0 {
			return nil, io.EOF // genltest: an empty dump
		}
		var out []genetlink.Message
		for _, r := range replies {
			out = append(out, genetlink.Message{Header: genetlink.Header{Command: cmd, Version: 1}, Data: mustHex(t, r)})
		}
		return out, nil
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFamilyOps(t *testing.T) {
	c := testClient(t, allOps, nil)
	f := c.Family()
	if f.ID != testFamilyID || f.Version != 1 {
		t.Fatalf("family %+v", f)
	}
	for _, op := range []string{"bind-rx", "bind-tx", "napi-set", "page-pool-stats-get", "queue-create"} {
		if !c.Has(op) {
			t.Errorf("Has(%q) = false", op)
		}
	}
	if c.Has("nonsense") {
		t.Error("Has(nonsense) = true")
	}
	if diff := cmp.Diff(map[string]uint32{"mgmt": 4, "page-pool": 5}, f.Groups); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	rx, _ := f.op("bind-rx")
	tx, _ := f.op("bind-tx")
	if !rx.Admin() || !rx.Do() || rx.Dump() || tx.Admin() {
		t.Errorf("bind-rx flags %#x, bind-tx flags %#x", rx.Flags, tx.Flags)
	}

	old := testClient(t, ops612, nil)
	for _, op := range []string{"bind-tx", "napi-set", "page-pool-stats-get", "queue-create"} {
		if old.Has(op) {
			t.Errorf("6.12 Has(%q) = true", op)
		}
	}
}

func TestParseFamilyUnknownOp(t *testing.T) {
	m := familyReply(t, []Op{{Cmd: 1, Flags: 0xe}, {Cmd: 42, Flags: 0x2}})
	f, err := parseFamily(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Ops) != 2 || f.Ops[1].Name != "cmd-42" {
		t.Errorf("ops %+v, want dev-get and cmd-42", f.Ops)
	}
}

func TestDev(t *testing.T) {
	// Reply: ifindex 3, xdp-features 0x2b (u64), zc-max-segs 1, an unknown attribute 99,
	// xsk-features as a 4-byte uint.
	reply := "08000100 03000000" + "0c000300 2b00000000000000" + "08000400 01000000" + "08006300 deadbeef" + "08000600 01000000"
	c := testClient(t, allOps, expect(t, uapi.NETDEV_CMD_DEV_GET, netlink.Acknowledge, "0800010003000000", []string{reply}, nil))
	d, err := c.Dev(3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&Dev{Ifindex: 3, XDPFeatures: 0x2b, XDPZCMaxSegs: 1, XSKFeatures: 1}, d); diff != "" {
		t.Errorf("dev (-want +got):\n%s", diff)
	}
}

func TestDevNotFound(t *testing.T) {
	c := testClient(t, allOps, expect(t, uapi.NETDEV_CMD_DEV_GET, netlink.Acknowledge, "080001000f270000", nil, genltest.Error(int(unix.ENODEV))))
	_, err := c.Dev(9999)
	var e *Error
	if !errors.As(err, &e) || e.Errno != unix.ENODEV || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Dev(9999) = %v, want *Error ENODEV answering ErrNotExist", err)
	}
}

func TestDevs(t *testing.T) {
	c := testClient(t, allOps, expect(t, uapi.NETDEV_CMD_DEV_GET, netlink.Dump, "", []string{"0800010001000000", "0800010002000000"}, nil))
	devs, err := c.Devs()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Dev{{Ifindex: 1}, {Ifindex: 2}}, devs); diff != "" {
		t.Errorf("devs (-want +got):\n%s", diff)
	}
}

func TestQueues(t *testing.T) {
	replies := []string{
		// rx 0 of ifindex 2, napi 257, bound to dma-buf 3, plus an unknown attribute 42.
		"08000100 00000000 08000200 02000000 08000300 00000000 08000400 01010000 08000500 03000000 05002a00 01000000",
		// rx 1 held by io_uring (empty nest), with an AF_XDP socket too.
		"08000100 01000000 08000200 02000000 08000300 00000000 04000680 04000780",
		// tx 0 leased: ifindex 7, queue {id 4, type rx}, netns-id -1.
		"08000100 00000000 08000200 02000000 08000300 01000000 28000880 08000100 07000000 14000280 08000100 04000000 08000300 00000000 08000300 ffffffff",
	}
	// Request: NETDEV_A_QUEUE_IFINDEX (2) = 2.
	c := testClient(t, allOps, expect(t, uapi.NETDEV_CMD_QUEUE_GET, netlink.Dump, "0800020002000000", replies, nil))
	qs, err := c.Queues(2)
	if err != nil {
		t.Fatal(err)
	}
	want := []Queue{
		{ID: 0, Ifindex: 2, Type: QueueRX, NapiID: 257, Dmabuf: 3},
		{ID: 1, Ifindex: 2, Type: QueueRX, IOUring: true, XSK: true},
		{ID: 0, Ifindex: 2, Type: QueueTX, Lease: &Lease{Ifindex: 7, QueueID: 4, QueueType: QueueRX, NetnsID: -1}},
	}
	if diff := cmp.Diff(want, qs); diff != "" {
		t.Errorf("queues (-want +got):\n%s", diff)
	}
	if !qs[0].Held() || !qs[1].Held() || qs[2].Held() {
		t.Errorf("Held: %v %v %v", qs[0].Held(), qs[1].Held(), qs[2].Held())
	}
	if q, ok := QueueOfNapi(qs, 257); !ok || q != 0 {
		t.Errorf("QueueOfNapi(257) = %d, %v", q, ok)
	}
	if _, ok := QueueOfNapi(qs, 0); ok {
		t.Error("QueueOfNapi(0) found a queue")
	}
}

func TestNapis(t *testing.T) {
	// napi 257 of ifindex 2, irq 25, pid 0, gro-flush-timeout as an 8-byte uint, threaded 1.
	reply := "08000100 02000000 08000200 01010000 08000300 19000000 08000400 00000000 0c000600 40420f0000000000 08000800 01000000"
	c := testClient(t, allOps, expect(t, uapi.NETDEV_CMD_NAPI_GET, netlink.Dump, "0800010002000000", []string{reply}, nil))
	ns, err := c.Napis(2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Napi{{ID: 257, Ifindex: 2, IRQ: 25, GROFlushTimeout: 1000000, Threaded: 1}}, ns); diff != "" {
		t.Errorf("napis (-want +got):\n%s", diff)
	}
}

func TestQstatsQueues(t *testing.T) {
	replies := []string{
		// ifindex 2, rx queue 0: rx-packets 4-byte 10, rx-bytes 8-byte 2^32+1, unknown counter 60.
		"08000100 02000000 08000200 00000000 08000300 00000000 08000800 0a000000 0c000900 0100000001000000 08003c00 05000000",
		// tx queue 0: tx-packets, tx-stop.
		"08000100 02000000 08000200 01000000 08000300 00000000 08000a00 07000000 08002100 02000000",
	}
	// Request: ifindex 2, scope queue (1).
	c := testClient(t, allOps, expect(t, uapi.NETDEV_CMD_QSTATS_GET, netlink.Dump, "0800010002000000"+"0800040001000000", replies, nil))
	qs, err := c.QstatsQueues(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || !qs[0].PerQueue || qs[1].QueueType != QueueTX {
		t.Fatalf("qstats %+v", qs)
	}
	if diff := cmp.Diff(map[string]uint64{"rx-packets": 10, "rx-bytes": 1<<32 + 1}, qs[0].Map()); diff != "" {
		t.Errorf("rx queue counters (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]uint64{"tx-packets": 7, "tx-stop": 2}, qs[1].Map()); diff != "" {
		t.Errorf("tx queue counters (-want +got):\n%s", diff)
	}
	if v, ok := qs[0].Get("rx-bytes"); !ok || v != 1<<32+1 {
		t.Errorf("Get(rx-bytes) = %d, %v", v, ok)
	}
	if _, ok := qs[0].Get("tx-bytes"); ok {
		t.Error("Get(tx-bytes) found a counter the driver did not report")
	}
	if diff := cmp.Diff([]string{"rx-bytes", "rx-packets"}, qs[0].Names()); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}

func TestQstatsDev(t *testing.T) {
	c := testClient(t, allOps, expect(t, uapi.NETDEV_CMD_QSTATS_GET, netlink.Dump, "0800010002000000", []string{"08000100 02000000 08000b00 00100000"}, nil))
	q, err := c.QstatsDev(2)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := q.Get("tx-bytes"); q.PerQueue || v != 4096 {
		t.Errorf("device qstats %+v", q)
	}
	none := testClient(t, allOps, expect(t, uapi.NETDEV_CMD_QSTATS_GET, netlink.Dump, "0800010002000000", nil, nil))
	if _, err := none.QstatsDev(2); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("QstatsDev with no reply: %v, want ErrUnsupported", err)
	}
	// A refused dump (what 6.18 answers for veth) is in conn_test.go: nltest.Error copies the
	// dump request's flags into the error, where 0x300 reads as NLM_F_CAPPED|NLM_F_ACK_TLVS.
}

func TestPagePools(t *testing.T) {
	replies := []string{
		// pool 9 (4-byte uint) of ifindex 2, napi 257, inflight 128, inflight-mem 8-byte, dmabuf 3.
		"08000100 09000000 08000200 02000000 08000300 01010000 08000400 80000000 0c000500 0000080000000000 08000700 03000000",
		// pool 10 of ifindex 5: dropped by the ifindex filter.
		"08000100 0a000000 08000200 05000000",
		// pool 11 of ifindex 2, io_uring, detached.
		"08000100 0b000000 08000200 02000000 08000600 64000000 04000880",
	}
	c := testClient(t, allOps, expect(t, uapi.NETDEV_CMD_PAGE_POOL_GET, netlink.Dump, "", replies, nil))
	pp, err := c.PagePools(2)
	if err != nil {
		t.Fatal(err)
	}
	want := []PagePool{
		{ID: 9, Ifindex: 2, NapiID: 257, Inflight: 128, InflightMem: 0x80000, Dmabuf: 3},
		{ID: 11, Ifindex: 2, DetachTime: 100, IOUring: true},
	}
	if diff := cmp.Diff(want, pp); diff != "" {
		t.Errorf("page pools (-want +got):\n%s", diff)
	}
}

func TestPagePoolStats(t *testing.T) {
	replies := []string{
		// info {id 9, ifindex 2}, alloc-fast 8-byte 5, recycle-ring 4-byte 6, unknown 30.
		"14000180 08000100 09000000 08000200 02000000 0c000800 0500000000000000 08001000 06000000 08001e00 01000000",
		"14000180 08000100 0a000000 08000200 05000000 08000800 01000000",
	}
	c := testClient(t, allOps, expect(t, uapi.NETDEV_CMD_PAGE_POOL_STATS_GET, netlink.Dump, "", replies, nil))
	st, err := c.PagePoolStats(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].PoolID != 9 {
		t.Fatalf("stats %+v", st)
	}
	if diff := cmp.Diff(map[string]uint64{"alloc-fast": 5, "recycle-ring": 6}, st[0].Map()); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	if v, ok := st[0].Get("alloc-fast"); !ok || v != 5 {
		t.Errorf("Get(alloc-fast) = %d, %v", v, ok)
	}

	old := testClient(t, ops612, nil)
	if _, err := old.PagePoolStats(2); !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "CONFIG_PAGE_POOL_STATS") {
		t.Errorf("page-pool-stats-get without the op: %v", err)
	}
}

func TestShortUint(t *testing.T) {
	// A 3-byte uint is neither of the kernel's two sizes.
	c := testClient(t, allOps, expect(t, uapi.NETDEV_CMD_QSTATS_GET, netlink.Dump, "0800010002000000", []string{"08000100 02000000 07000800 010203 00"}, nil))
	if _, err := c.QstatsDev(2); err == nil || !strings.Contains(err.Error(), "want 4 or 8") {
		t.Errorf("3-byte uint: %v", err)
	}
}

// bindRXRequest is bind-rx ifindex 5, fd 7, queues 14 and 15: each queue a nest with NLA_F_NESTED
// (0x8000) holding id and type rx. The order (ifindex, fd, queues) is the selftest tool's.
const bindRXRequest = "08000100 05000000" + "08000300 07000000" +
	"14000280 08000100 0e000000 08000300 00000000" +
	"14000280 08000100 0f000000 08000300 00000000"

func TestBindRX(t *testing.T) {
	closed := false
	k := &fakeKernel{t: t, ops: allOps, fn: expect(t, uapi.NETDEV_CMD_BIND_RX, netlink.Acknowledge,
		strings.ReplaceAll(bindRXRequest, " ", ""), []string{"08000400 03000000"}, nil)}
	dial := func() (transport, error) {
		tr, _ := k.dial()
		return closeSpy{tr, &closed}, nil
	}
	b, err := bindRX(dial, RXRequest{Ifindex: 5, Queues: []uint32{14, 15}, DmabufFD: 7})
	if err != nil {
		t.Fatal(err)
	}
	if b.ID() != 3 || b.Ifindex() != 5 || fmt.Sprint(b.Queues()) != "[14 15]" {
		t.Errorf("binding id %d ifindex %d queues %v", b.ID(), b.Ifindex(), b.Queues())
	}
	if closed {
		t.Fatal("binding socket closed while the binding lives")
	}
	if err := b.Close(); err != nil || !closed {
		t.Fatalf("Close = %v, socket closed %v", err, closed)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestBindRXPageSize(t *testing.T) {
	req := "08000100 05000000 08000300 07000000 14000280 08000100 00000000 08000300 00000000 08000500 00400000"
	k := &fakeKernel{t: t, ops: allOps, fn: expect(t, uapi.NETDEV_CMD_BIND_RX, netlink.Acknowledge, strings.ReplaceAll(req, " ", ""), []string{"08000400 01000000"}, nil)}
	b, err := bindRX(k.dial, RXRequest{Ifindex: 5, Queues: []uint32{0}, DmabufFD: 7, RxPageSize: 16384})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

func TestBindTX(t *testing.T) {
	k := &fakeKernel{t: t, ops: allOps, fn: expect(t, uapi.NETDEV_CMD_BIND_TX, netlink.Acknowledge, "08000100050000000800030007000000", []string{"08000400 04000000"}, nil)}
	b, err := bindTX(k.dial, 5, 7)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID() != 4 || b.Queues() != nil {
		t.Errorf("tx binding id %d queues %v", b.ID(), b.Queues())
	}
	b.Close()
}

func TestBindFailureClosesSocket(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ops     []Op
		replies []string
		err     error
		want    string
	}{
		{"refused", allOps, nil, genltest.Error(int(unix.EPERM)), "CAP_NET_ADMIN"},
		{"no id in reply", allOps, []string{"08006300 01000000"}, nil, "NETDEV_A_DMABUF_ID"},
		{"no bind-tx op", ops612, nil, nil, "6.15"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closed := false
			k := &fakeKernel{t: t, ops: tc.ops, fn: expect(t, uapi.NETDEV_CMD_BIND_TX, netlink.Acknowledge, "08000100050000000800030007000000", tc.replies, tc.err)}
			dial := func() (transport, error) {
				tr, _ := k.dial()
				return closeSpy{tr, &closed}, nil
			}
			_, err := bindTX(dial, 5, 7)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %q", err, tc.want)
			}
			if !closed {
				t.Error("the failed binding's socket stayed open")
			}
		})
	}
}

func TestBindBadInput(t *testing.T) {
	dial := func() (transport, error) { t.Fatal("bad input reached the kernel"); return nil, nil }
	for _, tc := range []struct {
		req  RXRequest
		want string
	}{
		{RXRequest{Ifindex: 0, Queues: []uint32{0}, DmabufFD: 3}, "interface indexes start at 1"},
		{RXRequest{Ifindex: 1, DmabufFD: 3}, "no queues given"},
		{RXRequest{Ifindex: 1, Queues: []uint32{2, 2}, DmabufFD: 3}, "listed twice"},
		{RXRequest{Ifindex: 1, Queues: []uint32{2}, DmabufFD: -1}, "not an open file"},
		{RXRequest{Ifindex: 1, Queues: []uint32{2}, DmabufFD: 3, RxPageSize: 12288}, "power of two"},
	} {
		if _, err := bindRX(dial, tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.req, err, tc.want)
		}
	}
	if _, err := bindTX(dial, 1, -2); err == nil {
		t.Error("bind-tx with fd -2 accepted")
	}
}

type closeSpy struct {
	transport
	closed *bool
}

func (c closeSpy) Close() error { *c.closed = true; return c.transport.Close() }

func TestFormatQueues(t *testing.T) {
	for in, want := range map[string]string{"[14 15]": "14-15", "[0 2 5 6 7]": "0,2,5-7", "[3]": "3", "[]": ""} {
		var qs []uint32
		for _, f := range strings.Fields(strings.Trim(in, "[]")) {
			var v uint32
			fmt.Sscan(f, &v)
			qs = append(qs, v)
		}
		if got := FormatQueues(qs); got != want {
			t.Errorf("FormatQueues(%v) = %q, want %q", qs, got, want)
		}
	}
}
