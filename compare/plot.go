// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package compare

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/devmemtcp/ncdevmem/metrics"
)

// Plot geometry, in SVG user units (pixels).
const (
	plotW      = 760
	panelH     = 250
	legendH    = 40
	marginL    = 70
	marginR    = 20
	marginT    = 30
	marginB    = 40
	markerSize = 3.5
)

// palette is colour-blind safe (Okabe–Ito), in the order inputs get them.
var palette = []string{"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#f0e442", "#000000"}

// panel is one chart: a figure per run, one series per input.
type panel struct {
	title  string
	metric string
}

// WritePlot draws an SVG with two charts, throughput per run and the target's app (worker) CPU idle
// per run (the target's all-CPU idle, then the source's, when no app CPU was recorded), one series
// per input: the picture that shows at a
// glance whether a change is real or one noisy run. Each series is a <g class="series"
// data-input="NAME"> holding a polyline and one circle per run (with a tooltip title).
func WritePlot(w io.Writer, in []*Input) error {
	// Worker (app) idle is the figure cover letters quote; the mean over all flow CPUs stands in
	// when no app CPU was listed, and the source's when the target recorded no CPUs.
	idle, title := "", "CPU idle (%) per run"
	for _, c := range []struct{ metric, title string }{
		{"rx.app.idle", "target app CPU idle (%, mean over app CPUs) per run"},
		{"rx.all.idle", "target CPU idle (%, mean over flow CPUs) per run"},
		{"tx.app.idle", "source app CPU idle (%, mean over app CPUs) per run"},
		{"tx.all.idle", "source CPU idle (%, mean over flow CPUs) per run"},
	} {
		if anyHas(in, c.metric) {
			idle, title = c.metric, c.title
			break
		}
	}
	if idle == "" {
		idle = "rx.app.idle"
	}
	panels := []panel{
		{title: "throughput received (Gbps) per run", metric: "gbps"},
		{title: title, metric: idle},
	}
	h := legendH + len(panels)*panelH
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">
<rect width="100%%" height="100%%" fill="white"/>
`, plotW, h, plotW, h)
	// Legend.
	b.WriteString(`<g class="legend">` + "\n")
	x := float64(marginL)
	for i, inp := range in {
		c := palette[i%len(palette)]
		fmt.Fprintf(&b, `<line x1="%.1f" y1="20" x2="%.1f" y2="20" stroke="%s" stroke-width="2"/><circle cx="%.1f" cy="20" r="%.1f" fill="%s"/><text x="%.1f" y="24">%s</text>`+"\n",
			x, x+24, c, x+12, markerSize, c, x+30, esc(inp.Name))
		x += 40 + 7*float64(len([]rune(inp.Name)))
	}
	b.WriteString("</g>\n")
	for p, pn := range panels {
		drawPanel(&b, in, pn, float64(legendH+p*panelH))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func anyHas(in []*Input, metric string) bool {
	for _, inp := range in {
		for k := range inp.Result.Runs {
			if _, ok := metrics.Of(&inp.Result.Runs[k])[metric]; ok {
				return true
			}
		}
	}
	return false
}

func drawPanel(b *strings.Builder, in []*Input, pn panel, top float64) {
	x0, x1 := float64(marginL), float64(plotW-marginR)
	y0, y1 := top+panelH-marginB, top+marginT // y0 is the bottom
	maxRuns := 1
	lo, hi := math.Inf(1), math.Inf(-1)
	series := make([][]float64, len(in)) // NaN where a run lacks the figure
	for i, inp := range in {
		maxRuns = max(maxRuns, len(inp.Result.Runs))
		for k := range inp.Result.Runs {
			v, ok := metrics.Of(&inp.Result.Runs[k])[pn.metric]
			if !ok {
				v = math.NaN()
			} else {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			series[i] = append(series[i], v)
		}
	}
	fmt.Fprintf(b, `<g class="panel" data-metric="%s">`+"\n", esc(pn.metric))
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-weight="bold">%s</text>`+"\n", x0, top+18, esc(pn.title))
	if math.IsInf(lo, 1) {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">not recorded in any input</text>`+"\n</g>\n", x0, (y0+y1)/2)
		return
	}
	ticks := niceTicks(lo, hi)
	ylo, yhi := ticks[0], ticks[len(ticks)-1]
	sy := func(v float64) float64 { return y0 - (v-ylo)/(yhi-ylo)*(y0-y1) }
	sx := func(run int) float64 { // run is 1-based
		if maxRuns == 1 {
			return (x0 + x1) / 2
		}
		return x0 + 10 + float64(run-1)/float64(maxRuns-1)*(x1-x0-20)
	}
	// Axes, grid and tick labels.
	fmt.Fprintf(b, `<g class="axes" stroke="black"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/></g>`+"\n",
		x0, y0, x1, y0, x0, y0, x0, y1)
	for _, t := range ticks {
		y := sy(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#dddddd"/><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n",
			x0, y, x1, y, x0-6, y+4, esc(metrics.Format(t)))
	}
	step := max(1, maxRuns/10)
	for run := 1; run <= maxRuns; run += step {
		x := sx(run)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/><text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n",
			x, y0, x, y0+4, x, y0+17, run)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">run</text>`+"\n", (x0+x1)/2, y0+33)
	for i, vals := range series {
		c := palette[i%len(palette)]
		fmt.Fprintf(b, `<g class="series" data-input="%s" stroke="%s" fill="%s">`+"\n", esc(in[i].Name), c, c)
		var pts []string
		for k, v := range vals {
			if !math.IsNaN(v) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(k+1), sy(v)))
			}
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke-width="2" points="%s"/>`+"\n", strings.Join(pts, " "))
		for k, v := range vals {
			if math.IsNaN(v) {
				continue
			}
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="%.1f"><title>%s run %d: %s</title></circle>`+"\n",
				sx(k+1), sy(v), markerSize, esc(in[i].Name), k+1, esc(metrics.Format(v)))
		}
		b.WriteString("</g>\n")
	}
	b.WriteString("</g>\n")
}

// niceTicks returns 3 to about 7 evenly spaced round values (steps of 1, 2 or 5 times a power of
// ten) covering lo..hi; a flat series gets a band around its value.
func niceTicks(lo, hi float64) []float64 {
	if hi-lo < 1e-9*math.Max(1, math.Abs(hi)) {
		d := math.Max(math.Abs(hi)*0.05, 1)
		lo, hi = lo-d, hi+d
	}
	raw := (hi - lo) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	if math.IsInf(step, 0) || math.IsNaN(step) || step <= 0 {
		// A range beyond float64 (absurd input): two ticks at the ends still draw.
		return []float64{lo, hi}
	}
	start := math.Floor(lo/step) * step
	var t []float64
	for v := start; v < hi+step*0.999; v += step {
		// Round away binary fractions so labels read 0.3, not 0.30000000000000004.
		t = append(t, math.Round(v/step)*step)
	}
	if len(t) < 2 {
		t = append(t, t[len(t)-1]+step)
	}
	return t
}

var xmlEsc = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

// esc escapes text for both element content and attribute values, and drops characters XML 1.0
// cannot carry at all (control characters in a file name).
func esc(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xfffe || r == 0xffff {
			return -1
		}
		return r
	}, s)
	return xmlEsc.Replace(s)
}
