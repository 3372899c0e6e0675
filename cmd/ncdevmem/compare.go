// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/devmemtcp/ncdevmem/compare"
	"github.com/spf13/cobra"
)

// compareOptions are the flags of `ncdevmem compare`.
type compareOptions struct {
	Files     []string
	Format    string // text, json, benchfmt
	JSON      bool
	Matched   bool
	Tolerance string
	Plot      string
}

func newCompareCmd() *cobra.Command {
	o := &compareOptions{}
	cmd := &cobra.Command{
		Use:   "compare BEFORE.json AFTER.json [MORE.json...]",
		Short: "Before/after statistics of repeated runs",
		Long: `compare summarises the runs of each result written by 'ncdevmem run --runs N --json FILE'
and compares every later result with the first: for each figure (total and per-flow Gbps, per-role
CPU usr/sys/idle/iow/irq/sirq, CPU-seconds per GB, retransmits, devmem counters) the median, its 95%
confidence interval and the standard deviation per input, the change of the median and a
Mann-Whitney U-test p-value, "~" where the change is not significant. Differences in environment
(kernel, driver, rings, IRQ affinity...) and configuration are listed first.

Give at least 6 runs per input: with fewer the test cannot tell a change from noise.

  ncdevmem compare before.json after.json
  ncdevmem compare --matched --tolerance 2% before.json after.json
  ncdevmem compare --format benchfmt before.json after.json > runs.txt; benchstat -col input runs.txt
  ncdevmem compare --plot runs.svg before.json after.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Files = args
			if cmd.Flags().Changed("tolerance") && !o.Matched {
				return usageErrorf("compare: --tolerance applies to --matched only (add --matched)")
			}
			return runCompare(o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Format, "format", "text", "output format: text, json or benchfmt (Go benchmark format for benchstat)")
	f.BoolVar(&o.JSON, "json", false, "same as --format json")
	f.BoolVar(&o.Matched, "matched", false, "compare CPU only among runs whose throughput lies within --tolerance of each other")
	f.StringVar(&o.Tolerance, "tolerance", "2%", "throughput window of --matched, as a percentage (2% or 2) of the slowest qualifying run")
	f.StringVar(&o.Plot, "plot", "", "also draw throughput and CPU idle per run of each input into this SVG file")
	return cmd
}

// parseTolerance accepts "2%", "2" (both two percent) and returns the fraction.
func parseTolerance(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")), 64)
	if err != nil || !(v > 0 && v < 100) {
		return 0, fmt.Errorf("--tolerance %q: want a percentage above 0 and below 100, e.g. 2%%", s)
	}
	return v / 100, nil
}

// runCompare validates everything (flags, every input) before writing anything, so bad input leaves
// no half-written plot behind.
func runCompare(o *compareOptions, stdout io.Writer) error {
	if o.JSON {
		if o.Format != "text" && o.Format != "json" {
			return usageErrorf("compare: --json and --format %s disagree: give one", o.Format)
		}
		o.Format = "json"
	}
	switch o.Format {
	case "text", "json", "benchfmt":
	default:
		return usageErrorf("compare: --format %q: want text, json or benchfmt", o.Format)
	}
	tol, err := parseTolerance(o.Tolerance)
	if err != nil {
		return usageErrorf("compare: %v", err)
	}
	if len(o.Files) < 2 {
		return usageErrorf("compare: need at least two results to compare, got %d (usage: ncdevmem compare BEFORE.json AFTER.json [MORE.json...])", len(o.Files))
	}
	in := make([]*compare.Input, 0, len(o.Files))
	names := shortNames(o.Files)
	for i, p := range o.Files {
		inp, err := compare.Load(p)
		if err != nil {
			return usageErrorf("compare: %v", err)
		}
		inp.Name = names[i]
		in = append(in, inp)
	}
	rep, err := compare.Compare(in, compare.Options{Matched: o.Matched, Tolerance: tol})
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	var out bytes.Buffer
	switch o.Format {
	case "json":
		err = rep.WriteJSON(&out)
	case "benchfmt":
		err = compare.WriteBenchfmt(&out, in)
	default:
		err = rep.WriteText(&out)
	}
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if o.Plot != "" {
		if err := writePlot(o.Plot, in); err != nil {
			return err
		}
	}
	_, err = stdout.Write(out.Bytes())
	return err
}

// shortNames names each input by the fewest trailing path elements that tell it apart from the
// others (runs/a/result.json and runs/b/result.json become a/result.json and b/result.json), so
// table columns stay narrow; a path given twice keeps its full form.
func shortNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		parts := strings.Split(filepath.Clean(p), string(filepath.Separator))
		out[i] = p
		for n := 1; n <= len(parts); n++ {
			cand := strings.Join(parts[len(parts)-n:], string(filepath.Separator))
			unique := true
			for j, q := range paths {
				if j == i || filepath.Clean(q) == filepath.Clean(p) {
					continue
				}
				qc := filepath.Clean(q)
				if qc == cand || strings.HasSuffix(qc, string(filepath.Separator)+cand) {
					unique = false
					break
				}
			}
			if unique {
				out[i] = cand
				break
			}
		}
	}
	return out
}

// writePlot writes the SVG to path (see outputFile: a failure never leaves a truncated plot where an
// older one was, and /dev/null stays a device).
func writePlot(path string, in []*compare.Input) error {
	var buf bytes.Buffer
	if err := compare.WritePlot(&buf, in); err != nil {
		return fmt.Errorf("compare: plot %s: %w", path, err)
	}
	out, err := createOutput(path)
	if err != nil {
		return fmt.Errorf("compare: plot %s: %w", path, err)
	}
	defer out.Abort()
	if _, err := out.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("compare: plot %s: %w", path, err)
	}
	if err := out.Commit(); err != nil {
		return fmt.Errorf("compare: plot %s: %w", path, err)
	}
	return nil
}
