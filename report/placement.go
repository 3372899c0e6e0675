// SPDX-License-Identifier: MIT

package report

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
)

// PlacementWarnings lists, for a run whose two sides shared a host, every flow whose source
// worker, target worker and data softirq (the target's SO_INCOMING_CPU) were seen on one CPU: the
// figures then measure one CPU doing all the work, not the network path (all of the window when
// each was seen on that CPU only; part of it when they moved between CPUs). Between two hosts CPU
// numbers name different CPUs, so there is nothing to compare.
func PlacementWarnings(run *Run) []string {
	if !run.SharedHost {
		return nil
	}
	var out []string
	for _, sf := range run.Source.Flows {
		tf := flowByID(run.Target.Flows, sf.ID)
		if tf == nil {
			continue
		}
		var common []int
		for _, c := range sf.ThreadCPUs {
			if slices.Contains(tf.ThreadCPUs, c) && slices.Contains(tf.SoftirqCPUs, c) {
				common = append(common, c)
			}
		}
		switch {
		case len(common) == 0:
		case len(sf.ThreadCPUs) == 1 && len(tf.ThreadCPUs) == 1 && len(tf.SoftirqCPUs) == 1:
			out = append(out, fmt.Sprintf("flow %d: the source app, the target app and the data softirq all ran on CPU %s, so one CPU did all the work (pin the ends apart with --cpu-src/--cpu-dst)", sf.ID, cpuList(common)))
		default:
			// Threads that moved were each seen on several CPUs: they shared one for part of the
			// window at most, not all of it.
			out = append(out, fmt.Sprintf("flow %d: the source app, the target app and the data softirq were each seen on CPU %s, so at times one CPU did the work of all three (pin the ends apart with --cpu-src/--cpu-dst, or drop --no-pin)", sf.ID, cpuList(common)))
		}
	}
	return out
}

func flowByID(fs []Flow, id int) *Flow {
	for i := range fs {
		if fs[i].ID == id {
			return &fs[i]
		}
	}
	return nil
}

// cpuList writes CPUs as "0,2", "?" when none are known.
func cpuList(l []int) string {
	if len(l) == 0 {
		return "?"
	}
	var b []byte
	for i, c := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(c), 10)
	}
	return string(b)
}

// writePlacementText says where every flow's threads and softirqs ran, and the run's warnings.
func writePlacementText(b *bytes.Buffer, run *Run) {
	// Results written before placement was recorded have nothing to show.
	known := len(run.Warnings) > 0
	for _, side := range []*Side{&run.Source, &run.Target} {
		for i := range side.Flows {
			known = known || len(side.Flows[i].ThreadCPUs) > 0 || len(side.Flows[i].SoftirqCPUs) > 0
		}
	}
	if !known {
		return
	}
	if run.SharedHost {
		b.WriteString("== Placement (source and target share one host)\n")
	} else {
		b.WriteString("== Placement (CPU numbers are per host)\n")
	}
	thread := func(f *Flow) string {
		s := cpuList(f.ThreadCPUs)
		if f.AppCPU >= 0 {
			return s + " (pinned to " + strconv.Itoa(f.AppCPU) + ")"
		}
		return s + " (unpinned)"
	}
	for i := range run.Source.Flows {
		sf := &run.Source.Flows[i]
		fmt.Fprintf(b, "  flow %d: source thread CPU %s, ack softirq CPU %s", sf.ID, thread(sf), cpuList(sf.SoftirqCPUs))
		if tf := flowByID(run.Target.Flows, sf.ID); tf != nil {
			fmt.Fprintf(b, "; target thread CPU %s, data softirq CPU %s", thread(tf), cpuList(tf.SoftirqCPUs))
		}
		b.WriteByte('\n')
	}
	for _, w := range run.Warnings {
		b.WriteString("  warning: " + w + "\n")
	}
}
