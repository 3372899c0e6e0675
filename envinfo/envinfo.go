// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package envinfo records the environment a run measured in (kernel, CPU, frequency governor, tool
// version and, for a named interface, driver, firmware, queues, rings, header split, RSS and IRQ
// affinity) and lists what differs between two such records: a changed driver or ring size is the
// usual explanation of a surprising before/after comparison.
//
// Capture never fails: a fact it cannot read is left empty (or, for NIC facts, named in
// Env.Extra["unknown"] with the reason), because a benchmark must not stop over its paperwork.
// It needs no privileges beyond reading /proc and /sys and an unprivileged SIOCETHTOOL
// ETHTOOL_GDRVINFO.
package envinfo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/devmemtcp/ncdevmem/internal/version"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/report"
	"golang.org/x/sys/unix"
)

// nicFacts reads the ethtool state of an interface; package nic in production, a fake in tests. An
// error from any method only marks that fact unknown.
type nicFacts interface {
	// Driver returns ETHTOOL_GDRVINFO.
	Driver(ifname string) (*nic.Driver, error)
	// Rings returns the ring sizes by ethtool name ("rx", "tx", "rx_max", "tx_max"), the
	// tcp-data-split state and hds-thresh when the kernel reports it.
	Rings(ifname string) (rings map[string]uint64, headerSplit string, hdsThresh *uint32, err error)
	// Channels returns the channel counts by ethtool name ("combined", "rx", "combined_max", ...).
	Channels(ifname string) (map[string]uint64, error)
	// RSS returns a one-line summary of the RSS indirection table.
	RSS(ifname string) (string, error)
}

// host is where Capture reads from; tests point it at a fake tree.
type host struct {
	proc, sys string
	uname     func() (unix.Utsname, error)
	nic       nicFacts
	args      []string
}

// Capture records the environment of this host. With ifname non-empty it adds the NIC's facts.
func Capture(ifname string) *report.Env {
	h := host{proc: "/proc", sys: "/sys", uname: uname, nic: systemNIC{}, args: os.Args}
	return h.capture(ifname)
}

func uname() (unix.Utsname, error) {
	var u unix.Utsname
	err := unix.Uname(&u)
	return u, err
}

func (h *host) capture(ifname string) *report.Env {
	e := &report.Env{
		ToolVersion: version.String(),
		Cmdline:     append([]string(nil), h.args...),
		NumCPU:      runtime.NumCPU(),
	}
	if u, err := h.uname(); err == nil {
		e.Hostname = unix.ByteSliceToString(u.Nodename[:])
		e.KernelRelease = unix.ByteSliceToString(u.Release[:])
		e.KernelVersion = unix.ByteSliceToString(u.Version[:])
	}
	if b, err := os.ReadFile(filepath.Join(h.proc, "cpuinfo")); err == nil {
		e.CPUModel, e.NumCPU = parseCPUInfo(b, e.NumCPU)
	}
	e.Governor = h.governor()
	if b, err := os.ReadFile(filepath.Join(h.proc, "cmdline")); err == nil {
		setExtra(e, "kernel_params", perfParams(string(b)))
	}
	if ifname != "" {
		h.captureNIC(e, ifname)
	}
	return e
}

// perfKeys are the kernel parameters that change network and CPU performance. Only these are
// recorded: a whole command line can carry tokens or paths that have no place in a shared result.
var perfKeys = map[string]bool{
	"mitigations": true, "nosmt": true, "isolcpus": true, "nohz_full": true, "rcu_nocbs": true,
	"irqaffinity": true, "threadirqs": true, "preempt": true, "idle": true, "processor.max_cstate": true,
	"intel_idle.max_cstate": true, "intel_pstate": true, "amd_pstate": true, "iommu": true,
	"intel_iommu": true, "amd_iommu": true, "iommu.passthrough": true, "iommu.strict": true,
	"transparent_hugepage": true, "hugepages": true, "hugepagesz": true, "default_hugepagesz": true,
	"skew_tick": true, "nopti": true, "spectre_v2": true, "pti": true,
}

// perfParams keeps the performance-relevant parameters of a kernel command line, in order.
func perfParams(cmdline string) string {
	var keep []string
	for _, f := range strings.Fields(cmdline) {
		if f == "--" {
			break // what follows belongs to init
		}
		k, _, _ := strings.Cut(f, "=")
		if perfKeys[k] {
			keep = append(keep, f)
		}
	}
	return strings.Join(keep, " ")
}

func setExtra(e *report.Env, k, v string) {
	if v == "" {
		return
	}
	if e.Extra == nil {
		e.Extra = map[string]string{}
	}
	e.Extra[k] = v
}

// parseCPUInfo returns the CPU model and the number of processors listed in /proc/cpuinfo, keeping
// fallbackN when none is listed. x86 names the model "model name"; arm64 has no name, only the
// implementer and part numbers, which still tell two machines apart.
func parseCPUInfo(b []byte, fallbackN int) (string, int) {
	var model, impl, part string
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			n++
		case "model name", "Model", "cpu model", "Processor":
			if model == "" {
				model = v
			}
		case "CPU implementer":
			if impl == "" {
				impl = v
			}
		case "CPU part":
			if part == "" {
				part = v
			}
		}
	}
	if model == "" && impl != "" {
		model = "implementer " + impl + " part " + part
	}
	if n == 0 {
		n = fallbackN
	}
	return model, n
}

// governor returns the cpufreq scaling governor, "performance" when all CPUs agree, or each
// governor with its CPUs ("performance (0-3), powersave (4-7)") when they do not; "" without
// cpufreq (most virtual machines).
func (h *host) governor() string {
	paths, _ := filepath.Glob(filepath.Join(h.sys, "devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor"))
	byGov := map[string][]int{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cpu, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(filepath.Dir(filepath.Dir(p))), "cpu"))
		if err != nil {
			continue
		}
		g := strings.TrimSpace(string(b))
		byGov[g] = append(byGov[g], cpu)
	}
	if len(byGov) == 1 {
		for g := range byGov {
			return g
		}
	}
	var parts []string
	for g, cpus := range byGov {
		parts = append(parts, g+" ("+cpuList(cpus)+")")
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// cpuList renders CPU numbers as the kernel's list format: "0-3,8".
func cpuList(cpus []int) string {
	sort.Ints(cpus)
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteString("-" + strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

func (h *host) captureNIC(e *report.Env, ifname string) {
	e.Ifname = ifname
	var unknown []string
	dev := filepath.Join(h.sys, "class/net", ifname)
	// sysfs shows the devices of the namespace it was mounted in, which is not this thread's when
	// a caller switched namespaces with setns (ip netns exec remounts it, setns alone does not);
	// ethtool still answers for the thread's namespace, so go on without the sysfs facts.
	_, sysErr := os.Stat(dev)
	if sysErr != nil {
		unknown = append(unknown, fmt.Sprintf("sysfs %s: %v (queues, IRQ affinity)", dev, errors.Unwrap(sysErr)))
	}
	if di, err := h.nic.Driver(ifname); err == nil {
		e.Driver, e.Firmware = di.Driver, di.Firmware
		setExtra(e, "driver_version", di.Version)
		setExtra(e, "bus_info", di.Bus)
	} else {
		if l, lerr := os.Readlink(filepath.Join(dev, "device/driver")); lerr == nil {
			e.Driver = filepath.Base(l)
		} else if !errors.Is(err, nic.ErrNotSupported) {
			unknown = append(unknown, "driver: "+short(err))
		}
	}
	if sysErr == nil {
		rxq, _ := filepath.Glob(filepath.Join(dev, "queues/rx-*"))
		txq, _ := filepath.Glob(filepath.Join(dev, "queues/tx-*"))
		setExtra(e, "queues", fmt.Sprintf("rx %d tx %d", len(rxq), len(txq)))
	}
	{
		rings, hds, thresh, err := h.nic.Rings(ifname)
		if err != nil {
			unknown = append(unknown, "rings: "+short(err))
		} else {
			e.Rings, e.HeaderSplit, e.HDSThresh = rings, hds, thresh
		}
		if ch, err := h.nic.Channels(ifname); err != nil {
			unknown = append(unknown, "channels: "+short(err))
		} else {
			e.Channels = ch
		}
		if rss, err := h.nic.RSS(ifname); err != nil {
			unknown = append(unknown, "rss: "+short(err))
		} else {
			e.RSS = rss
		}
	}
	e.IRQAffinity = h.irqAffinity(dev)
	if len(unknown) > 0 {
		setExtra(e, "unknown", strings.Join(unknown, "; "))
	}
}

// short keeps an environment note brief: "not supported by the driver" says all a comparison
// needs, where package nic's error goes on to advise on devmem setup.
func short(err error) string {
	if errors.Is(err, nic.ErrNotSupported) {
		return "not supported by the driver"
	}
	return err.Error()
}

// irqAffinity maps each of the device's MSI interrupts, named as /proc/interrupts names them
// (drivers name them after their queue: "mlx5_comp3@pci:0000:08:00.0", "eth1-TxRx-3") or "irqN"
// when unnamed, to the CPUs it is delivered to (effective affinity when the kernel reports it).
func (h *host) irqAffinity(dev string) map[string]string {
	ents, err := os.ReadDir(filepath.Join(dev, "device/msi_irqs"))
	if err != nil || len(ents) == 0 {
		return nil
	}
	names := map[string]string{}
	if b, err := os.ReadFile(filepath.Join(h.proc, "interrupts")); err == nil {
		names = parseInterrupts(b)
	}
	out := map[string]string{}
	for _, ent := range ents {
		irq := ent.Name()
		if _, err := strconv.Atoi(irq); err != nil {
			continue
		}
		var aff []byte
		for _, f := range []string{"effective_affinity_list", "smp_affinity_list"} {
			if aff, err = os.ReadFile(filepath.Join(h.proc, "irq", irq, f)); err == nil && len(bytes.TrimSpace(aff)) > 0 {
				break
			}
		}
		if err != nil {
			continue
		}
		key := names[irq]
		if key == "" {
			key = "irq" + irq
		}
		out[key] = strings.TrimSpace(string(aff))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// parseInterrupts maps IRQ numbers to their action names in /proc/interrupts. A line is
// "IRQ: <one count per CPU> <chip...> <hwirq-type> <actions>", e.g.
// "120: 10 0 IR-PCI-MSIX-0000:08:00.0 1-edge eth1-TxRx-0"; the chip may span several fields and the
// trigger type may stand alone ("GICv3 27 Level arch_timer"), so the name is what follows the
// trigger type, and a line without one has no name.
func parseInterrupts(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	ncpu := -1
	for sc.Scan() {
		line := sc.Text()
		if ncpu < 0 {
			ncpu = len(strings.Fields(line))
			continue
		}
		irq, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		if _, err := strconv.Atoi(irq); err != nil {
			continue
		}
		f := strings.Fields(rest)
		if len(f) <= ncpu {
			continue
		}
		f = f[ncpu:]
		for i, tok := range f {
			l := strings.ToLower(tok)
			if strings.HasSuffix(l, "-edge") || strings.HasSuffix(l, "-level") || l == "edge" || l == "level" {
				if name := strings.Join(f[i+1:], " "); name != "" {
					out[irq] = name
				}
				break
			}
		}
	}
	return out
}
