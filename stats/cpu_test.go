// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package stats

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/devmemtcp/ncdevmem/report"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/procfs"
)

// sample reads a recorded /proc/stat from testdata/<name>/stat.
func sample(t *testing.T, name string) []CPUTimes {
	t.Helper()
	fs, err := procfs.NewFS(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := ReadCPUTimesFS(fs)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

var approx = cmpopts.EquateApprox(0, 1e-9)

func TestReadCPUTimes(t *testing.T) {
	got := sample(t, "before")
	want := []CPUTimes{
		{Present: true, User: 105.03, System: 18.54, Idle: 397.00, Iowait: 1.40, SoftIRQ: 0.51, Steal: 3.60},
		{Present: true, User: 98.30, System: 18.65, Idle: 402.73, Iowait: 1.66, SoftIRQ: 0.73, Steal: 3.99},
	}
	if d := cmp.Diff(want, got, approx); d != "" {
		t.Fatalf("ReadCPUTimes (-want +got):\n%s", d)
	}
}

func TestReadCPUTimesLive(t *testing.T) {
	ct, err := ReadCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if len(ct) == 0 {
		t.Fatal("no CPUs in /proc/stat")
	}
	if !ct[0].Present || ct[0].Idle+ct[0].User+ct[0].System <= 0 {
		t.Fatalf("CPU 0 has no time: %+v", ct[0])
	}
}

func TestCPUUsage(t *testing.T) {
	before, after := sample(t, "before"), sample(t, "after")
	// cpu0: +10 user +5 nice +20 sys +40 idle +5 iow +5 irq +15 sirq (+3 steal) = 100 ticks.
	// cpu1: +2 sys +48 idle +3 irq +147 sirq = 200 ticks.
	got := CPUUsage(before, after, map[int]string{1: "net", 0: "app"})
	want := []report.CPU{
		{CPU: 0, Role: "app", Usr: 15, Sys: 20, Idle: 40, Iow: 5, Irq: 5, Sirq: 15, Steal: 3},
		{CPU: 1, Role: "net", Usr: 0, Sys: 1, Idle: 24, Iow: 0, Irq: 1.5, Sirq: 73.5},
	}
	if d := cmp.Diff(want, got, approx); d != "" {
		t.Fatalf("CPUUsage (-want +got):\n%s", d)
	}
	for _, c := range got {
		if s := c.Usr + c.Sys + c.Idle + c.Iow + c.Irq + c.Sirq; math.Abs(s-100) > 1e-9 {
			t.Errorf("CPU %d: the six fields add up to %v, want 100", c.CPU, s)
		}
	}
}

func TestCPUUsageOffline(t *testing.T) {
	before, after := sample(t, "before"), sample(t, "offline")
	if len(after) != 3 || after[1].Present || !after[2].Present {
		t.Fatalf("offline sample: CPU 1 should be absent and CPU 2 present: %+v", after)
	}
	// CPU 1 went offline, CPU 2 was not there before, CPU 7 never existed: only CPU 0 is reported.
	got := CPUUsage(before, after, map[int]string{0: "net+app", 1: "net", 2: "app", 7: "app", -1: "app"})
	if len(got) != 1 || got[0].CPU != 0 || got[0].Role != "net+app" {
		t.Fatalf("CPUUsage = %+v, want only CPU 0", got)
	}
}

func TestCPUUsageBackwards(t *testing.T) {
	before, after := sample(t, "before"), sample(t, "backwards")
	// cpu0's idle went from 39700 to 39000 ticks: that delta is 0, not -700 and not a wrap, so the
	// CPU looks fully busy over its 60 remaining ticks (10+5 usr, 20 sys, 5 iow, 5 irq, 15 sirq).
	got := CPUUsage(before, after, map[int]string{0: "net"})
	want := []report.CPU{{CPU: 0, Role: "net", Usr: 25, Sys: 100.0 / 3, Idle: 0, Iow: 25.0 / 3, Irq: 25.0 / 3, Sirq: 25, Steal: 5}}
	if d := cmp.Diff(want, got, approx); d != "" {
		t.Fatalf("CPUUsage (-want +got):\n%s", d)
	}
	// The same sample twice: no ticks, nothing to report.
	if got := CPUUsage(before, before, map[int]string{0: "net"}); len(got) != 0 {
		t.Fatalf("CPUUsage over an empty window = %+v, want nothing", got)
	}
}

func TestRoles(t *testing.T) {
	got := Roles([]report.Flow{
		{NetCPU: 2, AppCPU: 3},
		{NetCPU: 3, AppCPU: 5},  // 3 is an app CPU of flow 0 and the net CPU of flow 1
		{NetCPU: 2, AppCPU: -1}, // unpinned
		{NetCPU: -1, AppCPU: 7}, // SO_INCOMING_CPU unknown
	})
	want := map[int]string{2: "net", 3: "net+app", 5: "app", 7: "app"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Roles (-want +got):\n%s", d)
	}
}
