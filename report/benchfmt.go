// SPDX-License-Identifier: MIT

package report

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// WriteBenchfmt writes r in the Go benchmark format, so `benchstat before.txt after.txt` compares
// two sets of runs. The configuration goes into file-level keys (benchstat groups by them) and each
// run gives one line per direction, measured on the side that did it:
//
//	BenchmarkNcdevmem/flows=4/dir=rx 1 123.4 Gbps 0.85 cpu-s/GB 0.4 net-cpu-s/GB 0.45 app-cpu-s/GB 24.5 net-idle-% ...
//
// CPU-seconds per GB count the busy (not idle, not iowait) time of the side's net and app CPUs.
func WriteBenchfmt(w io.Writer, r *Result) error {
	bw := benchfmt.NewWriter(w)
	units := []struct{ unit, better string }{
		{"Gbps", "higher"}, {"cpu-s/GB", "lower"}, {"net-cpu-s/GB", "lower"}, {"app-cpu-s/GB", "lower"},
		{"net-idle-%", "higher"}, {"app-idle-%", "higher"}, {"retrans", "lower"},
	}
	for _, u := range units {
		m := &benchfmt.UnitMetadata{UnitMetadataKey: benchfmt.UnitMetadataKey{Unit: u.unit, Key: "better"}, OrigUnit: u.unit, Value: u.better}
		if err := bw.Write(m); err != nil {
			return fmt.Errorf("write benchmark format: %w", err)
		}
	}
	cfg := benchConfig(r)
	flows := r.Config.Flows
	for i := range r.Runs {
		run := &r.Runs[i]
		for _, d := range []struct {
			dir  string
			side *Side
		}{{"tx", &run.Source}, {"rx", &run.Target}} {
			var bytes, usec uint64
			n, retrans := 0, uint64(0)
			for j := range d.side.Flows {
				f := &d.side.Flows[j]
				if f.Dir != d.dir {
					continue
				}
				n++
				bytes += f.Bytes
				usec = max(usec, f.USec)
				if f.TCP != nil {
					retrans += uint64(f.TCP.Retrans)
				}
			}
			if n == 0 {
				continue
			}
			fl := flows
			if fl == 0 {
				fl = n
			}
			res := &benchfmt.Result{
				Config: cfg,
				Name:   benchfmt.Name(fmt.Sprintf("Ncdevmem/flows=%d/dir=%s", fl, d.dir)),
				Iters:  1,
				Values: []benchfmt.Value{{Value: round(Gbps(bytes, usec), 1e4), Unit: "Gbps"}},
			}
			if c := CPUPerGB(*d.side, run.Duration, GB(bytes)); c != nil {
				res.Values = append(res.Values,
					benchfmt.Value{Value: round(c["total"], 1e6), Unit: "cpu-s/GB"},
					benchfmt.Value{Value: round(c["net"], 1e6), Unit: "net-cpu-s/GB"},
					benchfmt.Value{Value: round(c["app"], 1e6), Unit: "app-cpu-s/GB"})
			}
			for _, role := range []string{"net", "app"} {
				if avg, ok := d.side.RoleAvg(role); ok {
					res.Values = append(res.Values, benchfmt.Value{Value: round(avg.Idle, 1e4), Unit: role + "-idle-%"})
				}
			}
			if d.dir == "tx" {
				res.Values = append(res.Values, benchfmt.Value{Value: float64(retrans), Unit: "retrans"})
			}
			if err := bw.Write(res); err != nil {
				return fmt.Errorf("write benchmark format: %w", err)
			}
		}
	}
	return nil
}

// round keeps the text stable (no 98.10000000000001) at a precision far below the noise.
func round(v, scale float64) float64 { return math.Round(v*scale) / scale }

// benchConfig is the file-level configuration of every line: what must match for two results to
// be comparable.
func benchConfig(r *Result) []benchfmt.Config {
	var cfg []benchfmt.Config
	add := func(k, v string) {
		if v != "" {
			// A line break would end the key's line early and turn the rest into garbage.
			v = strings.Join(strings.Fields(v), " ")
			cfg = append(cfg, benchfmt.Config{Key: k, Value: []byte(v), File: true})
		}
	}
	add("ncdevmem", r.Tool.Version)
	add("commit", r.Tool.Commit)
	for _, role := range []string{"source", "target"} {
		if e := r.Env[role]; e != nil {
			add(role+"-kernel", e.KernelRelease)
			add(role+"-cpu", e.CPUModel)
			add(role+"-driver", e.Driver)
		}
	}
	c := &r.Config
	add("duration-sec", strconv.FormatFloat(c.DurationSec, 'f', -1, 64))
	add("write-size", strconv.Itoa(c.WriteSize))
	add("read-size", strconv.Itoa(c.ReadSize))
	add("validate", c.Validate)
	add("msg-zerocopy", strconv.FormatBool(c.MsgZerocopy))
	add("msg-trunc", strconv.FormatBool(c.MsgTrunc))
	add("devmem-rx", strconv.FormatBool(c.DevmemRX))
	add("devmem-tx", strconv.FormatBool(c.DevmemTX))
	add("rx-mem", c.RxMem)
	add("tx-mem", c.TxMem)
	add("ifname", c.Ifname)
	if c.PaceGbps > 0 {
		add("pace-gbps", strconv.FormatFloat(c.PaceGbps, 'f', -1, 64))
	}
	return cfg
}
