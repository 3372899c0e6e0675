// SPDX-License-Identifier: MIT

package report

import (
	"bytes"
	"encoding/csv"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/perf/benchfmt"

	"github.com/devmemtcp/ncdevmem/internal/golden"
)

func tcp(retrans, rtt, cwnd uint32) *TCP {
	return &TCP{Retrans: retrans, Reord: 0, RTTus: rtt, RTTVarUs: 4, SndWnd: 4599808, Cwnd: cwnd, DeliveryRateB: 12262500000}
}

// sampleRun is a 2-flow host-memory run with devmem counters on the target, figures modelled on
// kperf's published output.
func sampleRun(i int, scale float64) Run {
	usec := uint64(60001149)
	b1 := uint64(735764807680 * scale)
	b2 := uint64(770996961280 * scale)
	return Run{
		Index:    i,
		Start:    time.Date(2026, 11, 22, 1, 0, i*61, 0, time.UTC),
		Duration: 60.001149,
		Source: Side{
			Host: "198.18.0.1",
			Flows: []Flow{
				{ID: 0, Dir: "tx", Bytes: b1, USec: usec, Gbps: Gbps(b1, usec), NetCPU: 56, AppCPU: 60, TCP: tcp(0, 29, 1587),
					ZC: &ZC{Sends: 1000, Completions: 1000, Copied: 3}},
				{ID: 1, Dir: "tx", Bytes: b2, USec: usec, Gbps: Gbps(b2, usec), NetCPU: 57, AppCPU: 61, TCP: tcp(2, 31, 1402),
					ZC: &ZC{Sends: 1200, Completions: 1190, Copied: 0}},
			},
			CPUs: []CPU{
				{CPU: 60, Role: "app", Usr: 0.08, Sys: 63.30, Idle: 36.24 - scale, Iow: 0, Irq: 0.30, Sirq: 0.06 + scale},
				{CPU: 56, Role: "net", Usr: 0.01, Sys: 0.12, Idle: 17.06, Iow: 0, Irq: 9.89, Sirq: 72.91, Steal: 1.25},
				{CPU: 57, Role: "net+app", Usr: 1, Sys: 40, Idle: 9 + scale, Iow: 0, Irq: 5, Sirq: 45 - scale},
			},
		},
		Target: Side{
			Host: "198.18.0.2",
			Flows: []Flow{
				{ID: 0, Dir: "rx", Bytes: b1, USec: 60006084, Gbps: Gbps(b1, 60006084), NetCPU: 2, AppCPU: 3},
				{ID: 1, Dir: "rx", Bytes: b2, USec: 60006084, Gbps: Gbps(b2, 60006084), NetCPU: 4, AppCPU: 5},
			},
			CPUs: []CPU{
				{CPU: 2, Role: "net", Usr: 0, Sys: 0.01, Idle: 24.51, Iow: 0, Irq: 1.67, Sirq: 73.79},
				{CPU: 3, Role: "app", Usr: 0.5, Sys: 80, Idle: 19.5 * scale, Iow: 0, Irq: 0, Sirq: 0},
			},
			Devmem: &Devmem{
				DmabufBytes: b1 + b2 - 4096, LinearBytes: 4096, Frags: 368000000, PageAlignedFrags: 367999000,
				FragHist: []HistBucket{{Le: 4096, Count: 367990000}, {Le: 65536, Count: 10000}, {Le: math.MaxUint64, Count: 0}},
				Tokens:   368000000, DontneedCalls: 2875000, ShortDontneed: 2,
				Qstats:   map[string]uint64{"rx-packets": 1000000, "rx-bytes": b1 + b2, "rx-alloc-fail": 0},
				PagePool: map[string]uint64{"alloc-fast": 99, "recycle-ring": 12},
			},
		},
	}
}

func sampleResult(runs int) *Result {
	r := &Result{
		Schema: SchemaVersion,
		Tool:   Tool{Version: "v0.1.0", Commit: "abc1234", Args: []string{"ncdevmem", "run", "-n", "2", "--time", "60"}},
		Config: Config{Src: "198.18.0.1", Dst: "198.18.0.2", Flows: 2, DurationSec: 60, WriteSize: 65536, ReadSize: 65536,
			MsgZerocopy: true, Validate: "on", DevmemRX: true, RxMem: "udmabuf", Ifname: "eth1", Queues: []int{14, 15}},
		Env: map[string]*Env{
			"source": {Hostname: "a", KernelRelease: "6.18.0", CPUModel: "Intel(R) Xeon(R) Processor", NumCPU: 64, ToolVersion: "v0.1.0"},
			"target": {Hostname: "b", KernelRelease: "6.18.0", CPUModel: "Intel(R) Xeon(R) Processor", NumCPU: 64, ToolVersion: "v0.1.0",
				Ifname: "eth1", Driver: "bnxt_en", Rings: map[string]uint64{"rx": 2048}, HeaderSplit: "on"},
		},
		Warmup: 1,
	}
	scales := []float64{1, 0.98, 1.01, 0.97, 1.02}
	for i := range runs {
		r.Runs = append(r.Runs, sampleRun(i, scales[i%len(scales)]))
	}
	return r
}

func TestWriteTextGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		runs int
	}{{"text_single.golden", 1}, {"text_runs.golden", 3}} {
		var b bytes.Buffer
		if err := WriteText(&b, sampleResult(tc.runs)); err != nil {
			t.Fatal(err)
		}
		golden.Check(t, tc.name, b.Bytes())
	}
}

func TestWriteTextShape(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sampleResult(1)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"== Source 198.18.0.1\n",
		"== Target 198.18.0.2\n",
		"  Tx  98.100 Gbps (735764807680 bytes in 60001149 usec)\n",
		// kperf prints "Tx102.798"; we keep the space.
		"  Tx 102.798 Gbps (770996961280 bytes in 60001149 usec)\n",
		"  TCP retrans reord rtt rttvar d_ce snd_wnd cwnd dlv_gbps\n",
		"            0     0  29      4    0 4599808 1587",
		"  net CPU  2: usr: 0.00% sys: 0.01% idle:24.51% iow: 0.00% irq: 1.67% sirq:73.79%\n",
		"  app CPU 60: usr: 0.08% sys:63.30% idle:35.24% iow: 0.00% irq: 0.30% sirq: 1.06%\n",
		"  net CPU 57:", "  app CPU 57:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	// One flow per direction: no total line.
	r := sampleResult(1)
	r.Runs[0].Source.Flows = r.Runs[0].Source.Flows[:1]
	b.Reset()
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "Tx total") {
		t.Errorf("a single flow got a total line:\n%s", b.String())
	}
	if err := WriteText(&b, &Result{}); err == nil {
		t.Error("WriteText of a result without runs succeeded")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := sampleResult(2)
	r.Schema = 0 // WriteJSON sets it.
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	if r.Schema != 0 {
		t.Error("WriteJSON modified its argument")
	}
	golden.Check(t, "result.json", b.Bytes())
	got, err := ReadJSON(&b)
	if err != nil {
		t.Fatal(err)
	}
	want := sampleResult(2)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("JSON round trip (-want +got):\n%s", d)
	}
}

func TestReadJSONRejects(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"schema": 2, "runs": "whatever layout v2 has"}`, "schema version 2 is newer than this ncdevmem reads (1): use a newer ncdevmem"},
		{`{"schema": 0}`, "schema version 0 is not one this ncdevmem reads (1)"},
		{`{"runs": []}`, `no "schema" field`},
		{`[1, 2]`, "not an ncdevmem result"},
		{`{"schema": 1} trailing`, "not an ncdevmem result"},
		{`{"schema": 1, "runs": 5}`, "read JSON result (schema 1)"},
		{``, "not an ncdevmem result"},
	} {
		_, err := ReadJSON(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadJSON(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
	// Fields a later writer of the same version added are ignored, as the schema rules promise.
	r, err := ReadJSON(strings.NewReader(`{"schema": 1, "future_field": {"x": 1}, "runs": []}`))
	if err != nil || r.Schema != 1 {
		t.Errorf("ReadJSON with an unknown field = %v, %v", r, err)
	}
}

func TestWriteCSV(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, sampleResult(3)); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "runs.csv", b.Bytes())
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("CSV has %d rows, want a header and 3 runs", len(rows))
	}
	h := CSVHeader()
	if d := cmp.Diff(h, rows[0]); d != "" {
		t.Fatalf("CSV header (-want +got):\n%s", d)
	}
	col := func(name string) int {
		for i, n := range h {
			if n == name {
				return i
			}
		}
		t.Fatalf("no column %q", name)
		return -1
	}
	for name, want := range map[string]string{
		"tx_gbps": "200.898", "src_retrans": "2", "src_rtt_us": "30", "src_cwnd": "1494", "src_snd_wnd": "9199616",
		"dst_net_idle": "24.51", "dst_retrans": "", "src_net_idle": "13.53",
	} {
		if got := rows[1][col(name)]; got != want {
			t.Errorf("run 0 %s = %q, want %q", name, got, want)
		}
	}
}

func TestWriteBenchfmt(t *testing.T) {
	var b bytes.Buffer
	if err := WriteBenchfmt(&b, sampleResult(3)); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "runs.bench", b.Bytes())

	// What benchstat reads: x/perf's own parser must accept every line.
	rd := benchfmt.NewReader(bytes.NewReader(b.Bytes()), "runs.bench")
	var names []string
	var gbps []float64
	for rd.Scan() {
		switch rec := rd.Result().(type) {
		case *benchfmt.SyntaxError:
			t.Fatalf("benchfmt rejects our output: %v", rec)
		case *benchfmt.Result:
			names = append(names, rec.Name.String())
			v, ok := rec.Value("Gbps")
			if !ok {
				t.Fatalf("%s has no Gbps", rec.Name)
			}
			gbps = append(gbps, v)
			if rec.GetConfig("devmem-rx") != "true" || rec.GetConfig("source-cpu") != "Intel(R) Xeon(R) Processor" {
				t.Fatalf("%s lost its configuration: %+v", rec.Name, rec.Config)
			}
			if _, ok := rec.Value("cpu-s/GB"); !ok {
				t.Fatalf("%s has no cpu-s/GB", rec.Name)
			}
		}
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"Ncdevmem/flows=2/dir=tx", "Ncdevmem/flows=2/dir=rx"}
	if len(names) != 6 || names[0] != wantNames[0] || names[1] != wantNames[1] {
		t.Fatalf("benchmark names = %v, want 3 runs of %v", names, wantNames)
	}
	if math.Abs(gbps[0]-200.898) > 0.001 {
		t.Fatalf("run 0 tx = %v Gbps, want 200.898", gbps[0])
	}
	if um := rd.Units().Get("Gbps", "better"); um == nil || um.Value != "higher" {
		t.Fatalf("Gbps unit metadata = %+v, want better=higher", um)
	}
}

func TestDerived(t *testing.T) {
	if g := Gbps(735764807680, 60001149); math.Abs(g-98.100) > 0.0005 {
		t.Errorf("Gbps = %v, want 98.100 (kperf's published figure)", g)
	}
	if g := Gbps(1, 0); g != 0 {
		t.Errorf("Gbps over 0 usec = %v", g)
	}
	run := sampleRun(0, 1)
	if n := run.Source.TotalBytes(); n != 735764807680+770996961280 {
		t.Errorf("TotalBytes = %d", n)
	}
	if g := run.TxGbps(); math.Abs(g-200.898) > 0.001 {
		t.Errorf("TxGbps = %v", g)
	}
	if g := run.RxGbps(); math.Abs(g-200.881) > 0.001 {
		t.Errorf("RxGbps = %v", g)
	}
	side := Side{CPUs: []CPU{
		{CPU: 1, Role: "net", Idle: 25, Iow: 5}, // 70% busy
		{CPU: 2, Role: "app", Idle: 50},         // 50% busy
		{CPU: 3, Role: "net+app", Idle: 90},     // 10% busy
	}}
	got := CPUPerGB(side, 10, 2)
	want := map[string]float64{"net": (7 + 1) / 2.0, "app": (5 + 1) / 2.0, "total": (7 + 5 + 1) / 2.0}
	if d := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-12)); d != "" {
		t.Errorf("CPUPerGB (-want +got):\n%s", d)
	}
	if CPUPerGB(side, 10, 0) != nil || CPUPerGB(side, 0, 1) != nil || CPUPerGB(Side{}, 10, 1) != nil {
		t.Error("CPUPerGB of nothing is not nil")
	}
	s := Summarize([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if s.N != 8 || s.Mean != 5 || s.Min != 2 || s.Max != 9 || math.Abs(s.Stddev-2.138089935) > 1e-9 {
		t.Errorf("Summarize = %+v", s)
	}
	if s := Summarize([]float64{3}); s.Stddev != 0 || s.Mean != 3 {
		t.Errorf("Summarize of one value = %+v", s)
	}
}

func FuzzReadJSON(f *testing.F) {
	// Small seeds: the fuzzer minimises every interesting input, and a full result is 4 KB.
	f.Add([]byte(`{"schema":1,"runs":[{"duration_sec":1,"source":{"flows":[{"dir":"tx","bytes":9,"usec":3,"tcp":{"cwnd":2}}],` +
		`"cpus":[{"cpu":1,"role":"net+app","idle":5}]},"target":{"flows":[{"dir":"rx","bytes":9,"usec":3}],` +
		`"devmem":{"frags":2,"frag_size_hist":[{"le":4096,"count":2}],"qstats":{"rx-bytes":9}}}}]}`))
	f.Add([]byte(`{"schema": 2}`))
	f.Add([]byte(`{"schema": 1, "runs": [{"source": {"flows": [{"usec": 0}]}}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ReadJSON(bytes.NewReader(in))
		if err != nil {
			return
		}
		// Whatever was accepted renders without panicking and reads back the same.
		var out bytes.Buffer
		if err := WriteJSON(&out, r); err != nil {
			return // e.g. a float the encoder cannot write
		}
		_ = WriteText(&bytes.Buffer{}, r)
		_ = WriteCSV(&bytes.Buffer{}, r)
		_ = WriteBenchfmt(&bytes.Buffer{}, r)
		first := bytes.Clone(out.Bytes())
		r2, err := ReadJSON(&out)
		if err != nil {
			t.Fatalf("re-reading our own JSON: %v", err)
		}
		var again bytes.Buffer
		if err := WriteJSON(&again, r2); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again.Bytes()) {
			t.Fatalf("JSON round trip changed the document:\n%s\n%s", first, again.Bytes())
		}
	})
}

func TestTCPRowKeepsColumnsApart(t *testing.T) {
	r := sampleResult(1)
	r.Runs[0].Source.Flows[0].TCP = &TCP{Retrans: 123456789012 % (1 << 32), Reord: 1234567, RTTus: 12345, RTTVarUs: 12345678,
		DeliveredCE: 123456, SndWnd: 22463488, Cwnd: 123456}
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	want := "  TCP retrans reord rtt rttvar d_ce snd_wnd cwnd dlv_gbps\n"
	i := strings.Index(b.String(), want)
	if i < 0 {
		t.Fatalf("no TCP header:\n%s", b.String())
	}
	row := strings.SplitN(b.String()[i+len(want):], "\n", 2)[0]
	if f := strings.Fields(row); len(f) != 8 {
		t.Fatalf("TCP row %q splits into %d fields, want 8", row, len(f))
	}
}
