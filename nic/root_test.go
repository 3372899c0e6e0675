package nic

import (
	"errors"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
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
		if _, err := GetChannels("nosuchif0"); err == nil {
			t.Errorf("GetChannels(nosuchif0) succeeded")
		} else {
			t.Logf("nosuchif0: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
