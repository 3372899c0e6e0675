// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package stats measures what a run costs and does: per-CPU time from /proc/stat over the test
// window (kperf's maths), and the per-socket figures the report shows (TCP_INFO, SO_INCOMING_CPU).
package stats

import (
	"fmt"
	"slices"

	"github.com/devmemtcp/ncdevmem/report"
	"github.com/prometheus/procfs"
)

// CPUTimes is one CPU's cumulative time since boot, in seconds (procfs converts /proc/stat's clock
// ticks at USER_HZ = 100, so the resolution is 10 ms).
type CPUTimes struct {
	// Present is false for a CPU number below the highest one that has no line in /proc/stat
	// (offline); its other fields are zero.
	Present bool
	User    float64 // user + nice (guest time is already inside both)
	System  float64
	Idle    float64
	Iowait  float64
	IRQ     float64
	SoftIRQ float64
	Steal   float64
}

// ReadCPUTimes reads the per-CPU lines of /proc/stat; index i of the result is CPU i.
func ReadCPUTimes() ([]CPUTimes, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, fmt.Errorf("read per-CPU times: %w", err)
	}
	return ReadCPUTimesFS(fs)
}

// ReadCPUTimesFS is ReadCPUTimes on the proc file system fs (a fixture directory in tests).
func ReadCPUTimesFS(fs procfs.FS) ([]CPUTimes, error) {
	st, err := fs.Stat()
	if err != nil {
		return nil, fmt.Errorf("read per-CPU times from /proc/stat: %w", err)
	}
	n := 0
	for cpu := range st.CPU {
		if cpu < 0 {
			return nil, fmt.Errorf("read per-CPU times from /proc/stat: bad CPU number %d", cpu)
		}
		n = max(n, int(cpu)+1)
	}
	out := make([]CPUTimes, n)
	for cpu, c := range st.CPU {
		out[cpu] = CPUTimes{
			Present: true,
			User:    c.User + c.Nice,
			System:  c.System,
			Idle:    c.Idle,
			Iowait:  c.Iowait,
			IRQ:     c.IRQ,
			SoftIRQ: c.SoftIRQ,
			Steal:   c.Steal,
		}
	}
	return out, nil
}

// CPUUsage splits each CPU named in roles (CPU number -> "net", "app" or "net+app") over the window
// between two samples, kperf's way: every field's delta as a percentage of the sum of the six
// deltas usr(user+nice), sys, idle, iow, irq and sirq. Steal is not part of that sum (kperf ignores
// it); it is reported as a percentage of the same sum. The result is sorted by CPU.
//
// A counter that went backwards (a CPU that went offline and came back restarts its counters)
// counts as zero rather than as a huge wrapped delta. A CPU missing from either sample, or with no
// ticks at all in the window, is left out: there is nothing true to say about it.
func CPUUsage(before, after []CPUTimes, roles map[int]string) []report.CPU {
	cpus := make([]int, 0, len(roles))
	for cpu := range roles {
		cpus = append(cpus, cpu)
	}
	slices.Sort(cpus)
	out := make([]report.CPU, 0, len(cpus))
	for _, cpu := range cpus {
		if cpu < 0 || cpu >= len(before) || cpu >= len(after) || !before[cpu].Present || !after[cpu].Present {
			continue
		}
		b, a := &before[cpu], &after[cpu]
		usr := delta(b.User, a.User)
		sys := delta(b.System, a.System)
		idle := delta(b.Idle, a.Idle)
		iow := delta(b.Iowait, a.Iowait)
		irq := delta(b.IRQ, a.IRQ)
		sirq := delta(b.SoftIRQ, a.SoftIRQ)
		total := usr + sys + idle + iow + irq + sirq
		if total <= 0 {
			continue
		}
		pct := func(v float64) float64 { return v * 100 / total }
		out = append(out, report.CPU{
			CPU:   cpu,
			Role:  roles[cpu],
			Usr:   pct(usr),
			Sys:   pct(sys),
			Idle:  pct(idle),
			Iow:   pct(iow),
			Irq:   pct(irq),
			Sirq:  pct(sirq),
			Steal: pct(delta(b.Steal, a.Steal)),
		})
	}
	return out
}

// delta is after-before, or 0 when the counter went backwards.
func delta(before, after float64) float64 {
	if after < before {
		return 0
	}
	return after - before
}

// Roles names the CPUs a side's flows ran on, for CPUUsage: each flow's NetCPU (where its softirq
// ran) is "net", its AppCPU (where its worker was pinned) is "app", and a CPU that is both is
// "net+app". Unknown CPUs (-1) are skipped.
func Roles(flows []report.Flow) map[int]string {
	roles := make(map[int]string)
	mark := func(cpu int, role string) {
		if cpu < 0 {
			return
		}
		switch r, ok := roles[cpu]; {
		case !ok:
			roles[cpu] = role
		case r != role:
			roles[cpu] = "net+app"
		}
	}
	for i := range flows {
		mark(flows[i].NetCPU, "net")
		mark(flows[i].AppCPU, "app")
	}
	return roles
}
