// SPDX-License-Identifier: MIT

package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// WriteText writes r in kperf's shape (client.c dump_result), so the habits and parsers built on
// kperf output keep working: a "== Source HOST" and a "== Target HOST" section per run, one
// "  Tx  98.100 Gbps (735764807680 bytes in 60001149 usec)" line per flow (unlike kperf, a space
// always follows Tx/Rx, also at 100 Gbps and above), a total line when a side has several flows in
// one direction, the TCP_INFO header and one row per flow, and
// "  net CPU  2: usr: 0.00% sys: 0.01% idle:24.51% iow: 0.00% irq: 1.67% sirq:73.79%" lines for
// the net and app CPUs. Devmem counters and MSG_ZEROCOPY completions follow when present. With
// several runs each run gets its own block and a summary over the runs closes the report.
func WriteText(w io.Writer, r *Result) error {
	if len(r.Runs) == 0 {
		return errors.New("write text report: the result holds no runs")
	}
	var b bytes.Buffer
	if len(r.Runs) == 1 {
		writeRunText(&b, &r.Runs[0])
	} else {
		for i := range r.Runs {
			run := &r.Runs[i]
			fmt.Fprintf(&b, "=== Run %d/%d (%.3f s", i+1, len(r.Runs), run.Duration)
			if !run.Start.IsZero() {
				fmt.Fprintf(&b, ", started %s", run.Start.UTC().Format("2006-01-02T15:04:05.000Z"))
			}
			b.WriteString(")\n")
			writeRunText(&b, run)
		}
		writeSummaryText(&b, r)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write text report: %w", err)
	}
	return nil
}

func writeRunText(b *bytes.Buffer, run *Run) {
	writeSideText(b, "Source", &run.Source)
	writeSideText(b, "Target", &run.Target)
	writePlacementText(b, run)
}

// dirLabel is kperf's "Tx"/"Rx".
func dirLabel(dir string) string {
	switch dir {
	case "tx":
		return "Tx"
	case "rx":
		return "Rx"
	}
	return dir
}

func writeSideText(b *bytes.Buffer, title string, s *Side) {
	b.WriteString("== " + title)
	if s.Host != "" {
		b.WriteString(" " + s.Host)
	}
	b.WriteByte('\n')

	// One line per flow, then a total per direction that has several flows. The total line reads
	// "Tx total ..." so a kperf parser that sums the per-flow "Tx <number>" lines does not count it.
	for i := range s.Flows {
		f := &s.Flows[i]
		fmt.Fprintf(b, "  %s %7.3f Gbps (%d bytes in %d usec)\n", dirLabel(f.Dir), Gbps(f.Bytes, f.USec), f.Bytes, f.USec)
	}
	for _, dir := range []string{"tx", "rx"} {
		var bytes, usec uint64
		n := 0
		for i := range s.Flows {
			if f := &s.Flows[i]; f.Dir == dir {
				bytes += f.Bytes
				usec = max(usec, f.USec)
				n++
			}
		}
		if n > 1 {
			fmt.Fprintf(b, "  %s total %.3f Gbps (%d bytes in %d usec, %d flows)\n", dirLabel(dir), Gbps(bytes, usec), bytes, usec, n)
		}
	}

	// kperf's TCP_INFO header and row widths, plus the delivery rate.
	header := false
	for i := range s.Flows {
		t := s.Flows[i].TCP
		if t == nil {
			continue
		}
		if !header {
			b.WriteString("  TCP retrans reord rtt rttvar d_ce snd_wnd cwnd dlv_gbps\n")
			header = true
		}
		// kperf's column widths, but a space before every value is kept even when a value outgrows its
		// column (kperf prints "    022463488" for d_ce 0 and snd_wnd 22463488).
		fmt.Fprintf(b, "%13d %5d %3d %6d %4d %7d %4d %8.3f\n", t.Retrans, t.Reord, t.RTTus, t.RTTVarUs, t.DeliveredCE,
			t.SndWnd, t.Cwnd, float64(t.DeliveryRateB)*8/1e9)
	}

	var zc ZC
	hasZC := false
	for i := range s.Flows {
		if z := s.Flows[i].ZC; z != nil {
			hasZC = true
			zc.Sends += z.Sends
			zc.Completions += z.Completions
			zc.Copied += z.Copied
		}
	}
	if hasZC {
		fmt.Fprintf(b, "  zerocopy: %d sends, %d completions, %d copied (%.2f%%)\n", zc.Sends, zc.Completions, zc.Copied,
			pct(zc.Copied, zc.Completions))
	}

	// Net CPUs first, then app CPUs, each sorted by CPU; a CPU that does both appears in both.
	cpus := slices.Clone(s.CPUs)
	slices.SortStableFunc(cpus, func(a, b CPU) int { return a.CPU - b.CPU })
	for _, role := range []string{"net", "app"} {
		for _, c := range cpus {
			if HasRole(c.Role, role) {
				writeCPULine(b, role, &c)
			}
		}
	}
	for _, c := range cpus {
		if !HasRole(c.Role, "net") && !HasRole(c.Role, "app") {
			writeCPULine(b, c.Role, &c)
		}
	}

	if d := s.Devmem; d != nil {
		writeDevmemText(b, d)
	}
}

func writeCPULine(b *bytes.Buffer, role string, c *CPU) {
	prefix := ""
	if role != "" {
		prefix = role + " "
	}
	fmt.Fprintf(b, "  %sCPU%3d: usr:%5.2f%% sys:%5.2f%% idle:%5.2f%% iow:%5.2f%% irq:%5.2f%% sirq:%5.2f%%", prefix, c.CPU,
		c.Usr, c.Sys, c.Idle, c.Iow, c.Irq, c.Sirq)
	// Steal is appended only when there was some, so hosts without a hypervisor print kperf's line.
	if c.Steal >= 0.005 {
		fmt.Fprintf(b, " steal:%5.2f%%", c.Steal)
	}
	b.WriteByte('\n')
}

func pct(part, whole uint64) float64 {
	if whole == 0 {
		return 0
	}
	return float64(part) * 100 / float64(whole)
}

func writeDevmemText(b *bytes.Buffer, d *Devmem) {
	if z := d.Zcrx; z != nil {
		writeZcrxText(b, z)
		writeCounters(b, "qstats", d.Qstats)
		writeCounters(b, "page-pool", d.PagePool)
		return
	}
	fmt.Fprintf(b, "  devmem: %d bytes dmabuf, %d bytes linear (%.2f%%), %d frags, %d page-aligned (%.2f%%)\n",
		d.DmabufBytes, d.LinearBytes, pct(d.LinearBytes, d.DmabufBytes+d.LinearBytes), d.Frags, d.PageAlignedFrags,
		pct(d.PageAlignedFrags, d.Frags))
	avg := 0.0
	if d.DontneedCalls > 0 {
		avg = float64(d.Tokens) / float64(d.DontneedCalls)
	}
	fmt.Fprintf(b, "  devmem: %d tokens, %d DONTNEED calls (avg batch %.1f), %d short returns\n",
		d.Tokens, d.DontneedCalls, avg, d.ShortDontneed)
	if len(d.FragHist) > 0 {
		b.WriteString("  devmem frag sizes:")
		for _, h := range d.FragHist {
			if h.Le == math.MaxUint64 {
				fmt.Fprintf(b, " <=+Inf:%d", h.Count)
			} else {
				fmt.Fprintf(b, " <=%d:%d", h.Le, h.Count)
			}
		}
		b.WriteByte('\n')
	}
	writeCounters(b, "qstats", d.Qstats)
	writeCounters(b, "page-pool", d.PagePool)
}

func writeZcrxText(b *bytes.Buffer, z *Zcrx) {
	fmt.Fprintf(b, "  zcrx: queue %d, %s area of %d bytes, %d-byte buffers\n", z.Queue, z.Area, z.AreaBytes, z.BufLen)
	avg := 0.0
	if z.RefillBatches > 0 {
		avg = float64(z.RefillEntries) / float64(z.RefillBatches)
	}
	fmt.Fprintf(b, "  zcrx: %d bytes in %d completions (avg %.0f bytes), %d refill batches (avg %.1f buffers), %d refill stalls, %d re-arms\n",
		z.Bytes, z.Completions, z.AvgCompletion, z.RefillBatches, avg, z.RefillStalls, z.Rearms)
	if z.CopyCounted {
		fmt.Fprintf(b, "  zcrx: copy fallbacks: %d bytes (%.2f%%) in %d copied frags\n", z.CopyBytes, pct(z.CopyBytes, z.Bytes), z.CopyCount)
	} else {
		b.WriteString("  zcrx: copy fallbacks: not counted by this kernel (no zcrx_stats: absent from 6.18, present in 7.3)\n")
	}
}

// writeCounters prints a counter map on one line, sorted by name so the output is stable.
func writeCounters(b *bytes.Buffer, title string, m map[string]uint64) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	fmt.Fprintf(b, "  %s: %s\n", title, strings.Join(parts, ", "))
}

// summaryRow is one figure summarised over the runs.
type summaryRow struct {
	name string
	vals []float64
}

// summaryRows collects the figures the multi-run summary shows: total throughput per direction and
// the mean idle of each side's net and app CPUs.
func summaryRows(r *Result) []summaryRow {
	rows := []summaryRow{{name: "Tx Gbps"}, {name: "Rx Gbps"}}
	for i := range r.Runs {
		run := &r.Runs[i]
		if _, _, n := run.dirTotal("tx"); n > 0 {
			rows[0].vals = append(rows[0].vals, run.TxGbps())
		}
		if _, _, n := run.dirTotal("rx"); n > 0 {
			rows[1].vals = append(rows[1].vals, run.RxGbps())
		}
	}
	for _, side := range []string{"source", "target"} {
		for _, role := range []string{"net", "app"} {
			row := summaryRow{name: side + " " + role + " idle%"}
			for i := range r.Runs {
				s := &r.Runs[i].Source
				if side == "target" {
					s = &r.Runs[i].Target
				}
				if avg, ok := s.RoleAvg(role); ok {
					row.vals = append(row.vals, avg.Idle)
				}
			}
			rows = append(rows, row)
		}
	}
	out := rows[:0]
	for _, row := range rows {
		if len(row.vals) > 0 {
			out = append(out, row)
		}
	}
	return out
}

func writeSummaryText(b *bytes.Buffer, r *Result) {
	fmt.Fprintf(b, "== Summary over %d runs\n", len(r.Runs))
	fmt.Fprintf(b, "  %-18s %9s %9s %9s %9s %3s\n", "", "mean", "stddev", "min", "max", "n")
	for _, row := range summaryRows(r) {
		s := Summarize(row.vals)
		fmt.Fprintf(b, "  %-18s %9.3f %9.3f %9.3f %9.3f %3d\n", row.name, s.Mean, s.Stddev, s.Min, s.Max, s.N)
	}
}
