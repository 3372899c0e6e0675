// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/doctor"
	"github.com/devmemtcp/ncdevmem/nic"
)

// runDoctor runs `ncdevmem doctor -f dev --json` and returns its exit code and report.
func runDoctor(t *testing.T, dev string) (int, *doctor.Report) {
	t.Helper()
	cmd := exec.Command(ncdevmemBin(t), "doctor", "-f", dev, "--json")
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		t.Logf("doctor stderr: %s", ee.Stderr)
	} else if err != nil {
		t.Fatal(err)
	}
	var r doctor.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("doctor -f %s --json (exit %d): %v\n%s", dev, code, err, out)
	}
	return code, &r
}

func check(t *testing.T, r *doctor.Report, id string) doctor.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("doctor -f %s has no %q line", r.Ifname, id)
	return doctor.Check{}
}

func logReport(t *testing.T, r *doctor.Report) {
	t.Helper()
	var b strings.Builder
	for _, c := range r.Checks {
		b.WriteString("  " + string(c.Status) + " " + c.ID + ": " + c.Detail + "\n")
	}
	t.Logf("doctor -f %s: rx ready %v %v, tx ready %v %v\n%s queues %+v", r.Ifname, r.RX.Ready, r.RX.Reasons, r.TX.Ready, r.TX.Reasons, b.String(), r.Queues)
}

// TestGuestDoctorNetdevsim runs `ncdevmem doctor` on a netdevsim port (7.x): four RX queues with NAPI
// ids, header split and hds-thresh read correctly before and after they are set, the RX probe
// stopped by "Device doesn't support DMA", TX by "Driver does not support netmem TX", exit status 1.
// The page pools the doctor does not show are checked through the netdev family directly.
func TestGuestDoctorNetdevsim(t *testing.T) {
	Require(t)
	nsim := NewNetdevsim(t, 41, 1, 4)
	dev := nsim.Ports[0]
	ipLink(t, "set", dev, "up")
	off, thresh := nic.TCPDataSplitDisabled, uint32(256)
	if err := nic.SetRings(dev, nic.RingsUpdate{TCPDataSplit: &off, HDSThresh: &thresh}); err != nil {
		t.Fatal(err)
	}

	code, r := runDoctor(t, dev)
	logReport(t, r)
	if code != 1 || r.RX.Ready || r.TX.Ready {
		t.Errorf("doctor exit %d, rx ready %v, tx ready %v: netdevsim can do neither", code, r.RX.Ready, r.TX.Ready)
	}
	if r.Ifname != dev || r.Ifindex != Ifindex(t, dev) || !strings.HasPrefix(r.Kernel, "7.") {
		t.Errorf("report header: %s ifindex %d kernel %s", r.Ifname, r.Ifindex, r.Kernel)
	}
	if len(r.Queues) != 4 {
		t.Errorf("%d RX queues, want 4", len(r.Queues))
	}
	for _, q := range r.Queues {
		if q.NapiID == 0 || q.Holder != "" {
			t.Errorf("queue %+v: want a NAPI id and no holder", q)
		}
	}
	if c := check(t, r, "tcp-data-split"); c.Status == doctor.StatusOK || !strings.Contains(c.Detail, "off") {
		t.Errorf("tcp-data-split off reported as %s %q", c.Status, c.Detail)
	}
	if c := check(t, r, "hds-thresh"); c.Status == doctor.StatusOK || !strings.Contains(c.Detail, "256") {
		t.Errorf("hds-thresh 256 reported as %s %q", c.Status, c.Detail)
	}
	if c := check(t, r, "bind-rx-probe"); c.Status != doctor.StatusFail || !strings.Contains(c.Detail, "Device doesn't support DMA") {
		t.Errorf("bind-rx probe: %s %q, want fail with the kernel's \"Device doesn't support DMA\"", c.Status, c.Detail)
	}
	if c := check(t, r, "bind-tx-probe"); c.Status != doctor.StatusFail || !strings.Contains(c.Detail, "Driver does not support netmem TX") {
		t.Errorf("bind-tx probe: %s %q, want fail with the kernel's \"Driver does not support netmem TX\"", c.Status, c.Detail)
	}
	if c := check(t, r, "udmabuf"); c.Status != doctor.StatusOK {
		t.Errorf("udmabuf: %s %q", c.Status, c.Detail)
	}

	on, zero := nic.TCPDataSplitEnabled, uint32(0)
	if err := nic.SetRings(dev, nic.RingsUpdate{TCPDataSplit: &on, HDSThresh: &zero}); err != nil {
		t.Fatal(err)
	}
	_, r = runDoctor(t, dev)
	for _, id := range []string{"tcp-data-split", "hds-thresh"} {
		if c := check(t, r, id); c.Status != doctor.StatusOK {
			t.Errorf("after ethtool -G %s tcp-data-split on hds-thresh 0: %s is %s %q", dev, id, c.Status, c.Detail)
		}
	}

	c, err := bind.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pools, err := c.PagePools(Ifindex(t, dev))
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 4 {
		t.Errorf("%d page pools on %s, want one per RX queue (4)", len(pools), dev)
	}
	for _, p := range pools {
		if p.NapiID == 0 || p.Dmabuf != 0 {
			t.Errorf("page pool %+v: want a NAPI id and no dma-buf", p)
		}
	}
	if stats, err := c.PagePoolStats(Ifindex(t, dev)); err != nil || len(stats) != len(pools) {
		t.Errorf("page pool stats: %d entries, %v", len(stats), err)
	}
}

// TestGuestDoctorVirtio runs `ncdevmem doctor` on virtio-net under each kernel: not ready, queues
// with NAPI ids, too few channels, and each kernel's TX answer (6.12: no bind-tx op; 7.x: the
// driver's refusal).
func TestGuestDoctorVirtio(t *testing.T) {
	Require(t)
	dev := VirtioNICs(t)[0]
	ipLink(t, "set", dev, "up")
	t.Cleanup(func() { ipLink(t, "set", dev, "down") })
	code, r := runDoctor(t, dev)
	logReport(t, r)
	if code != 1 || r.RX.Ready || r.TX.Ready {
		t.Errorf("doctor exit %d, rx ready %v, tx ready %v: virtio-net can do neither", code, r.RX.Ready, r.TX.Ready)
	}
	// virtio-net links its queues to their NAPI instances in 7.x; 6.12's lists the queue without one.
	if len(r.Queues) != 1 || KernelRelease(t).AtLeast(7, 0) && r.Queues[0].NapiID == 0 {
		t.Errorf("queues %+v: want virtio-net's one RX queue (with its NAPI id on 7.x)", r.Queues)
	}
	if c := check(t, r, "link"); c.Status != doctor.StatusOK {
		t.Errorf("link: %s %q after ip link set %s up", c.Status, c.Detail, dev)
	}
	// One RX queue: none can be spared for a probe, and devmem needs two.
	if c := check(t, r, "channels"); c.Status != doctor.StatusFail {
		t.Errorf("channels of a single-queue virtio-net: %s %q", c.Status, c.Detail)
	}
	tx := check(t, r, "bind-tx-probe")
	if KernelRelease(t).AtLeast(6, 15) {
		if tx.Status != doctor.StatusFail || !strings.Contains(tx.Detail, "Driver does not support netmem TX") {
			t.Errorf("bind-tx probe: %s %q, want the kernel's \"Driver does not support netmem TX\"", tx.Status, tx.Detail)
		}
	} else if ops := check(t, r, "netdev-ops"); ops.Status != doctor.StatusFail || !strings.Contains(ops.Detail, "no bind-tx") {
		t.Errorf("netdev ops of %s: %s %q, want a failure naming the missing bind-tx", r.Kernel, ops.Status, ops.Detail)
	}
	if c := check(t, r, "udmabuf"); c.Status != doctor.StatusOK {
		t.Errorf("udmabuf: %s %q", c.Status, c.Detail)
	}
}
