// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package doctor

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/nic"
	"golang.org/x/sys/unix"
)

// fakeSystem is a NIC and machine described by fields; the zero value of each field is the
// devmem-ready answer unless noted.
type fakeSystem struct {
	release   string
	ops       []bind.Op
	opsErr    error
	queues    []bind.Queue
	napis     []bind.Napi
	probeRX   error
	probedRX  []uint32
	probeTX   error
	driver    *nic.Driver
	driverErr error
	channels  *nic.Channels
	chErr     error
	rings     *nic.Rings
	ringsErr  error
	ntuple    *nic.Ntuple
	ntupleErr error
	rss       *nic.RSS
	rssErr    error
	xdp       bool
	down      bool
	udmabuf   bool
	limit     int
	noCap     bool
	cudaBuilt bool
	cudaErr   error
}

func op(cmd uint8, name string, flags uint32) bind.Op {
	return bind.Op{Cmd: cmd, Name: name, Flags: flags}
}

var ops618 = []bind.Op{op(1, "dev-get", 0xe), op(5, "page-pool-get", 0xe), op(10, "queue-get", 0xe), op(11, "napi-get", 0xe),
	op(12, "qstats-get", 0xc), op(13, "bind-rx", 0xb), op(14, "napi-set", 0xb), op(15, "bind-tx", 0xa)}

var ops612 = []bind.Op{op(1, "dev-get", 0xe), op(5, "page-pool-get", 0xe), op(10, "queue-get", 0xe), op(11, "napi-get", 0xe),
	op(12, "qstats-get", 0xc), op(13, "bind-rx", 0xb)}

func u32p(v uint32) *uint32 { return &v }

// readyNIC is a bnxt with four queues on 6.18, header split on: ready for RX and TX.
func readyNIC() *fakeSystem {
	var qs []bind.Queue
	var ns []bind.Napi
	for i := range uint32(4) {
		qs = append(qs, bind.Queue{ID: i, Ifindex: 3, Type: bind.QueueRX, NapiID: 100 + i}, bind.Queue{ID: i, Ifindex: 3, Type: bind.QueueTX, NapiID: 100 + i})
		ns = append(ns, bind.Napi{ID: 100 + i, Ifindex: 3, IRQ: 40 + i})
	}
	return &fakeSystem{
		release:  "6.18.44",
		ops:      ops618,
		queues:   qs,
		napis:    ns,
		probeRX:  &bind.Error{Op: "bind-rx", Errno: unix.EINVAL},
		probeTX:  &bind.Error{Op: "bind-tx", Errno: unix.EINVAL},
		driver:   &nic.Driver{Driver: "bnxt_en", Version: "6.18", Firmware: "230.0.1", Bus: "0000:3b:00.0"},
		channels: &nic.Channels{Combined: 4, CombinedMax: 8, RXMax: 0},
		rings:    &nic.Rings{RX: 1024, RXMax: 2048, TX: 1024, TXMax: 2048, TCPDataSplit: nic.TCPDataSplitEnabled, HDSThresh: u32p(0), HDSThreshMax: u32p(1024)},
		ntuple:   &nic.Ntuple{TableSize: 64, LocAny: true},
		rss:      &nic.RSS{RXRings: 4, Indir: make([]uint32, 128), Contexts: true},
		udmabuf:  true,
		limit:    64,
	}
}

func (f *fakeSystem) KernelRelease() (string, error) { return f.release, nil }
func (f *fakeSystem) Ifindex(ifname string) (int, error) {
	if ifname != "eth1" {
		return 0, errors.New("no interface " + ifname + " in this network namespace")
	}
	return 3, nil
}
func (f *fakeSystem) NetdevOps() ([]bind.Op, error)    { return f.ops, f.opsErr }
func (f *fakeSystem) Queues(int) ([]bind.Queue, error) { return f.queues, nil }
func (f *fakeSystem) Napis(int) ([]bind.Napi, error)   { return f.napis, nil }
func (f *fakeSystem) ProbeBindRX(_ int, q uint32) error {
	f.probedRX = append(f.probedRX, q)
	return f.probeRX
}
func (f *fakeSystem) ProbeBindTX(int) error                  { return f.probeTX }
func (f *fakeSystem) Driver(string) (*nic.Driver, error)     { return f.driver, f.driverErr }
func (f *fakeSystem) Channels(string) (*nic.Channels, error) { return f.channels, f.chErr }
func (f *fakeSystem) Rings(string) (*nic.Rings, error)       { return f.rings, f.ringsErr }
func (f *fakeSystem) Ntuple(string) (*nic.Ntuple, error)     { return f.ntuple, f.ntupleErr }
func (f *fakeSystem) RSS(string) (*nic.RSS, error)           { return f.rss, f.rssErr }
func (f *fakeSystem) Link(int) (Link, error) {
	l := Link{Up: !f.down, XDP: f.xdp}
	if f.xdp {
		l.ProgID = 7
	}
	return l, nil
}
func (f *fakeSystem) IRQAffinity(irq uint32) (string, error) {
	return map[bool]string{true: "0-3", false: "5"}[irq%2 == 0], nil
}
func (f *fakeSystem) Udmabuf() (bool, int, error) { return f.udmabuf, f.limit, nil }
func (f *fakeSystem) CapNetAdmin() (bool, error)  { return !f.noCap, nil }
func (f *fakeSystem) CUDA() error                 { return f.cudaErr }
func (f *fakeSystem) CUDABuilt() bool             { return f.cudaBuilt }

var notSupp = &nic.Error{Ifname: "eth1", Op: "x", Err: unix.EOPNOTSUPP}

func check(t *testing.T, r *Report, id string) Check {
	t.Helper()
	i := slices.IndexFunc(r.Checks, func(c Check) bool { return c.ID == id })
	if i < 0 {
		t.Fatalf("no check %q in %+v", id, r.Checks)
	}
	return r.Checks[i]
}

func mustRun(t *testing.T, f *fakeSystem) *Report {
	t.Helper()
	r, err := Run(f, "eth1")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReady(t *testing.T) {
	f := readyNIC()
	r := mustRun(t, f)
	if !r.RX.Ready || !r.TX.Ready || !r.Ready(true, true) {
		var buf bytes.Buffer
		WriteText(&buf, r)
		t.Fatalf("ready NIC judged not ready:\n%s", buf.String())
	}
	for _, c := range r.Checks {
		if c.Status == StatusFail || c.Status == StatusWarn {
			t.Errorf("check %s: %s %s", c.ID, c.Status, c.Detail)
		}
	}
	if len(r.Queues) != 4 || r.Queues[2].IRQ != 42 || r.Queues[2].CPUs != "0-3" || r.Queues[1].CPUs != "5" {
		t.Errorf("queues %+v", r.Queues)
	}
	// The probe takes the last free RX queue, as the C tool's default binds the last queue.
	if !slices.Equal(f.probedRX, []uint32{3}) {
		t.Errorf("probed queues %v, want [3]", f.probedRX)
	}
	if c := check(t, r, "bind-rx-probe"); c.Status != StatusOK {
		t.Errorf("bind-rx probe on 6.18: %+v", c)
	}
}

func TestHeaderSplitOffIsAFix(t *testing.T) {
	f := readyNIC()
	f.rings.TCPDataSplit = nic.TCPDataSplitDisabled
	f.rings.HDSThresh = u32p(256)
	r := mustRun(t, f)
	if !r.RX.Ready {
		t.Fatalf("header split off blocks RX: %v; ncdevmem's setup turns it on", r.RX.Reasons)
	}
	want := []string{"ethtool -G eth1 tcp-data-split on", "ethtool -G eth1 hds-thresh 0"}
	if !slices.Equal(r.RX.Fixes, want) {
		t.Errorf("fixes %q, want %q", r.RX.Fixes, want)
	}
}

func TestVethLike(t *testing.T) {
	f := readyNIC()
	f.queues = []bind.Queue{{ID: 0, Type: bind.QueueRX}, {ID: 0, Type: bind.QueueTX}}
	f.napis = nil
	f.driver = &nic.Driver{Driver: "veth", Version: "1.0"}
	f.channels = &nic.Channels{RX: 1, TX: 1, RXMax: 2, TXMax: 2}
	f.ringsErr, f.ntupleErr, f.rssErr = notSupp, notSupp, notSupp
	f.probeRX = &bind.Error{Op: "bind-rx", Errno: unix.EOPNOTSUPP, Offset: 20, Attr: "ifindex", Advice: "the driver of eth1 lacks the queue management API devmem RX needs"}
	f.probeTX = &bind.Error{Op: "bind-tx", Errno: unix.EOPNOTSUPP, Message: "Driver does not support netmem TX", Advice: "the driver of eth1 cannot send from a dma-buf"}
	f.udmabuf = false
	r := mustRun(t, f)
	if r.RX.Ready || r.TX.Ready {
		t.Fatal("a veth judged ready")
	}
	for id, st := range map[string]Status{
		"driver": StatusWarn, "channels": StatusFail, "tcp-data-split": StatusFail, "hds-thresh": StatusSkip,
		"ntuple": StatusFail, "rss": StatusFail, "bind-rx-probe": StatusFail, "bind-tx-probe": StatusFail, "udmabuf": StatusFail,
	} {
		if c := check(t, r, id); c.Status != st {
			t.Errorf("%s: %s (%s), want %s", id, c.Status, c.Detail, st)
		}
	}
	if c := check(t, r, "channels"); !slices.Equal(c.Fix, []string{"ethtool -L eth1 rx 2"}) {
		t.Errorf("channels fix %q", c.Fix)
	}
	if c := check(t, r, "bind-rx-probe"); !strings.Contains(c.Detail, "operation not supported [attribute ifindex]") || !strings.Contains(c.Fix[0], "queue management API") {
		t.Errorf("probe line %+v", c)
	}
	if len(r.TX.Reasons) != 2 {
		t.Errorf("TX reasons %q, want the probe and udmabuf", r.TX.Reasons)
	}
}

func TestOldKernel(t *testing.T) {
	f := readyNIC()
	f.release = "6.12.117+deb12-cloud-amd64"
	f.ops = ops612
	f.probeRX = &bind.Error{Op: "bind-rx", Errno: unix.EINVAL}
	r := mustRun(t, f)
	if !r.RX.Ready || r.TX.Ready {
		t.Fatalf("6.12: RX %v TX %v, want RX ready, TX not", r.RX, r.TX)
	}
	if c := check(t, r, "bind-rx-probe"); c.Status != StatusInfo || !strings.Contains(c.Detail, "inconclusive") {
		t.Errorf("6.12 probe %+v, want inconclusive", c)
	}
	if c := check(t, r, "netdev-ops"); c.Status != StatusFail || c.RX || !c.TX || !strings.Contains(c.Fix[0], "6.15") {
		t.Errorf("ops line %+v", c)
	}
	if c := check(t, r, "bind-tx-probe"); c.Status != StatusFail {
		t.Errorf("bind-tx line %+v", c)
	}
}

func TestNoNetdevFamily(t *testing.T) {
	f := readyNIC()
	f.ops, f.opsErr = nil, errors.New("resolve generic netlink family netdev: the kernel has no netdev family")
	r := mustRun(t, f)
	if r.RX.Ready || r.TX.Ready {
		t.Fatal("ready without a netdev family")
	}
	if c := check(t, r, "bind-rx-probe"); c.Status != StatusSkip {
		t.Errorf("probe without bind-rx: %+v", c)
	}
}

func TestBlockers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(f *fakeSystem)
		id     string
		status Status
		fix    string
		rx, tx bool // verdicts after
	}{
		{"xdp", func(f *fakeSystem) { f.xdp = true }, "xdp", StatusFail, "ip link set eth1 xdp off", false, true},
		{"down", func(f *fakeSystem) { f.down, f.queues, f.napis = true, nil, nil }, "link", StatusFail, "ip link set eth1 up", false, false},
		{"down, queues skipped", func(f *fakeSystem) { f.down, f.queues, f.napis = true, nil, nil }, "queues", StatusSkip, "", false, false},
		{"no capability", func(f *fakeSystem) { f.noCap = true }, "cap-net-admin", StatusFail, "setcap cap_net_admin+ep", false, true},
		{"ntuple full", func(f *fakeSystem) {
			f.ntuple = &nic.Ntuple{TableSize: 2, Rules: []nic.Rule{{Location: 5}, {Location: 6}}}
		}, "ntuple", StatusFail, "ethtool -N eth1 delete 5", false, true},
		{"all queues held", func(f *fakeSystem) {
			for i := range f.queues {
				if f.queues[i].Type == bind.QueueRX {
					f.queues[i].Dmabuf = 9
				}
			}
		}, "queues", StatusFail, "stop the devmem", false, true},
		{"some queues held", func(f *fakeSystem) { f.queues[6].IOUring = true }, "queues", StatusWarn, "bind only the free queues", true, true},
		{"one RX queue", func(f *fakeSystem) { f.channels = &nic.Channels{Combined: 1, CombinedMax: 8} }, "channels", StatusFail, "ethtool -L eth1 combined 2", false, true},
		{"tcp-data-split not reported", func(f *fakeSystem) { f.rings.TCPDataSplit = nic.TCPDataSplitUnknown }, "tcp-data-split", StatusFail, "tcp-data-split on", false, true},
		{"no indirection table", func(f *fakeSystem) { f.rss.Indir = nil }, "rss", StatusFail, "", false, true},
		{"no udmabuf but a GPU", func(f *fakeSystem) { f.udmabuf, f.cudaBuilt = false, true }, "udmabuf", StatusWarn, "modprobe udmabuf", true, true},
		{"CUDA build without a GPU", func(f *fakeSystem) { f.cudaBuilt, f.cudaErr = true, errors.New("gpu: libcuda.so.1: not found") }, "cuda", StatusWarn, "", true, true},
		{"tx driver refuses", func(f *fakeSystem) {
			f.probeTX = &bind.Error{Op: "bind-tx", Errno: unix.EOPNOTSUPP, Message: "Driver does not support netmem TX", Advice: "use host-memory TX"}
		}, "bind-tx-probe", StatusFail, "host-memory TX", true, false},
		{"no DMA device", func(f *fakeSystem) {
			f.probeRX = &bind.Error{Op: "bind-rx", Errno: unix.EOPNOTSUPP, Message: "Device doesn't support DMA", Advice: "devmem needs a real NIC"}
		}, "bind-rx-probe", StatusFail, "real NIC", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := readyNIC()
			tc.mod(f)
			r := mustRun(t, f)
			c := check(t, r, tc.id)
			if c.Status != tc.status {
				t.Errorf("%s: %s (%s), want %s", tc.id, c.Status, c.Detail, tc.status)
			}
			if tc.fix != "" && !strings.Contains(strings.Join(c.Fix, "\n"), tc.fix) {
				t.Errorf("%s fix %q, want %q", tc.id, c.Fix, tc.fix)
			}
			if r.RX.Ready != tc.rx || r.TX.Ready != tc.tx {
				t.Errorf("verdicts RX %v (%q) TX %v (%q), want %v %v", r.RX.Ready, r.RX.Reasons, r.TX.Ready, r.TX.Reasons, tc.rx, tc.tx)
			}
		})
	}
}

func TestProbeSkipsHeldQueues(t *testing.T) {
	f := readyNIC()
	f.queues[6].Dmabuf = 2 // rx queue 3
	mustRun(t, f)
	if !slices.Equal(f.probedRX, []uint32{2}) {
		t.Errorf("probed %v, want the last free queue 2", f.probedRX)
	}
}

func TestUnknownInterface(t *testing.T) {
	if _, err := Run(readyNIC(), "nosuch0"); err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("Run(nosuch0) = %v", err)
	}
}

func TestReportJSON(t *testing.T) {
	f := readyNIC()
	f.rings.TCPDataSplit = nic.TCPDataSplitDisabled
	r := mustRun(t, f)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Ifname != "eth1" || len(back.Checks) != len(r.Checks) || back.Queues[3].CPUs != "5" || !back.RX.Ready || back.RX.Fixes[0] != "ethtool -G eth1 tcp-data-split on" {
		t.Errorf("JSON lost facts: %s", b)
	}
	if f := back.Facts; f.Driver == nil || f.Driver.Name != "bnxt_en" || f.Channels.Combined != 4 || f.Rings.TCPDataSplit != "off" ||
		*f.Rings.HDSThresh != 0 || f.Ntuple.Slots != 64 || f.RSS.TableSize != 128 || !f.RSS.Contexts || f.XDP.Attached ||
		!f.Udmabuf.Present || f.Udmabuf.SizeLimitMB != 64 || !f.CapNetAdmin || len(f.NetdevOps) != 8 {
		t.Errorf("facts %s", b)
	}
	for _, key := range []string{`"status":"warn"`, `"fix":["ethtool -G eth1 tcp-data-split on"]`, `"irq":43`, `"kernel":"6.18.44"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
}

func TestWriteText(t *testing.T) {
	f := readyNIC()
	f.xdp = true
	r := mustRun(t, f)
	var buf bytes.Buffer
	if err := WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	for _, want := range []string{"ncdevmem doctor: eth1 (ifindex 3), kernel 6.18.44", "[fail] no XDP program", "fix: ip link set eth1 xdp off",
		"RX: not ready", "  - no XDP program: XDP program 7 attached", "TX: ready", "queue  napi  irq  cpus  holder"} {
		if !strings.Contains(s, want) {
			t.Errorf("text lacks %q:\n%s", want, s)
		}
	}
}

func TestParseRelease(t *testing.T) {
	for in, want := range map[string]bool{"6.18.44-fc-v657": true, "6.12.117+deb12-cloud-amd64": false, "7.3.4+deb13-cloud-amd64": true, "6.9": false, "garbage": false, "6.": false} {
		if got := fdCheckedLast(in); got != want {
			t.Errorf("fdCheckedLast(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestUdmabufState(t *testing.T) {
	dir := t.TempDir()
	if ok, _, err := udmabufState(filepath.Join(dir, "none"), filepath.Join(dir, "limit")); ok || err != nil {
		t.Errorf("missing device: %v %v", ok, err)
	}
	// /dev/null stands in for the character device.
	limit := filepath.Join(dir, "limit")
	os.WriteFile(limit, []byte("64\n"), 0o644)
	if ok, n, err := udmabufState("/dev/null", limit); !ok || n != 64 || err != nil {
		t.Errorf("device with limit: %v %d %v", ok, n, err)
	}
	os.WriteFile(limit, []byte("lots\n"), 0o644)
	if _, _, err := udmabufState("/dev/null", limit); err == nil {
		t.Error("a non-number limit was accepted")
	}
	if _, _, err := udmabufState(limit, limit); err == nil {
		t.Error("a regular file was taken for the device")
	}
}
