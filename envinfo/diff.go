// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package envinfo

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/devmemtcp/ncdevmem/report"
)

// Diff lists, one human line each, the facts that differ between a (before) and b (after), in a
// fixed order: kernel, CPU, tool, NIC. The command lines are not compared: they always differ by
// at least their output file names. A nil side yields one line saying it was not recorded.
func Diff(a, b *report.Env) []string {
	switch {
	case a == nil && b == nil:
		return nil
	case a == nil:
		return []string{"environment: not recorded before, recorded after"}
	case b == nil:
		return []string{"environment: recorded before, not recorded after"}
	}
	var out []string
	str := func(name, x, y string) {
		if x != y {
			out = append(out, fmt.Sprintf("%s: %s -> %s", name, show(x), show(y)))
		}
	}
	str("hostname", a.Hostname, b.Hostname)
	str("kernel_release", a.KernelRelease, b.KernelRelease)
	str("kernel_version", a.KernelVersion, b.KernelVersion)
	str("cpu_model", a.CPUModel, b.CPUModel)
	str("num_cpu", strconv.Itoa(a.NumCPU), strconv.Itoa(b.NumCPU))
	str("governor", a.Governor, b.Governor)
	str("tool_version", a.ToolVersion, b.ToolVersion)
	str("ifname", a.Ifname, b.Ifname)
	str("driver", a.Driver, b.Driver)
	str("firmware", a.Firmware, b.Firmware)
	out = append(out, diffMap("rings", num(a.Rings), num(b.Rings))...)
	out = append(out, diffMap("channels", num(a.Channels), num(b.Channels))...)
	str("header_split", a.HeaderSplit, b.HeaderSplit)
	str("hds_thresh", u32(a.HDSThresh), u32(b.HDSThresh))
	str("rss", a.RSS, b.RSS)
	out = append(out, diffMap("irq_affinity", a.IRQAffinity, b.IRQAffinity)...)
	out = append(out, diffMap("extra", a.Extra, b.Extra)...)
	return out
}

func show(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func u32(p *uint32) string {
	if p == nil {
		return ""
	}
	return strconv.FormatUint(uint64(*p), 10)
}

func num(m map[string]uint64) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = strconv.FormatUint(v, 10)
	}
	return out
}

// diffMap compares two maps key by key, sorted, as "name.key: x -> y".
func diffMap(name string, a, b map[string]string) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out []string
	for _, k := range sorted {
		x, y := a[k], b[k]
		if x != y {
			out = append(out, fmt.Sprintf("%s.%s: %s -> %s", name, k, show(x), show(y)))
		}
	}
	return out
}
