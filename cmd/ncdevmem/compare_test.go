// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/perf/benchfmt"

	"github.com/devmemtcp/ncdevmem/report"
)

// fixtures are the recorded 4-flow results package compare's golden tests use.
func fixture(name string) string { return filepath.Join("..", "..", "compare", "testdata", name) }

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

func TestCompareCLIText(t *testing.T) {
	code, out, errs := runCLI("compare", fixture("before.json"), fixture("after.json"))
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{"target rings.rx: 2047 -> 1024", "gbps ", "+3.72%", "rx.cpu_s_per_gb.total"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "differences") > strings.Index(out, "metric") {
		t.Error("environment differences not listed first")
	}
}

func TestCompareCLIFormats(t *testing.T) {
	code, out, errs := runCLI("compare", "--json", "--matched", "--tolerance", "2%", fixture("before.json"), fixture("after.json"))
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errs)
	}
	var rep struct {
		Matched struct{ Runs [][]int }
		Rows    []struct{ Metric string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Rows) == 0 || len(rep.Matched.Runs) != 2 {
		t.Errorf("--json output: %v, %+v", err, rep.Matched)
	}

	code, out, errs = runCLI("compare", "--format", "benchfmt", fixture("before.json"), fixture("after.json"))
	if code != 0 {
		t.Fatalf("--format benchfmt: exit %d: %s", code, errs)
	}
	r := benchfmt.NewReader(strings.NewReader(out), "stdout")
	n := 0
	for r.Scan() {
		if _, ok := r.Result().(*benchfmt.UnitMetadata); ok {
			continue
		}
		if _, ok := r.Result().(*benchfmt.Result); !ok {
			t.Fatalf("benchfmt record %v", r.Result())
		}
		n++
	}
	if r.Err() != nil || n != 12 {
		t.Errorf("benchfmt: %d results, %v; want 12", n, r.Err())
	}
}

func TestCompareCLIPlot(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "runs.svg")
	code, out, errs := runCLI("compare", "--plot", svg, fixture("before.json"), fixture("after.json"))
	if code != 0 || out == "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("plot is not XML: %v", err)
		}
	}
	if n := strings.Count(string(b), `class="series"`); n != 4 {
		t.Errorf("%d series, want 2 inputs x 2 panels", n)
	}
	ents, _ := os.ReadDir(filepath.Dir(svg))
	if len(ents) != 1 {
		t.Errorf("plot directory holds %d files, want only the plot", len(ents))
	}
}

// TestCompareCLIErrors: every bad input is one line on stderr, exit 2 (usage) or 1 (data that
// cannot be matched), nothing on stdout and no plot file.
func TestCompareCLIErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := write("garbage.json", "not json at all")
	newer := write("newer.json", `{"schema": 99, "runs": [{}]}`)
	empty := write("empty.json", `{"schema": 1, "runs": []}`)
	far := write("far.json", tenthOf(t, fixture("short.json")))
	before, after := fixture("before.json"), fixture("after.json")
	plot := filepath.Join(dir, "p.svg")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"compare", before}, 2, "need at least two results to compare, got 1"},
		{[]string{"compare"}, 2, "need at least two results"},
		{[]string{"compare", "--plot", plot, before, filepath.Join(dir, "missing.json")}, 2, "missing.json: no such file or directory"},
		{[]string{"compare", before, garbage}, 2, "garbage.json: read JSON result: not an ncdevmem result"},
		{[]string{"compare", before, newer}, 2, "newer.json: read JSON result: schema version 99 is newer than this ncdevmem reads"},
		{[]string{"compare", empty, before}, 2, "empty.json: no measured runs"},
		{[]string{"compare", "--format", "csv", before, after}, 2, `--format "csv": want text, json or benchfmt`},
		{[]string{"compare", "--json", "--format", "benchfmt", before, after}, 2, "--json and --format benchfmt disagree"},
		{[]string{"compare", "--matched", "--tolerance", "0", before, after}, 2, `--tolerance "0": want a percentage`},
		{[]string{"compare", "--matched", "--tolerance", "x%", before, after}, 2, `--tolerance "x%"`},
		{[]string{"compare", "--bogus", before, after}, 2, "unknown flag: --bogus"},
		{[]string{"compare", "--tolerance", "5%", before, after}, 2, "--tolerance applies to --matched only"},
		{[]string{"compare", "--plot", plot, "--matched", before, far}, 1, "no throughput window of 2% holds a run of every input"},
	} {
		code, out, errs := runCLI(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) || strings.Count(errs, "\n") != 1 || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d and one line with %q", tc.args, code, out, errs, tc.code, tc.msg)
		}
	}
	if _, err := os.Stat(plot); !os.IsNotExist(err) {
		t.Errorf("a failed compare left a plot behind: %v", err)
	}
}

func TestParseTolerance(t *testing.T) {
	for in, want := range map[string]float64{"2%": 0.02, "2": 0.02, " 0.5 % ": 0.005, "50%": 0.5} {
		if got, err := parseTolerance(in); err != nil || got != want {
			t.Errorf("parseTolerance(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1%", "100%", "NaN", "2%%"} {
		if _, err := parseTolerance(in); err == nil {
			t.Errorf("parseTolerance(%q) accepted", in)
		}
	}
}

// tenthOf returns the result at p with every flow moving a tenth of the bytes: no run of it
// matches the original's throughput.
func tenthOf(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := report.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.Runs {
		for _, s := range []*report.Side{&r.Runs[i].Source, &r.Runs[i].Target} {
			for j := range s.Flows {
				s.Flows[j].Bytes /= 10
				s.Flows[j].Gbps /= 10
			}
		}
	}
	var b bytes.Buffer
	if err := report.WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestShortNames(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"/tmp/x/before.json", "/tmp/y/after.json"}, []string{"before.json", "after.json"}},
		{[]string{"runs/a/result.json", "runs/b/result.json"}, []string{"a/result.json", "b/result.json"}},
		{[]string{"result.json", "old/result.json"}, []string{"result.json", "old/result.json"}},
		{[]string{"a.json", "./a.json"}, []string{"a.json", "a.json"}},
		{[]string{"x/a.json", "y/x/a.json"}, []string{"x/a.json", "y/x/a.json"}},
	} {
		if got := shortNames(tc.in); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("shortNames(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
