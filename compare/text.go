// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package compare

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/devmemtcp/ncdevmem/metrics"
)

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteText writes the report for people, benchstat-like: environment and configuration
// differences first, then warnings, then one table row per figure. Rows whose every value is zero
// (CPU iowait on a quiet host, devmem counters of a host-memory run) are left out and counted.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, d := range r.Differences {
		fmt.Fprintf(&b, "differences %s -> %s:\n", d.From, d.To)
		for _, l := range d.Lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	if len(r.Differences) == 0 {
		b.WriteString("no differences in environment or configuration\n")
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", wn)
	}
	fmt.Fprintf(&b, "\nmedian of runs, ±%.0f%% confidence interval of the median, sd standard deviation; deltas against %s, Mann-Whitney U test, ~ no significant change (p > %v)\n",
		r.Confidence*100, r.Inputs[0].Name, r.Alpha)

	var main, matched []Row
	for _, row := range r.Rows {
		if row.Matched {
			matched = append(matched, row)
		} else {
			main = append(main, row)
		}
	}
	zero := 0
	b.WriteByte('\n')
	zero += r.table(&b, main)
	if m := r.Matched; m != nil {
		var counts []string
		for i, runs := range m.Runs {
			counts = append(counts, fmt.Sprintf("%s %d of %d runs", r.Inputs[i].Name, len(runs), r.Inputs[i].Runs))
		}
		fmt.Fprintf(&b, "\nCPU over throughput-matched runs (gbps within %s%%: %s-%s Gbps): %s\n\n",
			metrics.Format(m.Tolerance*100), metrics.Format(m.LoGbps), metrics.Format(m.HiGbps), strings.Join(counts, ", "))
		zero += r.table(&b, matched)
	}
	if zero > 0 {
		fmt.Fprintf(&b, "\n%d figure(s) zero in every run not shown (see --json)\n", zero)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// table renders rows with the first column left-aligned and the rest right-aligned, and returns
// how many all-zero rows it skipped.
func (r *Report) table(b *strings.Builder, rows []Row) int {
	head := []string{"metric", "unit"}
	for i, in := range r.Inputs {
		head = append(head, in.Name, "±", "sd")
		if i > 0 {
			head = append(head, "delta", "p")
		}
	}
	cells := [][]string{head}
	skipped := 0
	for _, row := range rows {
		if allZero(row) {
			skipped++
			continue
		}
		line := []string{row.Metric, row.Unit}
		for i, st := range row.Stats {
			if st == nil {
				line = append(line, "-", "", "")
			} else {
				line = append(line, human(st.Median), "±"+st.CIPct, human(st.Stddev))
			}
			if i == 0 {
				continue
			}
			d := row.Deltas[i-1]
			if d == nil {
				line = append(line, "-", "")
				continue
			}
			p := fmt.Sprintf("p=%.3f n=%d", d.P, d.N1)
			if d.N1 != d.N2 {
				p = fmt.Sprintf("p=%.3f n=%d+%d", d.P, d.N1, d.N2)
			}
			line = append(line, d.Text, p)
		}
		cells = append(cells, line)
	}
	widths := make([]int, len(head))
	for _, l := range cells {
		for j, c := range l {
			widths[j] = max(widths[j], utf8.RuneCountInString(c))
		}
	}
	for _, l := range cells {
		var sb strings.Builder
		for j, c := range l {
			pad := strings.Repeat(" ", widths[j]-utf8.RuneCountInString(c))
			if j > 0 {
				sb.WriteString("  ")
			}
			if j <= 1 {
				sb.WriteString(c + pad)
			} else {
				sb.WriteString(pad + c)
			}
		}
		b.WriteString(strings.TrimRight(sb.String(), " ") + "\n")
	}
	return skipped
}

func allZero(row Row) bool {
	for _, st := range row.Stats {
		if st == nil {
			continue
		}
		for _, v := range st.Values {
			if v != 0 {
				return false
			}
		}
	}
	return true
}

// human renders a value for the table: as metrics.Format below a million, with an SI prefix and
// four significant digits above (byte and frag counters of long runs), so columns stay readable.
func human(v float64) string {
	a := math.Abs(v)
	for _, p := range []struct {
		f float64
		s string
	}{{1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}} {
		if a >= p.f {
			return strconv.FormatFloat(v/p.f, 'g', 4, 64) + p.s
		}
	}
	return metrics.Format(v)
}
