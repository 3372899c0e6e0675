// SPDX-License-Identifier: MIT

package metrics

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/devmemtcp/ncdevmem/report"
)

// Expect is one --expect gate: Metric Op Value, e.g. gbps >= 180.
type Expect struct {
	Metric string
	Op     string // ">=", "<=", ">", "<", "==" or "!="
	Value  float64
}

// ops in the order the parser tries them, two-character operators first.
var ops = []string{">=", "<=", "==", "!=", ">", "<"}

// ParseExpect parses a gate such as 'gbps>=180' or 'rx.app.idle >= 5%' (a trailing % is allowed
// and ignored: percentages are already 0..100). The metric must be a name Of can produce; the
// error for an unknown one lists the closest names.
func ParseExpect(s string) (Expect, error) {
	pos, op := -1, ""
	for i := 0; i < len(s) && pos < 0; i++ {
		for _, o := range ops {
			if strings.HasPrefix(s[i:], o) {
				pos, op = i, o
				break
			}
		}
	}
	if pos < 0 {
		return Expect{}, fmt.Errorf("expect %q: no comparison (write METRIC OP VALUE, e.g. 'gbps>=180'; OP is one of %s)",
			s, strings.Join(ops, " "))
	}
	name := strings.TrimSpace(s[:pos])
	val := strings.TrimSpace(s[pos+len(op):])
	if name == "" {
		return Expect{}, fmt.Errorf("expect %q: no metric before %s (e.g. 'gbps>=180')", s, op)
	}
	if !Known(name) {
		return Expect{}, fmt.Errorf("expect %q: unknown metric %q (%s)", s, name, suggest(name))
	}
	num := strings.TrimSpace(strings.TrimSuffix(val, "%"))
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return Expect{}, fmt.Errorf("expect %q: value %q is not a finite number (e.g. 'gbps>=180')", s, val)
	}
	return Expect{Metric: name, Op: op, Value: v}, nil
}

// String returns the gate as written canonically: "gbps >= 180".
func (e Expect) String() string {
	return e.Metric + " " + e.Op + " " + Format(e.Value)
}

// Holds reports whether got passes the gate. NaN (not measured) never passes.
func (e Expect) Holds(got float64) bool {
	switch e.Op {
	case ">=":
		return got >= e.Value
	case "<=":
		return got <= e.Value
	case ">":
		return got > e.Value
	case "<":
		return got < e.Value
	case "==":
		return got == e.Value
	case "!=":
		return got != e.Value && !math.IsNaN(got)
	}
	return false
}

// Failure is one run that missed one gate.
type Failure struct {
	Expect Expect
	Run    int     // 1-based position of the run in Result.Runs
	Got    float64 // NaN when the run did not measure the metric
}

// String returns "run 2: gbps = 171.3, want >= 180".
func (f Failure) String() string {
	if math.IsNaN(f.Got) {
		return fmt.Sprintf("run %d: %s not measured, want %s %s", f.Run, f.Expect.Metric, f.Expect.Op, Format(f.Expect.Value))
	}
	return fmt.Sprintf("run %d: %s = %s, want %s %s", f.Run, f.Expect.Metric, Format(f.Got), f.Expect.Op, Format(f.Expect.Value))
}

// Check applies every gate to every measured run of r (warm-up runs are not in r) and returns the
// misses in run order, gates in the order given. A gate on a figure a run did not measure fails
// with Got = NaN. The mean over runs is not gated: one bad run is a failed gate, which is what CI
// wants to see.
func Check(r *report.Result, exps []Expect) []Failure {
	if r == nil {
		return nil
	}
	var out []Failure
	for i := range r.Runs {
		m := Of(&r.Runs[i])
		for _, e := range exps {
			got, ok := m[e.Metric]
			if !ok {
				got = math.NaN()
			}
			if !e.Holds(got) {
				out = append(out, Failure{Expect: e, Run: i + 1, Got: got})
			}
		}
	}
	return out
}

// suggest names the known figures closest to an unknown name.
func suggest(name string) string {
	type cand struct {
		n string
		d int
	}
	var best []cand
	for _, n := range Names() {
		d := distance(name, n)
		best = append(best, cand{n, d})
	}
	// Stable insertion sort keeps table order among equal distances.
	for i := 1; i < len(best); i++ {
		for j := i; j > 0 && best[j].d < best[j-1].d; j-- {
			best[j], best[j-1] = best[j-1], best[j]
		}
	}
	var close []string
	for _, c := range best {
		if len(close) == 4 || c.d > max(3, len(name)/2) {
			break
		}
		close = append(close, c.n)
	}
	if len(close) == 0 {
		return "see the table in `go doc github.com/devmemtcp/ncdevmem/metrics`; e.g. gbps, rx.app.idle, rx.cpu_s_per_gb.total"
	}
	return "did you mean " + strings.Join(close, ", ") + "?"
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
