// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package envinfo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/report"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestCaptureThisHost(t *testing.T) {
	e := Capture("")
	if e.KernelRelease == "" || e.KernelVersion == "" || e.Hostname == "" {
		t.Errorf("uname facts missing: %+v", e)
	}
	if e.NumCPU < 1 {
		t.Errorf("NumCPU = %d", e.NumCPU)
	}
	if e.ToolVersion == "" {
		t.Error("ToolVersion empty")
	}
	if e.Ifname != "" || e.Driver != "" {
		t.Errorf("NIC facts without an interface: %+v", e)
	}
}

func TestCaptureLoopbackHasNoDriver(t *testing.T) {
	e := Capture("lo")
	if e.Ifname != "lo" {
		t.Errorf("Ifname = %q", e.Ifname)
	}
	if e.Driver != "" || e.Firmware != "" {
		t.Errorf("lo has driver %q firmware %q, want none", e.Driver, e.Firmware)
	}
	if !strings.Contains(e.Extra["queues"], "rx 1") {
		t.Errorf("queues = %q, want lo's single rx queue", e.Extra["queues"])
	}
}

func TestCaptureMissingInterface(t *testing.T) {
	e := Capture("nd-no-such0")
	if !strings.Contains(e.Extra["unknown"], "sysfs /sys/class/net/nd-no-such0: no such file or directory") ||
		!strings.Contains(e.Extra["unknown"], "rings: ") {
		t.Errorf("unknown = %q, want the missing interface named", e.Extra["unknown"])
	}
}

type fakeNIC struct{ err error }

func (f fakeNIC) Driver(string) (*nic.Driver, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &nic.Driver{Driver: "bnxt_en", Version: "6.18", Firmware: "230.0.157.0/pkg 230.1.116.0", Bus: "0000:08:00.0"}, nil
}
func (f fakeNIC) Rings(string) (map[string]uint64, string, *uint32, error) {
	if f.err != nil {
		return nil, "", nil, f.err
	}
	z := uint32(0)
	return map[string]uint64{"rx": 2047, "tx": 2047}, "on", &z, nil
}
func (f fakeNIC) Channels(string) (map[string]uint64, error) {
	if f.err != nil {
		return nil, f.err
	}
	return map[string]uint64{"combined": 16}, nil
}
func (f fakeNIC) RSS(string) (string, error) {
	if f.err != nil {
		return "", f.err
	}
	return rssSummary(&nic.RSS{RXRings: 16, Indir: []uint32{0, 1, 2, 3, 0, 1, 2, 3}, Contexts: true}), nil
}

// fakeTree builds a /proc and /sys with one NIC eth1 whose two MSI-X vectors are queues 0 and 1.
func fakeTree(t *testing.T) (proc, sys string) {
	root := t.TempDir()
	proc, sys = filepath.Join(root, "proc"), filepath.Join(root, "sys")
	files := map[string]string{
		"proc/cpuinfo":                                          "processor\t: 0\nmodel name\t: AMD EPYC 9454 48-Core Processor\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 9454 48-Core Processor\n",
		"proc/cmdline":                                          "BOOT_IMAGE=/vmlinuz-6.18.0 root=/dev/vda ro mitigations=off token=s3cret iommu=pt -- isolcpus=1\n",
		"proc/interrupts":                                       "           CPU0       CPU1\n 120:        10          0  PCI-MSIX-0000:08:00.0   1-edge      eth1-TxRx-0\n 121:         0         20  PCI-MSIX-0000:08:00.0   2-edge      eth1-TxRx-1\n 122:         0          0  PCI-MSIX-0000:08:00.0   3-edge\nNMI:          0          0   Non-maskable interrupts\n",
		"proc/irq/120/effective_affinity_list":                  "0\n",
		"proc/irq/121/effective_affinity_list":                  "\n",
		"proc/irq/121/smp_affinity_list":                        "1\n",
		"proc/irq/122/smp_affinity_list":                        "0-1\n",
		"sys/class/net/eth1/device/msi_irqs/120":                "msix\n",
		"sys/class/net/eth1/device/msi_irqs/121":                "msix\n",
		"sys/class/net/eth1/device/msi_irqs/122":                "msix\n",
		"sys/class/net/eth1/queues/rx-0/rps_cpus":               "0\n",
		"sys/class/net/eth1/queues/rx-1/rps_cpus":               "0\n",
		"sys/class/net/eth1/queues/tx-0/xps_cpus":               "0\n",
		"sys/devices/system/cpu/cpu0/cpufreq/scaling_governor":  "performance\n",
		"sys/devices/system/cpu/cpu1/cpufreq/scaling_governor":  "powersave\n",
		"sys/devices/system/cpu/cpu12/cpufreq/scaling_governor": "powersave\n",
	}
	for p, c := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return proc, sys
}

func fakeUname() (unix.Utsname, error) {
	var u unix.Utsname
	copy(u.Nodename[:], "dut1")
	copy(u.Release[:], "6.18.0-devmem")
	copy(u.Version[:], "#1 SMP PREEMPT_DYNAMIC Sat Nov 21 2026")
	return u, nil
}

func TestCaptureFakeNIC(t *testing.T) {
	proc, sys := fakeTree(t)
	h := host{proc: proc, sys: sys, uname: fakeUname, nic: fakeNIC{}, args: []string{"ncdevmem", "server"}}
	got := h.capture("eth1")
	z := uint32(0)
	want := &report.Env{
		Hostname: "dut1", KernelRelease: "6.18.0-devmem", KernelVersion: "#1 SMP PREEMPT_DYNAMIC Sat Nov 21 2026",
		CPUModel: "AMD EPYC 9454 48-Core Processor", NumCPU: 2,
		Governor:    "performance (0), powersave (1,12)",
		ToolVersion: got.ToolVersion, Cmdline: []string{"ncdevmem", "server"},
		Ifname: "eth1", Driver: "bnxt_en", Firmware: "230.0.157.0/pkg 230.1.116.0",
		Rings:       map[string]uint64{"rx": 2047, "tx": 2047},
		Channels:    map[string]uint64{"combined": 16},
		HeaderSplit: "on", HDSThresh: &z,
		RSS:         "16 rx rings, 8 entries over queues 0-3 (even), contexts supported",
		IRQAffinity: map[string]string{"eth1-TxRx-0": "0", "eth1-TxRx-1": "1", "irq122": "0-1"},
		Extra: map[string]string{
			"kernel_params":  "mitigations=off iommu=pt",
			"driver_version": "6.18", "bus_info": "0000:08:00.0", "queues": "rx 2 tx 1",
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("capture (-want +got):\n%s", d)
	}
}

func TestCaptureNICErrorsAreUnknown(t *testing.T) {
	proc, sys := fakeTree(t)
	h := host{proc: proc, sys: sys, uname: fakeUname, nic: fakeNIC{err: errors.New("operation not supported by the driver")}}
	got := h.capture("eth1")
	if got.Driver != "" || got.Rings != nil || got.Channels != nil || got.RSS != "" {
		t.Errorf("facts set despite errors: %+v", got)
	}
	for _, w := range []string{"rings: operation not supported", "channels: operation not supported", "rss: operation not supported"} {
		if !strings.Contains(got.Extra["unknown"], w) {
			t.Errorf("unknown = %q, want %q in it", got.Extra["unknown"], w)
		}
	}
}

func TestParseCPUInfoARM(t *testing.T) {
	in := "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n\nprocessor\t: 1\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n"
	model, n := parseCPUInfo([]byte(in), 9)
	if model != "implementer 0x41 part 0xd0c" || n != 2 {
		t.Errorf("got %q, %d", model, n)
	}
	if _, n := parseCPUInfo(nil, 9); n != 9 {
		t.Errorf("empty cpuinfo: n = %d, want the fallback 9", n)
	}
}

func TestDiff(t *testing.T) {
	z, s := uint32(0), uint32(256)
	a := &report.Env{Hostname: "dut1", KernelRelease: "6.18.0", CPUModel: "EPYC", NumCPU: 8, ToolVersion: "v1",
		Cmdline: []string{"ncdevmem", "run", "--json", "before.json"}, Ifname: "eth1", Driver: "bnxt_en",
		Rings: map[string]uint64{"rx": 2047, "tx": 2047}, HeaderSplit: "on", HDSThresh: &z,
		IRQAffinity: map[string]string{"q0": "0", "q1": "1"}}
	b := &report.Env{Hostname: "dut1", KernelRelease: "6.18.0-patched", CPUModel: "EPYC", NumCPU: 8, ToolVersion: "v1",
		Cmdline: []string{"ncdevmem", "run", "--json", "after.json"}, Ifname: "eth1", Driver: "bnxt_en",
		Rings: map[string]uint64{"rx": 1024, "tx": 2047}, HeaderSplit: "on", HDSThresh: &s,
		IRQAffinity: map[string]string{"q0": "0", "q2": "2"}}
	want := []string{
		"kernel_release: 6.18.0 -> 6.18.0-patched",
		"rings.rx: 2047 -> 1024",
		"hds_thresh: 0 -> 256",
		"irq_affinity.q1: 1 -> (none)",
		"irq_affinity.q2: (none) -> 2",
	}
	if d := cmp.Diff(want, Diff(a, b)); d != "" {
		t.Errorf("Diff (-want +got):\n%s", d)
	}
	if d := Diff(a, a); d != nil {
		t.Errorf("Diff(a, a) = %q, want nothing", d)
	}
	if d := Diff(nil, b); len(d) != 1 || !strings.Contains(d[0], "not recorded before") {
		t.Errorf("Diff(nil, b) = %q", d)
	}
	if d := Diff(nil, nil); d != nil {
		t.Errorf("Diff(nil, nil) = %q", d)
	}
}

func TestParseInterrupts(t *testing.T) {
	in := "           CPU0       CPU1       CPU2       CPU3\n" +
		"  13:          0          0          0          0     GICv3  27 Level     arch_timer\n" +
		"  30:          1          0          0          0  IR-PCI-MSIX-0000:08:00.0    0-edge      mlx5_async0@pci:0000:08:00.0\n" +
		"  31:          1          0          0          0  IR-PCI-MSIX-0000:08:00.0    1-edge      mlx5_comp0@pci:0000:08:00.0, other\n" +
		"  32:          0          0          0          0  PCI-MSI 524288-edge\n" +
		"NMI:          0          0          0          0   Non-maskable interrupts\n" +
		" 33: 1\n"
	want := map[string]string{
		"13": "arch_timer",
		"30": "mlx5_async0@pci:0000:08:00.0",
		"31": "mlx5_comp0@pci:0000:08:00.0, other",
	}
	if d := cmp.Diff(want, parseInterrupts([]byte(in))); d != "" {
		t.Errorf("parseInterrupts (-want +got):\n%s", d)
	}
}

func FuzzParseInterrupts(f *testing.F) {
	f.Add([]byte("  CPU0 CPU1\n 30: 1 0 IR-PCI-MSIX 0-edge eth1-TxRx-0\n"))
	f.Add([]byte("processor : 0\nmodel name : x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for irq, name := range parseInterrupts(b) {
			if irq == "" || name == "" {
				t.Fatalf("empty entry %q -> %q", irq, name)
			}
		}
		parseCPUInfo(b, 1)
	})
}
