package doctor

import (
	"encoding/hex"
	"strings"
	"testing"
)

// An RTM_NEWLINK payload: ifinfomsg (16 bytes), IFLA_IFNAME "eth1", then IFLA_XDP (0x2b, nested)
// holding IFLA_XDP_ATTACHED (2) = 1 (driver mode) and IFLA_XDP_PROG_ID (4) = 42.
const linkWithXDP = "00000100 03000000 43100100 00000000" + "09000300 65746831 00000000" +
	"14002b80 05000200 01000000 08000400 2a000000"

// The same link without a program: IFLA_XDP holds IFLA_XDP_ATTACHED = 0.
const linkWithoutXDP = "00000100 03000000 43100100 00000000" + "09000300 65746831 00000000" + "0c002b80 05000200 00000000"

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseLinkXDP(t *testing.T) {
	on, id, err := parseLinkXDP(unhex(t, linkWithXDP))
	if err != nil || !on || id != 42 {
		t.Errorf("with XDP: %v %d %v", on, id, err)
	}
	on, _, err = parseLinkXDP(unhex(t, linkWithoutXDP))
	if err != nil || on {
		t.Errorf("without XDP: %v %v", on, err)
	}
	on, _, err = parseLinkXDP(unhex(t, "00000100 03000000 43100100 00000000"))
	if err != nil || on {
		t.Errorf("no IFLA_XDP: %v %v", on, err)
	}
	if _, _, err := parseLinkXDP(make([]byte, 8)); err == nil {
		t.Error("a payload shorter than ifinfomsg was accepted")
	}
	if _, _, err := parseLinkXDP(unhex(t, "00000100 03000000 43100100 00000000 ff00")); err == nil {
		t.Error("a truncated attribute was accepted")
	}
}

func FuzzParseLinkXDP(f *testing.F) {
	f.Add(unhex(f, linkWithXDP))
	f.Add(unhex(f, linkWithoutXDP))
	f.Fuzz(func(t *testing.T, b []byte) {
		on, id, err := parseLinkXDP(b)
		if err != nil && (on || id != 0) {
			t.Fatalf("error %v with a result %v %d", err, on, id)
		}
	})
}
