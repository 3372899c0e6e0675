// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/nic"
)

// The softnic tests run in both guests: 6.12 covers devmem RX only (no bind-tx, no netmem TX in
// that kernel), 7.x everything. They act on the snic0/snic1 pair run-tests.sh loads.

// ethtoolField returns the value after "name:" in the section of ethtool output that starts with
// the line section ("Pre-set maximums:", "Current hardware settings:").
func ethtoolField(t *testing.T, out, section, name string) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, section)
	if !ok {
		t.Fatalf("no %q in ethtool output:\n%s", section, out)
	}
	for _, l := range strings.Split(rest, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %q under %q in ethtool output:\n%s", name, section, out)
	return ""
}

// ethtoolRefused runs ethtool with args in the current namespace and fails t unless it was refused.
// Debian's ethtool 6.1 exits 0 after some refusals (rmgr: Cannot insert RX class rule: ...), so
// the output is checked as well as the exit status. It returns the output.
func ethtoolRefused(t *testing.T, args ...string) string {
	t.Helper()
	out, err := nsCmd(nil, "ethtool", args...).CombinedOutput()
	if err == nil && !strings.Contains(string(out), "Cannot ") {
		t.Errorf("ethtool %s was accepted:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// TestGuestSoftnicEnvironment checks the pair as loaded: driver, a parent device, 4 of at most 8
// combined channels, header split off, ntuple on, queue and NAPI per channel. It reloads the module
// first (a clean unload, and defaults not inherited from earlier tests).
func TestGuestSoftnicEnvironment(t *testing.T) {
	RequireSoftnic(t)
	CheckKernelLog(t)
	softnicReload(t)
	for _, dev := range []string{"snic0", "snic1"} {
		if out := run(t, "ethtool", "-i", dev); !strings.Contains(out, "driver: softnic") {
			t.Errorf("ethtool -i %s:\n%s", dev, out)
		}
		parent, err := filepath.EvalSymlinks("/sys/class/net/" + dev + "/device")
		if err != nil || filepath.Base(parent) != "softnic" {
			t.Errorf("%s parent device %q (%v), want the softnic platform device", dev, parent, err)
		}
		out := run(t, "ethtool", "-l", dev)
		if got := ethtoolField(t, out, "Pre-set maximums:", "Combined"); got != "8" {
			t.Errorf("%s max combined %s, want 8", dev, got)
		}
		if got := ethtoolField(t, out, "Current hardware settings:", "Combined"); got != "4" {
			t.Errorf("%s combined %s, want 4", dev, got)
		}
		r, err := nic.System().Rings(dev)
		if err != nil {
			t.Fatal(err)
		}
		if r.TCPDataSplit != nic.TCPDataSplitDisabled {
			t.Errorf("%s tcp-data-split %v, want off by default", dev, r.TCPDataSplit)
		}
		if KernelRelease(t).AtLeast(6, 14) {
			if r.HDSThresh == nil || *r.HDSThresh != 256 || r.HDSThreshMax == nil || *r.HDSThreshMax != 1024 {
				t.Errorf("%s hds-thresh %v max %v, want 256 of 1024", dev, r.HDSThresh, r.HDSThreshMax)
			}
		}
		if out := run(t, "ethtool", "-k", dev); !strings.Contains(out, "ntuple-filters: on") {
			t.Errorf("%s: ntuple filters not on:\n%s", dev, out)
		}
	}
	// Queues and NAPIs are listed only while the device is up.
	run(t, "ip", "link", "set", "snic1", "up")
	t.Cleanup(func() { run(t, "ip", "link", "set", "snic1", "down") })
	c, err := bind.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	idx := Ifindex(t, "snic1")
	qs, err := c.Queues(idx)
	if err != nil {
		t.Fatal(err)
	}
	napis := map[uint32]bool{}
	var rx int
	for _, q := range qs {
		if q.Type == bind.QueueRX {
			rx++
			if q.NapiID == 0 {
				t.Errorf("rx queue %d has no NAPI", q.ID)
			}
			napis[q.NapiID] = true
		}
	}
	if rx != 4 || len(napis) != 4 {
		t.Errorf("%d rx queues with %d distinct NAPIs, want 4 and 4: %+v", rx, len(napis), qs)
	}
	st, err := c.QstatsQueues(idx)
	if err != nil {
		t.Fatalf("per-queue stats: %v", err)
	}
	if len(st) < 4 {
		t.Errorf("qstats for %d queues, want at least 4 rx", len(st))
	}
}

// TestGuestSoftnicEthtool round-trips Debian's ethtool (the host's binary) and the ethtool netlink
// ring settings on snic1: channels, rings with header split and hds-thresh, ntuple rules at a
// location and at RX_CLS_LOC_ANY, the refuse_5tuple fault switch, the RSS table and an RSS context.
func TestGuestSoftnicEthtool(t *testing.T) {
	RequireSoftnic(t)
	CheckKernelLog(t)
	const dev = "snic1"

	t.Run("channels", func(t *testing.T) {
		run(t, "ethtool", "-L", dev, "combined", "2")
		if got := ethtoolField(t, run(t, "ethtool", "-l", dev), "Current hardware settings:", "Combined"); got != "2" {
			t.Errorf("combined %s after -L combined 2", got)
		}
		ethtoolRefused(t, "-L", dev, "combined", "9")
		run(t, "ethtool", "-L", dev, "combined", "4")
		if got := ethtoolField(t, run(t, "ethtool", "-l", dev), "Current hardware settings:", "Combined"); got != "4" {
			t.Errorf("combined %s after -L combined 4", got)
		}
	})

	t.Run("rings", func(t *testing.T) {
		run(t, "ethtool", "-G", dev, "rx", "512")
		if got := ethtoolField(t, run(t, "ethtool", "-g", dev), "Current hardware settings:", "RX"); got != "512" {
			t.Errorf("rx ring %s after -G rx 512", got)
		}
		run(t, "ethtool", "-G", dev, "rx", "1024")
		k := nic.System()
		on, off := nic.TCPDataSplitEnabled, nic.TCPDataSplitDisabled
		u := nic.RingsUpdate{TCPDataSplit: &on}
		hds7 := KernelRelease(t).AtLeast(6, 14)
		zero, def := uint32(0), uint32(256)
		if hds7 {
			u.HDSThresh = &zero
		}
		if err := k.SetRings(dev, u); err != nil {
			t.Fatal(err)
		}
		r, err := k.Rings(dev)
		if err != nil {
			t.Fatal(err)
		}
		if r.TCPDataSplit != on || (hds7 && *r.HDSThresh != 0) {
			t.Errorf("after setting header split on: %v hds-thresh %v", r.TCPDataSplit, r.HDSThresh)
		}
		u = nic.RingsUpdate{TCPDataSplit: &off}
		if hds7 {
			u.HDSThresh = &def
		}
		if err := k.SetRings(dev, u); err != nil {
			t.Fatal(err)
		}
		if r, err = k.Rings(dev); err != nil || r.TCPDataSplit != off || r.RX != 1024 {
			t.Errorf("restored rings %+v (%v)", r, err)
		}
		if hds7 {
			big := uint32(4096)
			if err := k.SetRings(dev, nic.RingsUpdate{HDSThresh: &big}); err == nil {
				t.Errorf("hds-thresh 4096 above the maximum 1024 was accepted")
			}
		}
	})

	t.Run("ntuple", func(t *testing.T) {
		out := run(t, "ethtool", "-N", dev, "flow-type", "tcp4", "src-ip", "192.0.2.1", "dst-ip", "192.0.2.2",
			"src-port", "40000", "dst-port", "5201", "action", "2", "loc", "7")
		t.Logf("5-tuple at loc 7: %s", strings.TrimSpace(out))
		out = run(t, "ethtool", "-N", dev, "flow-type", "tcp6", "dst-ip", "2001:db8:5::2", "dst-port", "5202", "action", "3")
		m := regexp.MustCompile(`Added rule with ID (\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("ethtool -N without loc (RX_CLS_LOC_ANY) printed no rule ID:\n%s", out)
		}
		anyLoc := m[1]
		if anyLoc == "7" {
			t.Errorf("RX_CLS_LOC_ANY chose the occupied location 7")
		}
		list := run(t, "ethtool", "-n", dev)
		for _, want := range []string{"Total 2 rules", "Filter: 7", "Filter: " + anyLoc, "Src IP addr: 192.0.2.1",
			"Dest port: 5201", "Action: Direct to queue 2", "Action: Direct to queue 3", "Dest port: 5202"} {
			if !strings.Contains(list, want) {
				t.Errorf("ethtool -n lacks %q:\n%s", want, list)
			}
		}
		ethtoolRefused(t, "-N", dev, "flow-type", "tcp4", "dst-port", "1", "action", "4")
		run(t, "ethtool", "-N", dev, "delete", "7")
		run(t, "ethtool", "-N", dev, "delete", anyLoc)
		if list := run(t, "ethtool", "-n", dev); !strings.Contains(list, "Total 0 rules") {
			t.Errorf("rules left after delete:\n%s", list)
		}
		ethtoolRefused(t, "-N", dev, "delete", "7")
	})

	t.Run("refuse_5tuple", func(t *testing.T) {
		SoftnicParam(t, "refuse_5tuple", "1")
		out := ethtoolRefused(t, "-N", dev, "flow-type", "tcp4", "src-ip", "192.0.2.1", "dst-ip", "192.0.2.2",
			"src-port", "40000", "dst-port", "5201", "action", "1")
		if !strings.Contains(out, "Operation not supported") {
			t.Errorf("refusal is not EOPNOTSUPP:\n%s", out)
		}
		SoftnicParam(t, "refuse_5tuple_errno", "22")
		out = ethtoolRefused(t, "-N", dev, "flow-type", "tcp4", "src-port", "40000", "dst-port", "5201", "action", "1")
		if !strings.Contains(out, "Invalid argument") {
			t.Errorf("source-port rule with refuse_5tuple_errno=22 is not EINVAL:\n%s", out)
		}
		// The 3-tuple fallback the C tool uses still works.
		added := run(t, "ethtool", "-N", dev, "flow-type", "tcp4", "dst-ip", "192.0.2.2", "dst-port", "5201", "action", "1")
		m := regexp.MustCompile(`Added rule with ID (\d+)`).FindStringSubmatch(added)
		if m == nil {
			t.Fatalf("3-tuple rule: %s", added)
		}
		run(t, "ethtool", "-N", dev, "delete", m[1])
	})

	t.Run("rss", func(t *testing.T) {
		run(t, "ethtool", "-X", dev, "equal", "2")
		out := run(t, "ethtool", "-x", dev)
		if !strings.Contains(out, "RX flow hash indirection table for snic1 with 4 RX ring(s)") ||
			!strings.Contains(out, "toeplitz: on") {
			t.Errorf("ethtool -x after -X equal 2:\n%s", out)
		}
		// The table's rows are "  N:  q q q ..." before "RSS hash key:"; the key's own line
		// ("07:ab:...") must not be read as a row.
		table, _, _ := strings.Cut(out, "RSS hash key")
		row := regexp.MustCompile(`^\s*\d+:\s+(.*)$`)
		rows := 0
		for _, l := range strings.Split(table, "\n") {
			if m := row.FindStringSubmatch(l); m != nil {
				rows++
				for _, f := range strings.Fields(m[1]) {
					if f != "0" && f != "1" {
						t.Fatalf("entry %s outside queues 0-1 after -X equal 2:\n%s", f, out)
					}
				}
			}
		}
		if rows == 0 {
			t.Fatalf("no indirection table rows in ethtool -x:\n%s", out)
		}
		// While the table is the user's, channels cannot shrink below what it uses... (core rule)
		run(t, "ethtool", "-X", dev, "default")
	})

	t.Run("rss-context", func(t *testing.T) {
		out := run(t, "ethtool", "-X", dev, "context", "new", "start", "2", "equal", "2")
		m := regexp.MustCompile(`New RSS context is (\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no new RSS context:\n%s", out)
		}
		ctx := m[1]
		out = run(t, "ethtool", "-x", dev, "context", ctx)
		if !strings.Contains(out, "2") || strings.Contains(out, "  0  ") {
			t.Logf("context %s:\n%s", ctx, out)
		}
		out = run(t, "ethtool", "-N", dev, "flow-type", "tcp4", "dst-port", "5300", "context", ctx)
		rm := regexp.MustCompile(`Added rule with ID (\d+)`).FindStringSubmatch(out)
		if rm == nil {
			t.Fatalf("rule with context %s: %s", ctx, out)
		}
		if list := run(t, "ethtool", "-n", dev, "rule", rm[1]); !strings.Contains(list, "RSS Context ID: "+ctx) {
			t.Errorf("rule %s does not name context %s:\n%s", rm[1], ctx, list)
		}
		run(t, "ethtool", "-N", dev, "delete", rm[1])
		run(t, "ethtool", "-X", dev, "context", ctx, "delete")
	})
}

// queueRX returns rx-packets per RX queue of link in ns.
func queueRX(t *testing.T, ns *testnet.NS, link string) map[uint32]uint64 {
	t.Helper()
	out := map[uint32]uint64{}
	err := netdevIn(ns, link, func(c *bind.Client, ifindex int) error {
		st, err := c.QstatsQueues(ifindex)
		if err != nil {
			return err
		}
		for _, q := range st {
			if q.QueueType != bind.QueueRX {
				continue
			}
			v, _ := q.Get("rx-packets")
			out[q.QueueID] = v
		}
		return nil
	})
	if err != nil {
		t.Fatalf("qstats of %s in %s: %v", link, ns.Name, err)
	}
	return out
}

// transfer listens in b on port, connects from a and sends n bytes, which the listener reads and
// counts; it fails t unless all n arrive within the deadline.
func transfer(t *testing.T, a, b *testnet.NS, port int, n int64) {
	t.Helper()
	addr := net.JoinHostPort(b.Addr.String(), strconv.Itoa(port))
	var ln net.Listener
	if err := b.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		m, _ := io.Copy(io.Discard, c)
		got <- m
	}()
	var c net.Conn
	if err := a.Do(func() (err error) { c, err = net.DialTimeout("tcp", addr, 10*time.Second); return }); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 64<<10)
	for sent := int64(0); sent < n; {
		k := min(int64(len(buf)), n-sent)
		w, err := c.Write(buf[:k])
		sent += int64(w)
		if err != nil {
			c.Close()
			t.Fatalf("sending to %s after %d bytes: %v", addr, sent, err)
		}
	}
	c.Close()
	if m := <-got; m != n {
		t.Fatalf("%s received %d of %d bytes", addr, m, n)
	}
}

// TestGuestSoftnicSteering sends TCP over the lab and checks with per-queue qstats that a flow
// matching an ntuple rule lands on the rule's queue, that a flow without one follows the RSS
// table, and that a rule with an RSS context spreads over that context's queues. IPv4 and IPv6.
func TestGuestSoftnicSteering(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name := "ipv4"
		flow := "tcp4"
		if v6 {
			name, flow = "ipv6", "tcp6"
		}
		t.Run(name, func(t *testing.T) {
			CheckKernelLog(t)
			lab := SoftnicLab(t, v6)
			b := lab.B
			const n = 2 << 20
			// A rule for the port: every data packet on queue 3.
			out := nsRun(t, b, "ethtool", "-N", b.Link, "flow-type", flow, "dst-port", "5999", "action", "3")
			loc := regexp.MustCompile(`Added rule with ID (\d+)`).FindStringSubmatch(out)
			if loc == nil {
				t.Fatalf("ethtool -N: %s", out)
			}
			before := queueRX(t, b, b.Link)
			transfer(t, lab.A, b, 5999, n)
			after := queueRX(t, b, b.Link)
			d := deltas(before, after)
			t.Logf("rule to queue 3: rx-packets per queue %v", d)
			if d[3] < n/9000 {
				t.Errorf("queue 3 got %d packets for %d bytes", d[3], n)
			}
			for q, v := range d {
				if q != 3 && v > 20 {
					t.Errorf("queue %d got %d packets, the rule sends the flow to 3", q, v)
				}
			}
			nsRun(t, b, "ethtool", "-N", b.Link, "delete", loc[1])

			// No rule: the RSS table, here all entries on queue 1.
			nsRun(t, b, "ethtool", "-X", b.Link, "weight", "0", "1", "0", "0")
			before = queueRX(t, b, b.Link)
			transfer(t, lab.A, b, 5998, n)
			d = deltas(before, queueRX(t, b, b.Link))
			t.Logf("RSS table on queue 1: rx-packets per queue %v", d)
			if d[1] < n/9000 {
				t.Errorf("queue 1 got %d packets for %d bytes", d[1], n)
			}
			for q, v := range d {
				if q != 1 && v > 20 {
					t.Errorf("queue %d got %d packets, the RSS table has only queue 1", q, v)
				}
			}
			nsRun(t, b, "ethtool", "-X", b.Link, "default")

			// A rule with an RSS context whose table holds only queue 2.
			out = nsRun(t, b, "ethtool", "-X", b.Link, "context", "new", "start", "2", "equal", "1")
			ctx := regexp.MustCompile(`New RSS context is (\d+)`).FindStringSubmatch(out)
			if ctx == nil {
				t.Fatalf("no RSS context: %s", out)
			}
			out = nsRun(t, b, "ethtool", "-N", b.Link, "flow-type", flow, "dst-port", "5997", "context", ctx[1])
			loc = regexp.MustCompile(`Added rule with ID (\d+)`).FindStringSubmatch(out)
			if loc == nil {
				t.Fatalf("ethtool -N context: %s", out)
			}
			before = queueRX(t, b, b.Link)
			transfer(t, lab.A, b, 5997, n)
			d = deltas(before, queueRX(t, b, b.Link))
			t.Logf("rule with context %s (queue 2 only): rx-packets per queue %v", ctx[1], d)
			if d[2] < n/9000 {
				t.Errorf("queue 2 got %d packets for %d bytes", d[2], n)
			}
			nsRun(t, b, "ethtool", "-N", b.Link, "delete", loc[1])
			nsRun(t, b, "ethtool", "-X", b.Link, "context", ctx[1], "delete")
		})
	}
}

func deltas(before, after map[uint32]uint64) map[uint32]uint64 {
	d := map[uint32]uint64{}
	for q, v := range after {
		d[q] = v - before[q]
	}
	return d
}

// TestGuestSoftnicFaults checks the datapath fault switches over the lab: drop_every loses
// packets that TCP retransmits (every byte still arrives), and pp_fail_next fails page-pool
// allocations that are counted as alloc-fail and also recovered by TCP.
func TestGuestSoftnicFaults(t *testing.T) {
	CheckKernelLog(t)
	lab := SoftnicLab(t, false)
	for _, c := range []struct {
		param, value, counter string
	}{
		{"drop_every", "50", "rx_fault_drop"},
		// Few enough that TCP's exponential backoff, when a retransmission is dropped too,
		// stays well inside the transfer's deadline.
		{"pp_fail_next", "3", "rx_fault_pp_fail"},
		{"pp_fail_pct", "2", "rx_fault_pp_fail"},
	} {
		t.Run(c.param, func(t *testing.T) {
			before := SoftnicCounters(t, lab.B, lab.B.Link)
			SoftnicParam(t, c.param, c.value)
			// Payload goes to page-pool buffers only with a non-trivial packet: header split
			// off still puts payloads above the copybreak in pool pages.
			transfer(t, lab.A, lab.B, 6001, 4<<20)
			after := SoftnicCounters(t, lab.B, lab.B.Link)
			got := after[c.counter] - before[c.counter]
			t.Logf("%s=%s: %s +%d, rx_hw_drops +%d, rx_alloc_fail +%d", c.param, c.value, c.counter, got,
				after["rx_hw_drops"]-before["rx_hw_drops"], after["rx_alloc_fail"]-before["rx_alloc_fail"])
			if got == 0 {
				t.Errorf("%s=%s fired no fault", c.param, c.value)
			}
		})
	}
	if v := SoftnicParamValue(t, "pp_fail_next"); v != "0" {
		t.Errorf("pp_fail_next is %s after 4 MiB, want 0 (all 3 used)", v)
	}
}

// softnicReload unloads softnic and loads it again with the module the guest booted with.
func softnicReload(t *testing.T) {
	t.Helper()
	ko := os.Getenv("NCDEVMEM_SOFTNIC_KO")
	if ko == "" {
		t.Fatal("NCDEVMEM_SOFTNIC_KO is not set: run-tests.sh names the module file in the guest")
	}
	if out, err := nsCmd(nil, "rmmod", "softnic").CombinedOutput(); err != nil {
		t.Fatalf("rmmod softnic: %v\n%s", err, out)
	}
	if out, err := nsCmd(nil, "insmod", ko).CombinedOutput(); err != nil {
		t.Fatalf("insmod %s: %v\n%s", ko, err, out)
	}
	for _, dev := range []string{"snic0", "snic1"} {
		if _, err := net.InterfaceByName(dev); err != nil {
			t.Fatalf("after reloading softnic: %v", err)
		}
	}
}

// TestGuestSoftnicToeplitz checks softnic's RSS hash against the Toeplitz verification vectors
// Microsoft publishes for RSS (the key and the IPv4 and IPv6 TCP cases): with the published key and
// an indirection table that sends only entry hash%128 to queue 3, the published 4-tuple must land
// on queue 3. A wrong hash lands on queue 0 (127 entries of 128).
func TestGuestSoftnicToeplitz(t *testing.T) {
	const key = "6d:5a:56:da:25:5b:0e:c2:41:67:25:3d:43:a3:8f:b0:d0:ca:2b:cb:ae:7b:30:b4:77:cb:2d:a3:80:30:f2:0c:6a:42:b7:3b:be:ac:01:fa"
	for _, c := range []struct {
		name               string
		v6                 bool
		src, dst           string
		sport, dport, hash uint32
	}{
		{"ipv4", false, "66.9.149.187", "161.142.100.80", 2794, 1766, 0x51ccc178},
		{"ipv6", true, "3ffe:2501:200:1fff::7", "3ffe:2501:200:3::1", 2794, 1766, 0x40207d3d},
	} {
		t.Run(c.name, func(t *testing.T) {
			CheckKernelLog(t)
			lab := SoftnicLab(t, c.v6)
			a, b := lab.A, lab.B
			plen := "32"
			if c.v6 {
				plen = "128"
			}
			for _, x := range []struct {
				ns         *testnet.NS
				local, far string
			}{{a, c.src, c.dst}, {b, c.dst, c.src}} {
				args := []string{"addr", "add", x.local + "/" + plen, "dev", x.ns.Link}
				if c.v6 {
					args = append(args, "nodad")
				}
				nsRun(t, x.ns, "ip", args...)
				nsRun(t, x.ns, "ip", "route", "add", x.far+"/"+plen, "dev", x.ns.Link, "src", x.local)
			}
			nsRun(t, b, "ethtool", "-X", b.Link, "hkey", key)
			table := make([]uint32, 128)
			table[c.hash%128] = 3
			if err := b.Do(func() error { return nic.System().SetIndir(b.Link, table) }); err != nil {
				t.Fatal(err)
			}
			defer nsRun(t, b, "ethtool", "-X", b.Link, "default")

			ln, err := listenOn(b, net.JoinHostPort(c.dst, strconv.Itoa(int(c.dport))))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			// Accept must not wait forever when the connection never arrives.
			ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
			before := queueRX(t, b, b.Link)
			var conn net.Conn
			err = a.Do(func() (err error) {
				d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.src), Port: int(c.sport)}}
				conn, err = d.Dial("tcp", net.JoinHostPort(c.dst, strconv.Itoa(int(c.dport))))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			srv, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			srv.SetDeadline(time.Now().Add(30 * time.Second))
			go func() {
				conn.Write(make([]byte, 256<<10))
				conn.Close()
			}()
			n, err := io.Copy(io.Discard, srv)
			srv.Close()
			if err != nil {
				t.Errorf("receiving: %v", err)
			}
			d := deltas(before, queueRX(t, b, b.Link))
			t.Logf("%s:%d -> %s:%d (Toeplitz %#x, entry %d): rx-packets per queue %v, %d bytes",
				c.src, c.sport, c.dst, c.dport, c.hash, c.hash%128, d, n)
			if d[3] < 100 || d[0] > 10 {
				t.Errorf("the flow did not land on queue 3: softnic's hash differs from the published Toeplitz value")
			}
		})
	}
}

func listenOn(ns *testnet.NS, addr string) (ln net.Listener, err error) {
	err = ns.Do(func() error { ln, err = net.Listen("tcp", addr); return err })
	return ln, err
}
