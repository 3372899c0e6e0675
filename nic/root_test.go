// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nic

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestRootGetters reads a real veth through the kernel: channels and driver info work, rings and
// ntuple are EOPNOTSUPP (testbed.md §1).
func TestRootGetters(t *testing.T) {
	testnet.Require(t)
	ns := testnet.Single(t)
	err := ns.Do(func() error {
		ch, err := GetChannels(ns.Link)
		if err != nil {
			return err
		}
		if ch.RXMax == 0 || ch.RX == 0 {
			t.Errorf("veth channels %+v: want rx count and max > 0", ch)
		}
		d, err := DriverInfo(ns.Link)
		if err != nil {
			return err
		}
		if d.Driver != "veth" {
			t.Errorf("driver = %q, want veth", d.Driver)
		}
		if _, err := GetRings(ns.Link); !errors.Is(err, ErrNotSupported) {
			t.Errorf("GetRings(veth) err = %v, want EOPNOTSUPP", err)
		}
		if _, err := NtupleInfo(ns.Link); !errors.Is(err, ErrNotSupported) {
			t.Errorf("NtupleInfo(veth) err = %v, want EOPNOTSUPP", err)
		}
		if _, err := RSSInfo(ns.Link); !errors.Is(err, ErrNotSupported) {
			t.Errorf("RSSInfo(veth) err = %v, want EOPNOTSUPP", err)
		}
		if _, err := GetChannels("nosuchif0"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("GetChannels(nosuchif0) err = %v, want ENODEV", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// vethState is what must not change when an operation is refused: channels, features (raw
// FEATURES_GET reply), link and addresses.
type vethState struct {
	Channels *Channels
	Features []byte
	Link     string
	Addrs    string
}

func snapshot(t *testing.T, ns *testnet.NS) vethState {
	t.Helper()
	var s vethState
	err := ns.Do(func() error {
		var err error
		if s.Channels, err = GetChannels(ns.Link); err != nil {
			return err
		}
		c, err := genetlink.Dial(&netlink.Config{Strict: true})
		if err != nil {
			return err
		}
		defer c.Close()
		fam, err := c.GetFamily(unix.ETHTOOL_GENL_NAME)
		if err != nil {
			return err
		}
		ae := netlink.NewAttributeEncoder()
		ae.Nested(unix.ETHTOOL_A_FEATURES_HEADER, func(nae *netlink.AttributeEncoder) error {
			nae.String(unix.ETHTOOL_A_HEADER_DEV_NAME, ns.Link)
			return nil
		})
		body, err := ae.Encode()
		if err != nil {
			return err
		}
		msgs, err := c.Execute(genetlink.Message{Header: genetlink.Header{Command: unix.ETHTOOL_MSG_FEATURES_GET, Version: fam.Version}, Data: body},
			fam.ID, netlink.Request)
		if err != nil {
			return fmt.Errorf("features get: %w", err)
		}
		for _, m := range msgs {
			s.Features = append(s.Features, m.Data...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dst  *string
		args []string
	}{{&s.Link, []string{"-d", "link", "show", "dev", ns.Link}}, {&s.Addrs, []string{"addr", "show", "dev", ns.Link}}} {
		out, err := ns.Command("ip", c.args...).Output()
		if err != nil {
			t.Fatalf("ip %v: %v", c.args, err)
		}
		*c.dst = string(out)
	}
	return s
}

// TestRootPrepareUnsupportedVeth asks for a full devmem setup on veth: it must fail with advice,
// change nothing on the device and leave no journal.
func TestRootPrepareUnsupportedVeth(t *testing.T) {
	testnet.Require(t)
	ns := testnet.Single(t)
	dir := t.TempDir()
	before := snapshot(t, ns)
	var log strings.Builder
	for _, req := range []Request{
		{Ifname: ns.Link, Queues: []int{1}, Flows: []Flow{{Dst: netip.AddrPortFrom(ns.Addr, 5201)}}, StateDir: dir, Log: &log},
		{Ifname: ns.Link, HeaderSplitOnly: true, StateDir: dir, Log: &log},
	} {
		err := ns.Do(func() error {
			_, err := Prepare(context.Background(), req)
			return err
		})
		if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "--no-setup") || !strings.Contains(err.Error(), "header split") {
			t.Errorf("Prepare(veth, %+v) = %v, want EOPNOTSUPP with advice", req.Queues, err)
		}
		t.Logf("Prepare(veth): %v", err)
		if err := CheckClean(dir, ns.Link); err != nil {
			t.Errorf("journal left: %v", err)
		}
	}
	// The ioctl paths refuse too, and still change nothing.
	err := ns.Do(func() error {
		k := System()
		if _, err := k.InsertRule(ns.Link, Rule{Location: 0, FlowType: unix.TCP_V4_FLOW, Dst: netip.AddrPortFrom(ns.Addr, 5201)}); !errors.Is(err, ErrNotSupported) {
			t.Errorf("InsertRule(veth) = %v, want EOPNOTSUPP", err)
		}
		if err := k.SetIndir(ns.Link, []uint32{0, 0}); !errors.Is(err, ErrNotSupported) {
			t.Errorf("SetIndir(veth) = %v, want EOPNOTSUPP", err)
		}
		if _, err := k.CreateRSSContext(ns.Link, []uint32{0}); !errors.Is(err, ErrNotSupported) {
			t.Errorf("CreateRSSContext(veth) = %v, want EOPNOTSUPP", err)
		}
		if err := k.SetChannels(ns.Link, ChannelsUpdate{Combined: new(uint32(1))}); !errors.Is(err, unix.EINVAL) {
			t.Errorf("SetChannels(veth, combined 1) = %v, want EINVAL (no combined channels)", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, snapshot(t, ns)); diff != "" {
		t.Fatalf("veth changed (-before +after):\n%s", diff)
	}
	if log.Len() != 0 {
		t.Errorf("change lines logged for refused operations:\n%s", log.String())
	}
}

// TestRootCleanupChannels makes a real change (veth RX channels 1 -> 2) with its journal record
// in place, as a run killed right after it would leave things, and has Cleanup put it back.
func TestRootCleanupChannels(t *testing.T) {
	testnet.Require(t)
	ns := testnet.Single(t)
	dir := t.TempDir()
	before := snapshot(t, ns)
	ifindex := ns.Ifindex(t, ns.Link)
	j := []byte{}
	j = append(j, (&record{Kind: recBegin, Ifname: ns.Link, Ifindex: ifindex, PID: 1}).line()...)
	j = append(j, (&record{Kind: recChannels, Channels: before.Channels}).line()...)
	var log strings.Builder
	err := ns.Do(func() error {
		path := JournalPath(dir, ns.Link)
		if !strings.Contains(path, "@netns-") {
			t.Errorf("journal path %s in a test namespace lacks the namespace", path)
		}
		if err := os.WriteFile(path, j, 0o600); err != nil {
			return err
		}
		if err := SetChannels(ns.Link, ChannelsUpdate{RX: new(before.Channels.RX + 1)}); err != nil {
			return err
		}
		return Cleanup(dir, ns.Link, &log)
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, snapshot(t, ns)); diff != "" {
		t.Fatalf("veth not restored (-before +after):\n%s", diff)
	}
	want := fmt.Sprintf("nic %s: channels rx %d -> %d (restored)", ns.Link, before.Channels.RX+1, before.Channels.RX)
	if !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log.String())
	}
	if err := CheckClean(dir, ns.Link); err != nil {
		t.Fatal(err)
	}
}
