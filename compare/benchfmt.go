// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package compare

import (
	"io"
	"strconv"
	"strings"

	"github.com/devmemtcp/ncdevmem/metrics"
	"golang.org/x/perf/benchfmt"
)

// WriteBenchfmt writes every run of every input in the Go benchmark format: a file configuration
// block per input ("input: NAME", plus the target kernel and flow count when recorded), then one
// "BenchmarkNcdevmem 1 V UNIT ..." line per run whose units are the figure names. benchstat reads it:
//
//	ncdevmem compare --format benchfmt before.json after.json > runs.txt
//	benchstat -col input runs.txt
func WriteBenchfmt(w io.Writer, in []*Input) error {
	bw := benchfmt.NewWriter(w)
	// Unit metadata first: which way is better, for the figures that have a direction.
	seen := map[string]bool{}
	var units []string
	for _, inp := range in {
		for k := range inp.Result.Runs {
			for n := range metrics.Of(&inp.Result.Runs[k]) {
				if !seen[n] {
					seen[n] = true
					units = append(units, n)
				}
			}
		}
	}
	metrics.Sort(units)
	for _, u := range units {
		better := ""
		switch {
		case metrics.HigherIsBetter(u):
			better = "higher"
		case lowerIsBetter(u):
			better = "lower"
		default:
			continue
		}
		m := &benchfmt.UnitMetadata{UnitMetadataKey: benchfmt.UnitMetadataKey{Unit: u, Key: "better"}, OrigUnit: u, Value: better}
		if err := bw.Write(m); err != nil {
			return err
		}
	}
	for _, inp := range in {
		res := &benchfmt.Result{Name: benchfmt.Name("Ncdevmem"), Iters: 1}
		setFileConfig(res, "input", inp.Name)
		if e := inp.Result.Env["target"]; e != nil {
			setFileConfig(res, "kernel", e.KernelRelease)
		}
		if f := inp.Result.Config.Flows; f > 0 {
			setFileConfig(res, "flows", strconv.Itoa(f))
		}
		for k := range inp.Result.Runs {
			m := metrics.Of(&inp.Result.Runs[k])
			names := make([]string, 0, len(m))
			for n := range m {
				names = append(names, n)
			}
			metrics.Sort(names)
			res.Values = res.Values[:0]
			for _, n := range names {
				res.Values = append(res.Values, benchfmt.Value{Value: m[n], Unit: n})
			}
			if err := bw.Write(res); err != nil {
				return err
			}
		}
	}
	return nil
}

// setFileConfig adds a configuration line; values are single-line and without leading spaces as
// the format requires.
func setFileConfig(r *benchfmt.Result, key, value string) {
	value = strings.Join(strings.Fields(value), " ")
	if value == "" {
		return
	}
	r.Config = append(r.Config, benchfmt.Config{Key: key, Value: []byte(value), File: true})
}
