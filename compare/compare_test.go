// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package compare

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/report"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/perf/benchfmt"

	"github.com/devmemtcp/ncdevmem/internal/golden"
)

// resultOf builds a one-flow result whose runs received the given Gbps, with one app CPU on the
// target at the given idle percentages.
func resultOf(gbps, idle []float64) *report.Result {
	r := &report.Result{Schema: report.SchemaVersion}
	for i, g := range gbps {
		run := report.Run{Index: i, Duration: 1}
		run.Target.Flows = []report.Flow{{ID: 0, Dir: "rx", Gbps: g, Bytes: uint64(g * 1e9 / 8), USec: 1e6}}
		if idle != nil {
			run.Target.CPUs = []report.CPU{{CPU: 1, Role: "app", Idle: idle[i], Sys: 100 - idle[i]}}
		}
		r.Runs = append(r.Runs, run)
	}
	return r
}

func rowOf(t *testing.T, rep *Report, metric string, matched bool) Row {
	t.Helper()
	for _, r := range rep.Rows {
		if r.Metric == metric && r.Matched == matched {
			return r
		}
	}
	t.Fatalf("no row %q (matched %v)", metric, matched)
	return Row{}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestStatisticsKnownValues checks the figures against values computed by hand.
func TestStatisticsKnownValues(t *testing.T) {
	for _, tc := range []struct {
		name        string
		a, b        []float64
		medA, medB  float64
		loA, hiA    float64 // CI of a's median; NaN when unbounded
		sdA         float64
		p           float64
		significant bool
		text        string
	}{
		// n=6: the 95% CI of the median is [x(1), x(6)] (coverage 1-2/2^6 = 96.9%). Complete
		// separation of 6 and 6: two-sided exact p = 2/C(12,6) = 2/924.
		{name: "6v6 separated", a: []float64{3, 1, 2, 6, 5, 4}, b: []float64{7, 8, 9, 10, 11, 12},
			medA: 3.5, medB: 9.5, loA: 1, hiA: 6, sdA: math.Sqrt(17.5 / 5), p: 2.0 / 924, significant: true, text: "+171.43%"},
		// n=3 per side, separated: p = 2/C(6,3) = 0.1, never significant; CI unbounded.
		{name: "3v3", a: []float64{1, 2, 3}, b: []float64{4, 5, 6},
			medA: 2, medB: 5, loA: math.NaN(), hiA: math.NaN(), sdA: 1, p: 0.1, text: "~"},
		// 4 v 4 with one inversion (U=1): P(U<=1) = 2/C(8,4) = 2/70, two-sided 4/70.
		{name: "4v4 overlap", a: []float64{1, 2, 3, 4}, b: []float64{3.5, 5, 6, 7},
			medA: 2.5, medB: 5.5, loA: math.NaN(), hiA: math.NaN(), sdA: math.Sqrt(5.0 / 3), p: 4.0 / 70, text: "~"},
		// Sample standard deviation of 2,4,4,4,5,5,7,9 is sqrt(32/7); equal samples give p = 1.
		{name: "equal", a: []float64{2, 4, 4, 4, 5, 5, 7, 9}, b: []float64{2, 4, 4, 4, 5, 5, 7, 9},
			medA: 4.5, medB: 4.5, loA: 2, hiA: 7, sdA: math.Sqrt(32.0 / 7), p: 1, text: "~"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []*Input{{Name: "a", Result: resultOf(tc.a, nil)}, {Name: "b", Result: resultOf(tc.b, nil)}}
			rep, err := Compare(in, Options{})
			if err != nil {
				t.Fatal(err)
			}
			r := rowOf(t, rep, "gbps", false)
			sa, sb, d := r.Stats[0], r.Stats[1], r.Deltas[0]
			if !near(sa.Median, tc.medA) || !near(sb.Median, tc.medB) {
				t.Errorf("medians %v %v, want %v %v", sa.Median, sb.Median, tc.medA, tc.medB)
			}
			if math.IsNaN(tc.loA) {
				if sa.Lo != nil || sa.Hi != nil || sa.CIPct != "∞" {
					t.Errorf("CI %v %v %q, want unbounded", sa.Lo, sa.Hi, sa.CIPct)
				}
			} else if sa.Lo == nil || sa.Hi == nil || !near(*sa.Lo, tc.loA) || !near(*sa.Hi, tc.hiA) {
				t.Errorf("CI %v..%v, want %v..%v", sa.Lo, sa.Hi, tc.loA, tc.hiA)
			}
			if !near(sa.Stddev, tc.sdA) {
				t.Errorf("sd %v, want %v", sa.Stddev, tc.sdA)
			}
			if !near(d.P, tc.p) || d.Significant != tc.significant || d.Text != tc.text {
				t.Errorf("delta %+v, want p=%v significant=%v text %q", d, tc.p, tc.significant, tc.text)
			}
			if d.Significant && d.Better != "yes" {
				t.Errorf("more throughput: Better = %q, want yes", d.Better)
			}
		})
	}
}

func TestFewRunsWarns(t *testing.T) {
	in := []*Input{{Name: "a", Result: resultOf([]float64{1, 2, 3}, nil)}, {Name: "b", Result: resultOf([]float64{1, 2, 3, 4, 5, 6}, nil)}}
	rep, err := Compare(in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) == 0 || !strings.Contains(rep.Warnings[0], "a has 3 run(s): at least 6 runs per input") {
		t.Errorf("warnings %q, want the few-runs warning first", rep.Warnings)
	}
	if len(rep.Differences) != 1 || rep.Differences[0].Lines[0] != "environment: recorded in neither result" {
		t.Errorf("differences without environments: %+v", rep.Differences)
	}
	in[0].Result = resultOf([]float64{1, 2, 3, 4, 5, 6}, nil)
	rep, _ = Compare(in, Options{})
	for _, w := range rep.Warnings {
		if strings.Contains(w, "runs per input") {
			t.Errorf("warning with 6 runs each: %q", w)
		}
	}
}

func TestMatched(t *testing.T) {
	// a: runs at 100, 101, 110, 111; b: 100.5, 109, 109.5, 110.5. Window 2%: [109, 111.18] holds
	// a's 110, 111 and b's 109, 109.5, 110.5 (least 2, total 5), better than [100, 102] (2 and 1).
	a := resultOf([]float64{100, 101, 110, 111}, []float64{10, 11, 20, 21})
	b := resultOf([]float64{100.5, 109, 109.5, 110.5}, []float64{30, 31, 32, 33})
	rep, err := Compare([]*Input{{Name: "a", Result: a}, {Name: "b", Result: b}}, Options{Matched: true})
	if err != nil {
		t.Fatal(err)
	}
	want := &Matched{Tolerance: 0.02, LoGbps: 109, HiGbps: 111, Runs: [][]int{{3, 4}, {2, 3, 4}}}
	if d := cmp.Diff(want, rep.Matched); d != "" {
		t.Errorf("matched (-want +got):\n%s", d)
	}
	idle := rowOf(t, rep, "rx.app.idle", true)
	if d := cmp.Diff([]float64{20, 21}, idle.Stats[0].Values); d != "" {
		t.Errorf("matched idle of a (-want +got):\n%s", d)
	}
	for _, r := range rep.Rows {
		if r.Metric == "rx.app.idle" && !r.Matched {
			t.Error("CPU row over all runs present with --matched")
		}
	}
	if g := rowOf(t, rep, "gbps", false); g.Stats[0].N != 4 {
		t.Errorf("throughput over all runs has n=%d, want 4", g.Stats[0].N)
	}
	if g := rowOf(t, rep, "gbps", true); g.Stats[1].N != 3 {
		t.Errorf("matched throughput has n=%d, want 3", g.Stats[1].N)
	}

	far := resultOf([]float64{200, 201}, []float64{1, 2})
	_, err = Compare([]*Input{{Name: "a", Result: a}, {Name: "far", Result: far}}, Options{Matched: true})
	if err == nil || !strings.Contains(err.Error(), "no throughput window of 2% holds a run of every input (a 100-111 Gbps, far 200-201 Gbps)") {
		t.Errorf("unmatchable inputs: %v", err)
	}
	if _, err := Compare([]*Input{{Name: "a", Result: a}, {Name: "far", Result: far}}, Options{Matched: true, Tolerance: 1.1}); err != nil {
		t.Errorf("110%% tolerance: %v", err)
	}
}

func TestCompareNeedsTwo(t *testing.T) {
	if _, err := Compare([]*Input{{Name: "a", Result: resultOf([]float64{1}, nil)}}, Options{}); err == nil {
		t.Error("one input compared")
	}
	in := []*Input{{Name: "a", Result: resultOf([]float64{1}, nil)}, {Name: "b", Result: resultOf([]float64{1}, nil)}}
	for _, o := range []Options{{Confidence: 1.5}, {Tolerance: -1}, {Tolerance: math.NaN()}} {
		if _, err := Compare(in, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

func load(t *testing.T, names ...string) []*Input {
	t.Helper()
	var in []*Input
	for _, n := range names {
		inp, err := Load(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		inp.Name = n
		in = append(in, inp)
	}
	return in
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		inputs []string
		opt    Options
		json   bool
	}{
		{"before-after.txt", []string{"before.json", "after.json"}, Options{}, false},
		{"before-after-matched.txt", []string{"before.json", "after.json"}, Options{Matched: true}, false},
		{"before-short.txt", []string{"before.json", "short.json"}, Options{}, false},
		{"three.txt", []string{"before.json", "after.json", "short.json"}, Options{}, false},
		{"before-after.json", []string{"before.json", "after.json"}, Options{Matched: true}, true},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			rep, err := Compare(load(t, tc.inputs...), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if tc.json {
				err = rep.WriteJSON(&b)
			} else {
				err = rep.WriteText(&b)
			}
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tc.golden, b.Bytes())
		})
	}
}

func TestBenchfmtParses(t *testing.T) {
	in := load(t, "before.json", "after.json")
	var b bytes.Buffer
	if err := WriteBenchfmt(&b, in); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "before-after.bench", b.Bytes())
	r := benchfmt.NewReader(&b, "out.bench")
	perInput := map[string]int{}
	better := map[string]string{}
	for r.Scan() {
		if m, ok := r.Result().(*benchfmt.UnitMetadata); ok {
			better[m.Unit] = m.Value
			continue
		}
		res, ok := r.Result().(*benchfmt.Result)
		if !ok {
			t.Fatalf("record %T: %v", r.Result(), r.Result())
		}
		if string(res.Name) != "Ncdevmem" || res.Iters != 1 {
			t.Errorf("result %s %d", res.Name, res.Iters)
		}
		if v, ok := res.Value("gbps"); !ok || v < 300 {
			t.Errorf("gbps = %v, %v", v, ok)
		}
		perInput[res.GetConfig("input")]++
		if k := res.GetConfig("kernel"); !strings.HasPrefix(k, "6.18.0-net-next") {
			t.Errorf("kernel config %q", k)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	for u, want := range map[string]string{"gbps": "higher", "rx.app.idle": "higher", "rx.cpu_s_per_gb.total": "lower", "retrans": "lower", "devmem.frags": ""} {
		if better[u] != want {
			t.Errorf("unit %s better=%q, want %q", u, better[u], want)
		}
	}
	if d := cmp.Diff(map[string]int{"before.json": 6, "after.json": 6}, perInput); d != "" {
		t.Errorf("results per input (-want +got):\n%s", d)
	}
}

func TestPlotIsXMLWithOneSeriesPerInput(t *testing.T) {
	in := load(t, "before.json", "after.json", "short.json")
	in[2].Name = `short <&"'> ` + "\x01.json"
	var b bytes.Buffer
	if err := WritePlot(&b, in); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&b)
	series := map[string][]string{} // panel metric -> inputs
	var panel string
	circles := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not XML: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		attr := map[string]string{}
		for _, a := range se.Attr {
			attr[a.Name.Local] = a.Value
		}
		switch {
		case se.Name.Local == "g" && attr["class"] == "panel":
			panel = attr["data-metric"]
		case se.Name.Local == "g" && attr["class"] == "series":
			series[panel] = append(series[panel], attr["data-input"])
		case se.Name.Local == "circle" && panel != "":
			circles++
		}
	}
	names := []string{"before.json", "after.json", `short <&"'> .json`}
	want := map[string][]string{"gbps": names, "rx.app.idle": names}
	if d := cmp.Diff(want, series); d != "" {
		t.Errorf("series per panel (-want +got):\n%s", d)
	}
	if circles != 2*(6+6+3) {
		t.Errorf("%d run markers, want %d", circles, 2*(6+6+3))
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []float64
	}{
		{362.1, 389.4, []float64{360, 370, 380, 390}},
		{0.3, 0.9, []float64{0.2, 0.4, 0.6, 0.8, 1}},
		{50, 50, []float64{47, 48, 49, 50, 51, 52, 53}},
		{-1e308, 1e308, []float64{-1e308, 1e308}},
	} {
		if d := cmp.Diff(tc.want, niceTicks(tc.lo, tc.hi), cmp.Comparer(near)); d != "" {
			t.Errorf("niceTicks(%v, %v) (-want +got):\n%s", tc.lo, tc.hi, d)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"", "empty file"},
		{"{", "not an ncdevmem result"},
		{"[1,2]", "not an ncdevmem result"},
		{`{"runs": []}`, `no "schema" field`},
		{`{"schema": 2, "runs": [{}]}`, "schema version 2 is newer than this ncdevmem reads (1)"},
		{`{"schema": 0, "runs": [{}]}`, "schema version 0 is not one this ncdevmem reads"},
		{`{"schema": 1, "runs": []}`, "no measured runs"},
		{`{"schema": 1, "runs": "x"}`, "read JSON result (schema 1)"},
	} {
		_, err := Decode("x.json", strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "x.json: ") {
			t.Errorf("Decode(%q) = %v, want an error naming the file and saying %q", tc.in, err, tc.err)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Load(missing) = %v", err)
	}
	if in, err := Decode("ok.json", strings.NewReader(`{"schema": 1, "future_field": {"x": 1}, "runs": [{"index": 0}]}`)); err != nil || len(in.Result.Runs) != 1 {
		t.Errorf("unknown fields rejected: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"schema": 1, "runs": [{"index": 0, "target": {"flows": [{"id": 0, "dir": "rx", "gbps": 1}]}}]}`))
	f.Add([]byte(`{"schema": 2}`))
	f.Add([]byte(`{"schema": 1, "runs": [{"source": {"cpus": [{"role": "net+app", "idle": 5}]}, "duration_sec": -1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := Decode("f.json", bytes.NewReader(b))
		if err != nil {
			return
		}
		// Whatever decodes must compare and render without panicking.
		rep, err := Compare([]*Input{in, in}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteText(io.Discard); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteJSON(io.Discard); err != nil {
			t.Fatalf("JSON of a decoded result: %v", err)
		}
		if err := WritePlot(io.Discard, []*Input{in, in}); err != nil {
			t.Fatal(err)
		}
		if err := WriteBenchfmt(io.Discard, []*Input{in}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDifferentFlowCounts(t *testing.T) {
	two := resultOf([]float64{10, 11, 12}, nil)
	for i := range two.Runs {
		two.Runs[i].Target.Flows = append(two.Runs[i].Target.Flows, report.Flow{ID: 1, Dir: "rx", Gbps: 5, Bytes: 5e9 / 8, USec: 1e6})
	}
	one := resultOf([]float64{10, 11, 12}, nil)
	rep, err := Compare([]*Input{{Name: "two", Result: two}, {Name: "one", Result: one}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := rowOf(t, rep, "flow1.gbps", false)
	if r.Stats[0] == nil || r.Stats[0].N != 3 || r.Stats[1] != nil || r.Deltas[0] != nil {
		t.Errorf("flow1 row: stats %v deltas %v; want 3 values for two, none and no delta for one", r.Stats, r.Deltas)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !regexpMatch(`flow1\.gbps +Gbps +5 +±∞ +0 +- +- *\n`, b.String()) {
		t.Errorf("flow1 row not rendered with dashes:\n%s", b.String())
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
