// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package ethtool

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// An RTM_NEWLINK payload: ifinfomsg (16 bytes; flags 0x11043 = UP|BROADCAST|RUNNING|MULTICAST|LOWER_UP), IFLA_IFNAME "eth1", then IFLA_XDP (0x2b, nested)
// holding IFLA_XDP_ATTACHED (2) = 1 (driver mode) and IFLA_XDP_PROG_ID (4) = 42.
const linkWithXDP = "00000100 03000000 43100100 00000000" + "09000300 65746831 00000000" +
	"14002b80 05000200 01000000 08000400 2a000000"

// The same link, down (flags 0x1002), without a program: IFLA_XDP holds IFLA_XDP_ATTACHED = 0.
const linkWithoutXDP = "00000100 03000000 02100000 00000000" + "09000300 65746831 00000000" + "0c002b80 05000200 00000000"

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseLink(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Link
	}{
		{"up with XDP", linkWithXDP, Link{Up: true, XDP: true, ProgID: 42}},
		{"down without XDP", linkWithoutXDP, Link{}},
		{"no IFLA_XDP", "00000100 03000000 43100100 00000000", Link{Up: true}},
	} {
		got, err := parseLink(unhex(t, tc.in))
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.name, got, err, tc.want)
		}
	}
	if _, err := parseLink(make([]byte, 8)); err == nil {
		t.Error("a payload shorter than ifinfomsg was accepted")
	}
	if _, err := parseLink(unhex(t, "00000100 03000000 43100100 00000000 ff00")); err == nil {
		t.Error("a truncated attribute was accepted")
	}
}

func FuzzParseLink(f *testing.F) {
	f.Add(unhex(f, linkWithXDP))
	f.Add(unhex(f, linkWithoutXDP))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseLink(b)
		if err != nil && l != (Link{}) {
			t.Fatalf("error %v with a result %+v", err, l)
		}
	})
}

// TestLinkClient drives LinkClient over an nltest connection: the request is RTM_GETLINK for the
// ifindex, and the one reply is parsed.
func TestLinkClient(t *testing.T) {
	c := nltest.Dial(func(req []netlink.Message) ([]netlink.Message, error) {
		if len(req) != 1 || req[0].Header.Type != unix.RTM_GETLINK || req[0].Header.Flags != netlink.Request {
			t.Errorf("request %+v, want one RTM_GETLINK", req)
		}
		if want := unhex(t, "00000000 07000000 00000000 00000000"); !bytes.Equal(req[0].Data, want) {
			t.Errorf("ifinfomsg % x, want % x", req[0].Data, want)
		}
		h := req[0].Header
		return []netlink.Message{{Header: netlink.Header{Type: unix.RTM_NEWLINK, Sequence: h.Sequence, PID: h.PID}, Data: unhex(t, linkWithXDP)}}, nil
	})
	l := NewLink(c)
	defer l.Close()
	got, err := l.Link(7)
	if err != nil || got != (Link{Up: true, XDP: true, ProgID: 42}) {
		t.Fatalf("Link(7) = %+v, %v", got, err)
	}
}
