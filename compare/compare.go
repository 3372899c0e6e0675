// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package compare summarises repeated runs of several ncdevmem results and compares them: for every
// figure of package metrics the median, spread and 95% confidence interval of each input, and the
// change against the first input with a Mann–Whitney U-test p-value (golang.org/x/perf/benchmath,
// the statistics behind benchstat). It also lists environment and configuration differences,
// matches runs by throughput so CPU is compared at equal work, and writes text, JSON, Go benchmark
// format and an SVG plot.
package compare

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/devmemtcp/ncdevmem/envinfo"
	"github.com/devmemtcp/ncdevmem/metrics"
	"github.com/devmemtcp/ncdevmem/report"
	"golang.org/x/perf/benchmath"
)

// MinRuns is the number of runs per input below which Compare warns: the median's 95% confidence
// interval needs 6 runs, and with fewer the U-test finds only large, clean changes (below 4 runs
// per side, none at all).
const MinRuns = 6

// Options tune Compare. The zero value compares all runs at 95% confidence.
type Options struct {
	// Matched restricts CPU figures to runs whose throughput ("gbps") lies within Tolerance of each
	// other, taken from every input.
	Matched bool
	// Tolerance is the relative width of the throughput window for Matched: 0.02 means the fastest
	// qualifying run is at most 2% faster than the slowest. Zero means DefaultTolerance.
	Tolerance float64
	// Confidence of the intervals, in (0,1); zero means 0.95.
	Confidence float64
}

// DefaultTolerance is the throughput window of --matched when none is given.
const DefaultTolerance = 0.02

// Report is the outcome of Compare; its JSON form is what `compare --json` prints.
type Report struct {
	Inputs     []InputInfo `json:"inputs"`
	Confidence float64     `json:"confidence"`
	Alpha      float64     `json:"alpha"` // p below which a change is significant
	// Differences lists, per input after the first, what differs from the first in environment
	// and configuration.
	Differences []Difference `json:"differences,omitempty"`
	Warnings    []string     `json:"warnings,omitempty"`
	Matched     *Matched     `json:"matched,omitempty"`
	Rows        []Row        `json:"rows"`
}

// InputInfo names one input.
type InputInfo struct {
	Name   string `json:"name"`
	Runs   int    `json:"runs"`
	Kernel string `json:"kernel,omitempty"` // target host's kernel release, when recorded
}

// Difference lists what differs between input From (the first) and input To.
type Difference struct {
	From  string   `json:"from"`
	To    string   `json:"to"`
	Lines []string `json:"lines"`
}

// Matched describes the throughput window of --matched.
type Matched struct {
	Tolerance float64 `json:"tolerance"`
	LoGbps    float64 `json:"lo_gbps"`
	HiGbps    float64 `json:"hi_gbps"`
	// Runs holds, per input, the 1-based positions of the runs that qualified.
	Runs [][]int `json:"runs"`
}

// Row is one figure across all inputs.
type Row struct {
	Metric string `json:"metric"`
	Unit   string `json:"unit"`
	// Matched is set when the row uses only the throughput-matched runs.
	Matched bool `json:"matched,omitempty"`
	// Stats holds one entry per input, nil where the input never measured the figure.
	Stats []*Stat `json:"stats"`
	// Deltas[i] compares input i+1 with input 0; nil where either side has no values.
	Deltas []*Delta `json:"deltas"`
}

// Stat summarises one figure over one input's runs.
type Stat struct {
	N      int       `json:"n"`
	Values []float64 `json:"values"` // in run order
	Median float64   `json:"median"`
	// Lo and Hi bound the confidence interval of the median; absent (unbounded) with too few runs.
	Lo     *float64 `json:"ci_lo,omitempty"`
	Hi     *float64 `json:"ci_hi,omitempty"`
	CIPct  string   `json:"ci_pct"` // half-width as a percentage of the median, "∞" or "?" as benchstat prints
	Mean   float64  `json:"mean"`
	Stddev float64  `json:"stddev"` // sample standard deviation, 0 for one run
	Min    float64  `json:"min"`
	Max    float64  `json:"max"`
}

// Delta is the change of one figure from input 0 to another input.
type Delta struct {
	// Pct is the change of the median in percent, absent when the first median is 0.
	Pct         *float64 `json:"pct,omitempty"`
	P           float64  `json:"p"` // Mann–Whitney U-test p-value
	N1          int      `json:"n1"`
	N2          int      `json:"n2"`
	Significant bool     `json:"significant"`
	Text        string   `json:"text"` // "+5.20%", "~" (not significant), "?" (from zero)
	// Better says whether a significant change is an improvement ("yes"/"no"), "" when the figure
	// has no good direction or the change is not significant.
	Better string `json:"better,omitempty"`
}

// Compare summarises every figure of every input and compares each input with the first. It needs
// at least two inputs. With opt.Matched it fails when no throughput window of opt.Tolerance holds a
// run of every input.
func Compare(in []*Input, opt Options) (*Report, error) {
	if len(in) < 2 {
		return nil, fmt.Errorf("compare needs at least two results (before and after), got %d", len(in))
	}
	if opt.Confidence == 0 {
		opt.Confidence = 0.95
	}
	if opt.Confidence <= 0 || opt.Confidence >= 1 {
		return nil, fmt.Errorf("confidence %v: want a level between 0 and 1, e.g. 0.95", opt.Confidence)
	}
	if opt.Tolerance == 0 {
		opt.Tolerance = DefaultTolerance
	}
	if opt.Tolerance < 0 || math.IsNaN(opt.Tolerance) || math.IsInf(opt.Tolerance, 0) {
		return nil, fmt.Errorf("tolerance %v: want a positive fraction such as 0.02 (2%%)", opt.Tolerance)
	}
	rep := &Report{Confidence: opt.Confidence, Alpha: benchmath.DefaultThresholds.CompareAlpha}

	// figs[i][k] are the figures of run k of input i.
	figs := make([][]map[string]float64, len(in))
	names := map[string]bool{}
	var few []string
	for i, inp := range in {
		info := InputInfo{Name: inp.Name, Runs: len(inp.Result.Runs)}
		if e := inp.Result.Env["target"]; e != nil {
			info.Kernel = e.KernelRelease
		}
		rep.Inputs = append(rep.Inputs, info)
		for k := range inp.Result.Runs {
			m := metrics.Of(&inp.Result.Runs[k])
			figs[i] = append(figs[i], m)
			for n := range m {
				names[n] = true
			}
		}
		if len(inp.Result.Runs) < MinRuns {
			few = append(few, fmt.Sprintf("%s has %d", inp.Name, len(inp.Result.Runs)))
		}
	}
	if len(few) > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s run(s): at least %d runs per input are needed for a confident answer (ncdevmem run --runs %d)",
			strings.Join(few, ", "), MinRuns, MinRuns))
	}
	for i := 1; i < len(in); i++ {
		lines := differences(in[0].Result, in[i].Result)
		if len(lines) > 0 {
			rep.Differences = append(rep.Differences, Difference{From: in[0].Name, To: in[i].Name, Lines: lines})
		}
	}

	all := make([][]int, len(in))
	for i := range in {
		for k := range figs[i] {
			all[i] = append(all[i], k)
		}
	}
	matched := all
	if opt.Matched {
		var err error
		rep.Matched, err = match(in, figs, opt.Tolerance)
		if err != nil {
			return nil, err
		}
		matched = make([][]int, len(in))
		for i, runs := range rep.Matched.Runs {
			for _, r := range runs {
				matched[i] = append(matched[i], r-1)
			}
		}
	}

	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	metrics.Sort(sorted)
	warn := map[string]bool{}
	addWarn := func(errs []error) {
		for _, e := range errs {
			if !warn[e.Error()] {
				warn[e.Error()] = true
				rep.Warnings = append(rep.Warnings, e.Error())
			}
		}
	}
	for _, n := range sorted {
		if opt.Matched && metrics.IsCPU(n) {
			continue
		}
		rep.Rows = append(rep.Rows, row(n, figs, all, opt.Confidence, false, addWarn))
	}
	if opt.Matched {
		// Throughput over the matched runs first, so the reader sees the work was equal.
		rep.Rows = append(rep.Rows, row("gbps", figs, matched, opt.Confidence, true, addWarn))
		for _, n := range sorted {
			if metrics.IsCPU(n) {
				rep.Rows = append(rep.Rows, row(n, figs, matched, opt.Confidence, true, addWarn))
			}
		}
	}
	return rep, nil
}

// row computes one figure's statistics over the selected runs of every input.
func row(name string, figs [][]map[string]float64, sel [][]int, conf float64, matched bool, warn func([]error)) Row {
	r := Row{Metric: name, Unit: metrics.Unit(name), Matched: matched}
	samples := make([]*benchmath.Sample, len(figs))
	for i := range figs {
		var vals []float64
		for _, k := range sel[i] {
			if v, ok := figs[i][k][name]; ok {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			r.Stats = append(r.Stats, nil)
			continue
		}
		st := describe(vals)
		// NewSample sorts its argument; st.Values keeps run order.
		samples[i] = benchmath.NewSample(append([]float64(nil), vals...), &benchmath.DefaultThresholds)
		sum := benchmath.AssumeNothing.Summary(samples[i], conf)
		warn(sum.Warnings)
		st.Median = sum.Center
		st.Lo, st.Hi = finite(sum.Lo), finite(sum.Hi)
		st.CIPct = sum.PctRangeString()
		r.Stats = append(r.Stats, st)
	}
	for i := 1; i < len(figs); i++ {
		if samples[0] == nil || samples[i] == nil {
			r.Deltas = append(r.Deltas, nil)
			continue
		}
		c := benchmath.AssumeNothing.Compare(samples[0], samples[i])
		// Identical constant samples fail the U-test with "all samples are equal": the row's
		// "~" and p=1 already say there is no change, a warning would only alarm.
		if !constantEqual(samples[0].Values, samples[i].Values) {
			warn(c.Warnings)
		}
		// The U-test's two-sided p can exceed 1 for tiny samples (the tail is doubled); a
		// probability cannot.
		c.P = math.Min(c.P, 1)
		old, cur := r.Stats[0].Median, r.Stats[i].Median
		d := &Delta{P: c.P, N1: c.N1, N2: c.N2, Significant: c.P <= c.Alpha, Text: c.FormatDelta(old, cur)}
		if old != 0 {
			d.Pct = finite((cur/old - 1) * 100)
		}
		if d.Significant && old != cur && (metrics.HigherIsBetter(name) || lowerIsBetter(name)) {
			up := cur > old
			if up == metrics.HigherIsBetter(name) {
				d.Better = "yes"
			} else {
				d.Better = "no"
			}
		}
		r.Deltas = append(r.Deltas, d)
	}
	return r
}

// lowerIsBetter names the figures whose decrease is an improvement: CPU time spent, CPU cost per
// GB, retransmits, copies the zero-copy path fell back to, and devmem's linear fallbacks.
func lowerIsBetter(name string) bool {
	if strings.Contains(name, ".cpu_s_per_gb.") || name == "retrans" || name == "zc.copied" ||
		strings.HasSuffix(name, "linear_bytes") || strings.HasSuffix(name, "short_dontneed") {
		return true
	}
	if metrics.IsCPU(name) {
		f := name[strings.LastIndexByte(name, '.')+1:]
		return f == "usr" || f == "sys" || f == "irq" || f == "sirq"
	}
	return false
}

// constantEqual reports whether every value of a and b is the same number.
func constantEqual(a, b []float64) bool {
	for _, v := range append(a[:len(a):len(a)], b...) {
		if v != a[0] {
			return false
		}
	}
	return true
}

// describe computes the distribution-free parts of a Stat.
func describe(vals []float64) *Stat {
	s := report.Summarize(vals)
	st := &Stat{N: s.N, Values: vals, Min: s.Min, Max: s.Max, Mean: s.Mean, Stddev: s.Stddev}
	// Equal values summed in floating point leave a residue like 1.5e-17; it is no spread.
	if st.Stddev <= 1e-9*math.Abs(st.Mean) {
		st.Stddev = 0
	}
	return st
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// match finds the throughput window of relative width tol that holds the most runs of the input
// with the fewest qualifying runs (ties: the most runs in all, then the lowest window).
func match(in []*Input, figs [][]map[string]float64, tol float64) (*Matched, error) {
	type pt struct {
		g      float64
		in, at int
	}
	var pts []pt
	lo := make([]float64, len(in))
	hi := make([]float64, len(in))
	for i := range figs {
		lo[i], hi[i] = math.Inf(1), math.Inf(-1)
		for k, m := range figs[i] {
			if g, ok := m["gbps"]; ok {
				pts = append(pts, pt{g, i, k})
				lo[i], hi[i] = math.Min(lo[i], g), math.Max(hi[i], g)
			}
		}
		if math.IsInf(lo[i], 1) {
			return nil, fmt.Errorf("--matched: %s has no throughput figures to match on", in[i].Name)
		}
	}
	sort.SliceStable(pts, func(a, b int) bool { return pts[a].g < pts[b].g })
	bestMin, bestTotal, bestA, bestB := -1, -1, 0, 0
	for a := range pts {
		count := make([]int, len(in))
		b := a
		for ; b < len(pts) && pts[b].g <= pts[a].g*(1+tol); b++ {
			count[pts[b].in]++
		}
		least := count[0]
		for _, c := range count {
			least = min(least, c)
		}
		if least > bestMin || (least == bestMin && b-a > bestTotal) {
			bestMin, bestTotal, bestA, bestB = least, b-a, a, b
		}
	}
	if bestMin < 1 {
		var ranges []string
		for i := range in {
			ranges = append(ranges, fmt.Sprintf("%s %s-%s Gbps", in[i].Name, metrics.Format(lo[i]), metrics.Format(hi[i])))
		}
		return nil, fmt.Errorf("--matched: no throughput window of %s%% holds a run of every input (%s): widen --tolerance or pace both sides to one rate with run --pace",
			metrics.Format(tol*100), strings.Join(ranges, ", "))
	}
	m := &Matched{Tolerance: tol, LoGbps: pts[bestA].g, HiGbps: pts[bestB-1].g, Runs: make([][]int, len(in))}
	for _, p := range pts[bestA:bestB] {
		m.Runs[p.in] = append(m.Runs[p.in], p.at+1)
	}
	for i := range m.Runs {
		sort.Ints(m.Runs[i])
	}
	return m, nil
}

// differences lists what differs between two results' configuration and per-host environment.
func differences(a, b *report.Result) []string {
	var out []string
	ca, cb := flat(a.Config), flat(b.Config)
	keys := map[string]bool{}
	for k := range ca {
		keys[k] = true
	}
	for k := range cb {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if ca[k] != cb[k] {
			out = append(out, fmt.Sprintf("config %s: %s -> %s", k, orNone(ca[k]), orNone(cb[k])))
		}
	}
	if a.Warmup != b.Warmup {
		out = append(out, fmt.Sprintf("config warmup: %d -> %d", a.Warmup, b.Warmup))
	}
	if len(a.Env) == 0 && len(b.Env) == 0 {
		// Say so: "no differences" would claim an equality nobody checked.
		return append(out, "environment: recorded in neither result")
	}
	roles := map[string]bool{}
	for r := range a.Env {
		roles[r] = true
	}
	for r := range b.Env {
		roles[r] = true
	}
	var rs []string
	for r := range roles {
		rs = append(rs, r)
	}
	// source before target, any other role after them alphabetically.
	sort.Slice(rs, func(i, j int) bool {
		oi, oj := roleOrder(rs[i]), roleOrder(rs[j])
		if oi != oj {
			return oi < oj
		}
		return rs[i] < rs[j]
	})
	for _, r := range rs {
		for _, l := range envinfo.Diff(a.Env[r], b.Env[r]) {
			out = append(out, r+" "+l)
		}
	}
	return out
}

func roleOrder(r string) int {
	switch r {
	case "source":
		return 0
	case "target":
		return 1
	}
	return 2
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// flat renders a config's fields by JSON name, so fields the schema adds later are compared too.
func flat(c report.Config) map[string]string {
	out := map[string]string{}
	v := reflect.ValueOf(c)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		f := v.Field(i)
		if f.Kind() == reflect.Bool {
			out[name] = strconv.FormatBool(f.Bool())
			continue
		}
		if f.IsZero() {
			out[name] = ""
			continue
		}
		switch f.Kind() {
		case reflect.String:
			out[name] = f.String()
		case reflect.Float64:
			out[name] = metrics.Format(f.Float())
		case reflect.Int, reflect.Int64:
			out[name] = strconv.FormatInt(f.Int(), 10)
		default:
			b, _ := json.Marshal(f.Interface())
			out[name] = string(b)
		}
	}
	return out
}
