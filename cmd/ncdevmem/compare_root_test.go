// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/perf/benchfmt"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/report"
)

// TestRootCompareEndToEnd runs two real `ncdevmem run --runs 3` tests between two namespaces
// (servers in each, the client in the source's) and feeds the results to `ncdevmem compare` in
// every output format.
func TestRootCompareEndToEnd(t *testing.T) {
	testnet.Require(t)
	bin := testnet.Binary(t)
	a, b := testnet.Pair(t)
	src, dst := a.StartServer(t, bin, 18400, nil).Addr, b.StartServer(t, bin, 18400, nil).Addr
	dir := t.TempDir()
	var files []string
	for _, name := range []string{"before.json", "after.json"} {
		out := filepath.Join(dir, name)
		// Paced to 2 Gbps a flow, well under what veth carries here, so that both inputs run at
		// one rate and --matched below has runs to match: unpaced, one input's runs came out at
		// 19 Gbps and the other's at 35 (this VM's throughput moves between two levels for
		// seconds at a time).
		cmd := a.Command(bin, "run", "--src", src, "--dst", dst, "-n", "2", "-t", "1s", "--runs", "3", "--warmup", "1",
			"--pace", "2", "--json", out, "--expect", "gbps>0")
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ncdevmem run for %s: %v\n%s", name, err, o)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		res, err := report.ReadJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(res.Runs) != 3 || res.Warmup != 1 {
			t.Fatalf("%s: %d runs, warmup %d; want 3 and 1", name, len(res.Runs), res.Warmup)
		}
		if e := res.Env["target"]; e == nil || e.KernelRelease == "" {
			t.Errorf("%s: no target environment recorded: %+v", name, res.Env)
		}
		files = append(files, out)
	}

	svg := filepath.Join(dir, "runs.svg")
	o, e, code := runBin(t, bin, append([]string{"compare", "--plot", svg}, files...)...)
	if code != 0 {
		t.Fatalf("compare: exit %d: %s", code, e)
	}
	t.Logf("ncdevmem compare:\n%s", o)
	for _, want := range []string{"has 3 run(s): at least 6 runs per input", "gbps", "flow1.gbps", "rx.cpu_s_per_gb.total"} {
		if !strings.Contains(o, want) {
			t.Errorf("compare output lacks %q:\n%s", want, o)
		}
	}
	plot, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(plot))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("plot is not XML: %v", err)
		}
	}
	if n := strings.Count(string(plot), `class="series"`); n != 4 {
		t.Errorf("plot has %d series, want 2 inputs x 2 panels", n)
	}

	o, e, code = runBin(t, bin, append([]string{"compare", "--json", "--matched", "--tolerance", "50%"}, files...)...)
	if code != 0 {
		t.Fatalf("compare --json --matched: exit %d: %s", code, e)
	}
	var rep struct {
		Inputs []struct{ Runs int }
		Rows   []struct {
			Metric string
			Stats  []*struct{ N int }
		}
	}
	if err := json.Unmarshal([]byte(o), &rep); err != nil {
		t.Fatalf("compare --json: %v\n%s", err, o)
	}
	found := false
	for _, r := range rep.Rows {
		if r.Metric == "gbps" && r.Stats[0] != nil && r.Stats[0].N == 3 && r.Stats[1] != nil && r.Stats[1].N == 3 {
			found = true
		}
	}
	if len(rep.Inputs) != 2 || !found {
		t.Errorf("compare --json: want 2 inputs and a gbps row over 3 runs each:\n%s", o)
	}

	o, e, code = runBin(t, bin, append([]string{"compare", "--format", "benchfmt"}, files...)...)
	if code != 0 {
		t.Fatalf("compare --format benchfmt: exit %d: %s", code, e)
	}
	r := benchfmt.NewReader(strings.NewReader(o), "stdout")
	n := 0
	for r.Scan() {
		if _, ok := r.Result().(*benchfmt.UnitMetadata); ok {
			continue
		}
		if res, ok := r.Result().(*benchfmt.Result); !ok {
			t.Fatalf("benchfmt: %v", r.Result())
		} else if v, ok := res.Value("gbps"); !ok || !(v > 0) {
			t.Errorf("benchfmt result without positive gbps: %v %v", v, ok)
		}
		n++
	}
	if n != 6 {
		t.Errorf("benchfmt: %d results, want 6", n)
	}
}

func runBin(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	return o.String(), e.String(), 0
}
