// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package ethtool

import (
	"errors"
	"os"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

var testFamily = genetlink.Family{ID: 21, Version: unix.ETHTOOL_GENL_VERSION, Name: unix.ETHTOOL_GENL_NAME}

func u32(v uint32) *uint32 { return &v }

func TestTCPDataSplitValues(t *testing.T) {
	if TCPDataSplitUnknown != uapi.ETHTOOL_TCP_DATA_SPLIT_UNKNOWN || TCPDataSplitDisabled != uapi.ETHTOOL_TCP_DATA_SPLIT_DISABLED ||
		TCPDataSplitEnabled != uapi.ETHTOOL_TCP_DATA_SPLIT_ENABLED {
		t.Fatal("TCPDataSplit values differ from enum ethtool_tcp_data_split")
	}
}

// testNL returns an ethtool client whose kernel is fn.
func testNL(t *testing.T, cmd uint8, flags netlink.HeaderFlags, fn func(genetlink.Message) ([]genetlink.Message, error)) *Client {
	t.Helper()
	c := genltest.Dial(genltest.ServeFamily(testFamily, genltest.CheckRequest(testFamily.ID, cmd, netlink.Request|flags,
		func(greq genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) { return fn(greq) })))
	nl, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nl.Close() })
	return nl
}

// header is the request header nest naming eth1, as ethtool(8) 6.14 sends it (nlmon capture minus
// the flags attribute it adds).
var headerEth1 = nltest.MustMarshalAttributes([]netlink.Attribute{{
	Type: unix.ETHTOOL_A_RINGS_HEADER | unix.NLA_F_NESTED,
	Data: nltest.MustMarshalAttributes([]netlink.Attribute{{Type: unix.ETHTOOL_A_HEADER_DEV_NAME, Data: []byte("eth1\x00")}}),
}})

func TestRingsGet(t *testing.T) {
	reply := nltest.MustMarshalAttributes([]netlink.Attribute{
		{Type: unix.ETHTOOL_A_RINGS_HEADER | unix.NLA_F_NESTED, Data: nltest.MustMarshalAttributes([]netlink.Attribute{{Type: unix.ETHTOOL_A_HEADER_DEV_INDEX, Data: []byte{3, 0, 0, 0}}})},
		{Type: unix.ETHTOOL_A_RINGS_RX_MAX, Data: []byte{0, 16, 0, 0}},
		{Type: unix.ETHTOOL_A_RINGS_RX, Data: []byte{0, 4, 0, 0}},
		{Type: unix.ETHTOOL_A_RINGS_TX_MAX, Data: []byte{0, 8, 0, 0}},
		{Type: unix.ETHTOOL_A_RINGS_TX, Data: []byte{0, 2, 0, 0}},
		{Type: unix.ETHTOOL_A_RINGS_TCP_DATA_SPLIT, Data: []byte{1}},
		{Type: unix.ETHTOOL_A_RINGS_HDS_THRESH, Data: []byte{0, 1, 0, 0}},
		{Type: unix.ETHTOOL_A_RINGS_HDS_THRESH_MAX, Data: []byte{0, 4, 0, 0}},
		{Type: 99, Data: []byte{1, 2, 3, 4}}, // a newer kernel's attribute: skipped
	})
	nl := testNL(t, unix.ETHTOOL_MSG_RINGS_GET, 0, func(m genetlink.Message) ([]genetlink.Message, error) {
		if diff := cmp.Diff(headerEth1, m.Data); diff != "" {
			t.Errorf("request (-want +got):\n%s", diff)
		}
		return []genetlink.Message{{Data: reply}}, nil
	})
	got, err := nl.Rings("eth1")
	if err != nil {
		t.Fatal(err)
	}
	want := &Rings{RX: 1024, RXMax: 4096, TX: 512, TXMax: 2048, TCPDataSplit: TCPDataSplitDisabled, HDSThresh: u32(256), HDSThreshMax: u32(1024)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("rings (-want +got):\n%s", diff)
	}
}

func TestRingsSetRequest(t *testing.T) {
	on := TCPDataSplitEnabled
	want := append(append([]byte{}, headerEth1...), nltest.MustMarshalAttributes([]netlink.Attribute{
		{Type: unix.ETHTOOL_A_RINGS_TCP_DATA_SPLIT, Data: []byte{2}},
		{Type: unix.ETHTOOL_A_RINGS_HDS_THRESH, Data: []byte{0, 0, 0, 0}},
	})...)
	nl := testNL(t, unix.ETHTOOL_MSG_RINGS_SET, netlink.Acknowledge, func(m genetlink.Message) ([]genetlink.Message, error) {
		if diff := cmp.Diff(want, m.Data); diff != "" {
			t.Errorf("request (-want +got):\n%s", diff)
		}
		return []genetlink.Message{{}}, nil // what the ack amounts to
	})
	if err := nl.SetRings("eth1", RingsUpdate{TCPDataSplit: &on, HDSThresh: u32(0)}); err != nil {
		t.Fatal(err)
	}
}

func TestRingsSetUnsupported(t *testing.T) {
	on := TCPDataSplitEnabled
	nl := testNL(t, unix.ETHTOOL_MSG_RINGS_SET, netlink.Acknowledge, func(genetlink.Message) ([]genetlink.Message, error) {
		return nil, genltest.Error(int(unix.EOPNOTSUPP))
	})
	err := nl.SetRings("eth1", RingsUpdate{TCPDataSplit: &on})
	if !errors.Is(err, ErrNotSupported) || !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("err = %v, want EOPNOTSUPP", err)
	}
	const want = "set rings tcp-data-split on eth1: operation not supported (the driver does not support this; devmem RX needs a NIC whose driver does (`ethtool -G eth1 tcp-data-split on` must work), or run with --no-setup on queues prepared another way)"
	if err.Error() != want {
		t.Fatalf("error text:\n got %s\nwant %s", err, want)
	}
}

func TestChannels(t *testing.T) {
	reply := nltest.MustMarshalAttributes([]netlink.Attribute{
		{Type: unix.ETHTOOL_A_CHANNELS_RX_MAX, Data: []byte{2, 0, 0, 0}},
		{Type: unix.ETHTOOL_A_CHANNELS_TX_MAX, Data: []byte{2, 0, 0, 0}},
		{Type: unix.ETHTOOL_A_CHANNELS_COMBINED_MAX, Data: []byte{8, 0, 0, 0}},
		{Type: unix.ETHTOOL_A_CHANNELS_RX_COUNT, Data: []byte{1, 0, 0, 0}},
		{Type: unix.ETHTOOL_A_CHANNELS_TX_COUNT, Data: []byte{1, 0, 0, 0}},
		{Type: unix.ETHTOOL_A_CHANNELS_COMBINED_COUNT, Data: []byte{4, 0, 0, 0}},
	})
	nl := testNL(t, unix.ETHTOOL_MSG_CHANNELS_GET, 0, func(m genetlink.Message) ([]genetlink.Message, error) {
		return []genetlink.Message{{Data: reply}}, nil
	})
	got, err := nl.Channels("eth1")
	if err != nil {
		t.Fatal(err)
	}
	want := &Channels{RX: 1, TX: 1, Combined: 4, RXMax: 2, TXMax: 2, CombinedMax: 8}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("channels (-want +got):\n%s", diff)
	}
	if got.RXQueues() != 5 {
		t.Fatalf("RXQueues = %d, want 5", got.RXQueues())
	}

	wantSet := append(append([]byte{}, headerEth1...), nltest.MustMarshalAttributes([]netlink.Attribute{
		{Type: unix.ETHTOOL_A_CHANNELS_COMBINED_COUNT, Data: []byte{6, 0, 0, 0}},
	})...)
	nl = testNL(t, unix.ETHTOOL_MSG_CHANNELS_SET, netlink.Acknowledge, func(m genetlink.Message) ([]genetlink.Message, error) {
		if diff := cmp.Diff(wantSet, m.Data); diff != "" {
			t.Errorf("request (-want +got):\n%s", diff)
		}
		return nil, genltest.Error(int(unix.EPERM))
	})
	if err := nl.SetChannels("eth1", ChannelsUpdate{Combined: u32(6)}); !errors.Is(err, os.ErrPermission) {
		t.Fatalf("err = %v, want permission error", err)
	}
}

func FuzzParseRings(f *testing.F) {
	f.Add(nltest.MustMarshalAttributes([]netlink.Attribute{{Type: unix.ETHTOOL_A_RINGS_TCP_DATA_SPLIT, Data: []byte{2}}}))
	f.Add([]byte{8, 0, 17, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseRings(b)
		_, _ = parseChannels(b)
	})
}
