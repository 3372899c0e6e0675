// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package doctor

import (
	"bytes"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
)

// TestRootDoctorVeth runs the doctor against the real kernel on a veth in a throwaway namespace:
// not ready for RX or TX, for the right reasons, and the NIC untouched.
func TestRootDoctorVeth(t *testing.T) {
	testnet.Require(t)
	ns := testnet.Single(t)
	before, err := ns.Command("ip", "-d", "link", "show", ns.Link).CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v: %s", err, before)
	}
	r := runIn(t, ns)
	var text bytes.Buffer
	WriteText(&text, r)
	t.Logf("\n%s", text.String())
	if r.RX.Ready || r.TX.Ready || r.Ready(true, false) || r.Ready(false, true) {
		t.Fatal("a veth judged ready for devmem")
	}
	want := map[string]Status{
		"netdev-ops":     StatusOK, // the host tier runs on 6.15+; a 6.12 host would fail only TX here
		"link":           StatusOK,
		"cap-net-admin":  StatusOK,
		"driver":         StatusWarn, // veth is no devmem driver
		"queues":         StatusOK,
		"channels":       StatusFail, // one RX queue, max 2
		"tcp-data-split": StatusFail, // veth has no ring settings
		"hds-thresh":     StatusSkip,
		"ntuple":         StatusFail,
		"rss":            StatusFail,
		"xdp":            StatusOK,
		"bind-rx-probe":  StatusFail,
		"bind-tx-probe":  StatusFail,
	}
	for id, st := range want {
		if c := check(t, r, id); c.Status != st {
			t.Errorf("%s: %s (%s), want %s", id, c.Status, c.Detail, st)
		}
	}
	if c := check(t, r, "channels"); len(c.Fix) != 1 || c.Fix[0] != "ethtool -L veth0 rx 2" {
		t.Errorf("channels fix %q, want ethtool -L veth0 rx 2", c.Fix)
	}
	if c := check(t, r, "bind-rx-probe"); len(c.Fix) == 0 || !strings.Contains(c.Fix[0], "queue management API") {
		t.Errorf("bind-rx probe %+v: want the missing queue API named", c)
	}
	if c := check(t, r, "bind-tx-probe"); !strings.Contains(c.Detail, "Driver does not support netmem TX") {
		t.Errorf("bind-tx probe %+v: want the kernel's words", c)
	}
	if len(r.Queues) != 1 || r.Queues[0].Holder != "" {
		t.Errorf("queues %+v", r.Queues)
	}
	after, err := ns.Command("ip", "-d", "link", "show", ns.Link).CombinedOutput()
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the doctor changed the link:\nbefore %s\nafter  %s", before, after)
	}

	// A device that is down: the kernel then lists none of its queues, and the doctor says why.
	if out, err := ns.Command("ip", "link", "set", ns.Link, "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set down: %v: %s", err, out)
	}
	r = runIn(t, ns)
	if c := check(t, r, "link"); c.Status != StatusFail || len(c.Fix) != 1 || c.Fix[0] != "ip link set veth0 up" {
		t.Errorf("down link: %+v", c)
	}
	if c := check(t, r, "queues"); c.Status != StatusSkip || len(r.Queues) != 0 {
		t.Errorf("queues of a down link: %+v %+v", c, r.Queues)
	}
}

// runIn runs the doctor on ns's link with the live machine, inside ns.
func runIn(t *testing.T, ns *testnet.NS) *Report {
	t.Helper()
	var r *Report
	err := ns.Do(func() error {
		l := Live()
		defer l.Close()
		var err error
		r, err = Run(l, ns.Link)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
