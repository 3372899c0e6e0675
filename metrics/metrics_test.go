// SPDX-License-Identifier: MIT

package metrics

import (
	"math"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/report"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// twoFlowRun is a 2-flow run, 10 s: the source sends, the target receives with devmem.
func twoFlowRun() *report.Run {
	return &report.Run{
		Index: 0, Duration: 10,
		Source: report.Side{
			Flows: []report.Flow{
				{ID: 0, Dir: "tx", Bytes: 60e9, USec: 10e6, Gbps: 48, TCP: &report.TCP{Retrans: 3}, ZC: &report.ZC{Sends: 10, Completions: 10, Copied: 1}},
				{ID: 1, Dir: "tx", Bytes: 65e9, USec: 10e6, Gbps: 52, TCP: &report.TCP{Retrans: 1}},
			},
			CPUs: []report.CPU{
				{CPU: 2, Role: "net+app", Usr: 1, Sys: 40, Idle: 50, Irq: 4, Sirq: 5},
			},
		},
		Target: report.Side{
			Flows: []report.Flow{
				{ID: 0, Dir: "rx", Bytes: 50e9, USec: 10e6, Gbps: 40, TCP: &report.TCP{}},
				{ID: 1, Dir: "rx", Bytes: 62.5e9, USec: 10e6, Gbps: 50, TCP: &report.TCP{}},
			},
			CPUs: []report.CPU{
				{CPU: 4, Role: "net", Usr: 0, Sys: 10, Idle: 20, Irq: 10, Sirq: 60},
				{CPU: 5, Role: "net", Usr: 0, Sys: 10, Idle: 40, Irq: 10, Sirq: 40},
				{CPU: 8, Role: "app", Usr: 2, Sys: 48, Idle: 50, Iow: 0},
			},
			Devmem: &report.Devmem{DmabufBytes: 112e9, LinearBytes: 4096, Frags: 1000, Tokens: 1000, DontneedCalls: 8,
				Qstats: map[string]uint64{"rx-packets": 77}},
		},
	}
}

func TestOf(t *testing.T) {
	got := Of(twoFlowRun())
	// Target: 112.5e9 bytes = 112.5 GB over 10 s. net CPUs busy 0.8 and 0.6 -> 14 CPU-s; app busy
	// 0.5 -> 5 CPU-s; all three 19 CPU-s. Source: 125 GB; one CPU busy 0.5 -> 5 CPU-s.
	want := map[string]float64{
		"gbps": 90, "tx.gbps": 100, "rx.gbps": 90, "flow0.gbps": 40, "flow1.gbps": 50,
		"retrans": 4, "zc.sends": 10, "zc.completions": 10, "zc.copied": 1,
		"tx.net.usr": 1, "tx.net.sys": 40, "tx.net.idle": 50, "tx.net.iow": 0, "tx.net.irq": 4, "tx.net.sirq": 5,
		"tx.app.usr": 1, "tx.app.sys": 40, "tx.app.idle": 50, "tx.app.iow": 0, "tx.app.irq": 4, "tx.app.sirq": 5,
		"tx.all.usr": 1, "tx.all.sys": 40, "tx.all.idle": 50, "tx.all.iow": 0, "tx.all.irq": 4, "tx.all.sirq": 5,
		"tx.cpu_s_per_gb.net": 5.0 / 125, "tx.cpu_s_per_gb.app": 5.0 / 125, "tx.cpu_s_per_gb.total": 5.0 / 125,
		"rx.net.usr": 0, "rx.net.sys": 10, "rx.net.idle": 30, "rx.net.iow": 0, "rx.net.irq": 10, "rx.net.sirq": 50,
		"rx.app.usr": 2, "rx.app.sys": 48, "rx.app.idle": 50, "rx.app.iow": 0, "rx.app.irq": 0, "rx.app.sirq": 0,
		"rx.all.usr": 2.0 / 3, "rx.all.sys": 68.0 / 3, "rx.all.idle": 110.0 / 3, "rx.all.iow": 0, "rx.all.irq": 20.0 / 3, "rx.all.sirq": 100.0 / 3,
		"tx.net.steal": 0, "tx.app.steal": 0, "tx.all.steal": 0, "rx.net.steal": 0, "rx.app.steal": 0, "rx.all.steal": 0,
		"rx.cpu_s_per_gb.net": 14 / 112.5, "rx.cpu_s_per_gb.app": 5 / 112.5, "rx.cpu_s_per_gb.total": 19 / 112.5,
		"devmem.dmabuf_bytes": 112e9, "devmem.linear_bytes": 4096, "devmem.frags": 1000, "devmem.page_aligned_frags": 0,
		"devmem.tokens": 1000, "devmem.dontneed_calls": 8, "devmem.short_dontneed": 0, "devmem.qstats.rx-packets": 77,
	}
	if d := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-12)); d != "" {
		t.Errorf("Of (-want +got):\n%s", d)
	}
	for n := range got {
		if !Known(n) {
			t.Errorf("Of produced %q, which Known rejects (so --expect could not gate it)", n)
		}
	}
}

func TestOfAbsentNotZero(t *testing.T) {
	r := twoFlowRun()
	r.Target.CPUs = nil
	r.Target.Devmem = nil
	r.Source.Devmem = &report.Devmem{DmabufBytes: 1}
	r.Duration = 0 // falls back to the flows' window
	got := Of(r)
	for _, n := range []string{"rx.app.idle", "rx.cpu_s_per_gb.total", "rx.devmem.frags", "tx.devmem.frags"} {
		if v, ok := got[n]; ok {
			t.Errorf("%s = %v, want absent", n, v)
		}
	}
	if got["devmem.dmabuf_bytes"] != 1 {
		t.Errorf("devmem.dmabuf_bytes = %v, want the source's 1", got["devmem.dmabuf_bytes"])
	}
	if v := got["tx.cpu_s_per_gb.total"]; math.Abs(v-5.0/125) > 1e-12 {
		t.Errorf("tx.cpu_s_per_gb.total with the flows' window = %v, want %v", v, 5.0/125)
	}
	if len(Of(nil)) != 0 || len(Of(&report.Run{})) != 0 {
		t.Error("an empty run has figures")
	}

	r = twoFlowRun()
	r.Source.Devmem = &report.Devmem{DmabufBytes: 1}
	got = Of(r)
	if got["devmem.dmabuf_bytes"] != 112e9+1 || got["tx.devmem.dmabuf_bytes"] != 1 || got["rx.devmem.dmabuf_bytes"] != 112e9 {
		t.Errorf("both sides' devmem: sum %v tx %v rx %v", got["devmem.dmabuf_bytes"], got["tx.devmem.dmabuf_bytes"], got["rx.devmem.dmabuf_bytes"])
	}
}

func TestOfTxOnly(t *testing.T) {
	r := twoFlowRun()
	r.Target.Flows = nil
	got := Of(r)
	if got["gbps"] != 100 || got["flow1.gbps"] != 52 {
		t.Errorf("without received flows gbps = %v flow1 = %v, want the sent 100 and 52", got["gbps"], got["flow1.gbps"])
	}
	if _, ok := got["rx.gbps"]; ok {
		t.Error("rx.gbps present without received flows")
	}
}

func TestParseExpect(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Expect
		err  string
	}{
		{in: "gbps>=180", want: Expect{"gbps", ">=", 180}},
		{in: " rx.app.idle >= 5% ", want: Expect{"rx.app.idle", ">=", 5}},
		{in: "retrans==0", want: Expect{"retrans", "==", 0}},
		{in: "retrans!=1", want: Expect{"retrans", "!=", 1}},
		{in: "flow12.gbps>1.5e1", want: Expect{"flow12.gbps", ">", 15}},
		{in: "rx.cpu_s_per_gb.total<0.2", want: Expect{"rx.cpu_s_per_gb.total", "<", 0.2}},
		{in: "devmem.qstats.rx-hw-drops<=0", want: Expect{"devmem.qstats.rx-hw-drops", "<=", 0}},
		{in: "rx.devmem.linear_bytes==0", want: Expect{"rx.devmem.linear_bytes", "==", 0}},
		{in: "gbps=180", err: "no comparison"},
		{in: ">=180", err: "no metric"},
		{in: "gbps>=", err: "not a finite number"},
		{in: "gbps>=fast", err: "not a finite number"},
		{in: "gbps>=NaN", err: "not a finite number"},
		{in: "gbps>=Inf", err: "not a finite number"},
		{in: "gpbs>=180", err: `unknown metric "gpbs" (did you mean gbps`},
		{in: "rx.app.idel>=5", err: "did you mean rx.app.idle"},
		{in: "flow.gbps>1", err: "unknown metric"},
		{in: "zzzzzzzzzzzzzzzzzzzzzzzz>1", err: "see the table"},
		{in: "", err: "no comparison"},
	} {
		got, err := ParseExpect(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseExpect(%q) error = %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseExpect(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseExpect(f *testing.F) {
	for _, s := range []string{"gbps>=180", "rx.app.idle >= 5%", "flow3.gbps!=0", "x<=<=1", "a>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpect(s)
		if err != nil {
			return
		}
		if !Known(e.Metric) || math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
			t.Fatalf("ParseExpect(%q) accepted %+v", s, e)
		}
		// The canonical form parses back to the same gate.
		again, err := ParseExpect(e.String())
		if err != nil || again.Metric != e.Metric || again.Op != e.Op {
			t.Fatalf("round trip of %q: %+v, %v", e.String(), again, err)
		}
	})
}

func TestCheck(t *testing.T) {
	slow := twoFlowRun()
	slow.Target.Flows[0].Bytes = 37.5e9 // 30 Gbps over 10 s: gbps 80
	r := &report.Result{Runs: []report.Run{*twoFlowRun(), *slow}}
	r.Runs[1].Target.CPUs = nil
	exps := []Expect{{"gbps", ">=", 85}, {"rx.app.idle", ">=", 5}, {"retrans", "<", 10}}
	got := Check(r, exps)
	var s []string
	for _, f := range got {
		s = append(s, f.String())
	}
	want := []string{"run 2: gbps = 80, want >= 85", "run 2: rx.app.idle not measured, want >= 5"}
	if d := cmp.Diff(want, s); d != "" {
		t.Errorf("Check (-want +got):\n%s", d)
	}
	if Check(r, nil) != nil || Check(nil, exps) != nil {
		t.Error("Check with nothing to check reported failures")
	}
	f := Failure{Expect: Expect{"gbps", ">=", 180}, Run: 2, Got: 171.2857}
	if f.String() != "run 2: gbps = 171.3, want >= 180" {
		t.Errorf("Failure.String() = %q", f.String())
	}
}

func TestHolds(t *testing.T) {
	for _, tc := range []struct {
		op   string
		got  float64
		want bool
	}{
		{">=", 5, true}, {">=", 4.9, false}, {"<=", 5, true}, {"<=", 5.1, false},
		{">", 5, false}, {">", 5.1, true}, {"<", 5, false}, {"<", 4, true},
		{"==", 5, true}, {"==", 4, false}, {"!=", 4, true}, {"!=", 5, false},
		{">=", math.NaN(), false}, {"!=", math.NaN(), false}, {"<", math.NaN(), false},
	} {
		if got := (Expect{"gbps", tc.op, 5}).Holds(tc.got); got != tc.want {
			t.Errorf("%v %s 5 = %v, want %v", tc.got, tc.op, got, tc.want)
		}
	}
}

func TestSortAndUnit(t *testing.T) {
	names := []string{"devmem.qstats.rx-packets", "retrans", "flow10.gbps", "rx.app.idle", "flow2.gbps",
		"tx.cpu_s_per_gb.total", "gbps", "devmem.frags", "tx.net.usr", "rx.gbps", "zc.copied", "rx.devmem.frags"}
	Sort(names)
	want := []string{"gbps", "rx.gbps", "flow2.gbps", "flow10.gbps", "tx.net.usr", "rx.app.idle",
		"tx.cpu_s_per_gb.total", "retrans", "zc.copied", "devmem.frags", "devmem.qstats.rx-packets", "rx.devmem.frags"}
	if d := cmp.Diff(want, names); d != "" {
		t.Errorf("Sort (-want +got):\n%s", d)
	}
	for n, u := range map[string]string{"gbps": "Gbps", "flow3.gbps": "Gbps", "rx.app.idle": "%",
		"rx.cpu_s_per_gb.net": "s/GB", "devmem.dmabuf_bytes": "B", "retrans": "count", "devmem.qstats.rx-bytes": "B"} {
		if got := Unit(n); got != u {
			t.Errorf("Unit(%q) = %q, want %q", n, got, u)
		}
	}
}

func TestFormat(t *testing.T) {
	for v, want := range map[float64]string{180: "180", 171.2857: "171.3", 12.345: "12.35", 0.0123456: "0.01235",
		123456.78: "123456.8", -2.5: "-2.5", 1e12: "1000000000000"} {
		if got := Format(v); got != want {
			t.Errorf("Format(%v) = %q, want %q", v, got, want)
		}
	}
}
