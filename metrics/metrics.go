// SPDX-License-Identifier: MIT

package metrics

import (
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/devmemtcp/ncdevmem/report"
)

// Sides, roles and fields that make up the CPU figure names.
var (
	sides  = []string{"tx", "rx"}
	roles  = []string{"net", "app", "all"}
	fields = []string{"usr", "sys", "idle", "iow", "irq", "sirq", "steal"}
	// devmemCounters are the fixed counters of report.Devmem, in the order tables show them.
	devmemCounters = []string{"dmabuf_bytes", "linear_bytes", "frags", "page_aligned_frags",
		"tokens", "dontneed_calls", "short_dontneed"}
	// zcrxCounters are the figures of report.Zcrx (the target's io_uring zcrx counters).
	zcrxCounters = []string{"bytes", "completions", "avg_completion", "refill_batches", "refill_entries",
		"refill_stalls", "rearms", "copy_count", "copy_bytes"}
)

// Of flattens one run into named figures (see the package documentation for the names and units).
// A figure the run did not measure is absent from the map.
func Of(run *report.Run) map[string]float64 {
	m := make(map[string]float64)
	if run == nil {
		return m
	}
	var haveTx, haveRx bool
	flowRx := map[int]float64{}
	flowTx := map[int]float64{}
	var retrans float64
	var haveTCP bool
	var zcSends, zcCompl, zcCopied float64
	var haveZC bool
	for _, s := range []*report.Side{&run.Source, &run.Target} {
		for _, f := range s.Flows {
			switch f.Dir {
			case "rx":
				haveRx = true
				flowRx[f.ID] += f.Gbps
			default:
				haveTx = true
				flowTx[f.ID] += f.Gbps
			}
			if f.TCP != nil {
				retrans += float64(f.TCP.Retrans)
				haveTCP = true
			}
			if f.ZC != nil {
				zcSends += float64(f.ZC.Sends)
				zcCompl += float64(f.ZC.Completions)
				zcCopied += float64(f.ZC.Copied)
				haveZC = true
			}
		}
	}
	// Totals are all bytes over the longest window (report.Run.RxGbps), as the run report prints
	// them, not a sum of rounded per-flow rates.
	if haveTx {
		m["tx.gbps"] = run.TxGbps()
	}
	if haveRx {
		m["rx.gbps"] = run.RxGbps()
		m["gbps"] = m["rx.gbps"]
	} else if haveTx {
		m["gbps"] = m["tx.gbps"]
	}
	for id, g := range flowTx {
		m["flow"+strconv.Itoa(id)+".gbps"] = g
	}
	for id, g := range flowRx {
		m["flow"+strconv.Itoa(id)+".gbps"] = g
	}
	if haveTCP {
		m["retrans"] = retrans
	}
	if haveZC {
		m["zc.sends"] = zcSends
		m["zc.completions"] = zcCompl
		m["zc.copied"] = zcCopied
	}

	secs := run.Duration
	cpuSide(m, "tx", &run.Source, secs)
	cpuSide(m, "rx", &run.Target, secs)

	both := run.Source.Devmem != nil && run.Target.Devmem != nil
	for i, s := range []*report.Side{&run.Source, &run.Target} {
		if s.Devmem == nil {
			continue
		}
		addDevmem(m, "devmem.", s.Devmem)
		if both {
			addDevmem(m, sides[i]+".devmem.", s.Devmem)
		}
	}
	if d := run.Target.Devmem; d != nil && d.Zcrx != nil {
		addZcrx(m, d.Zcrx)
	}
	return m
}

// addZcrx adds the zcrx.* figures; the copy figures only when the kernel counted them.
func addZcrx(m map[string]float64, z *report.Zcrx) {
	for i, v := range []float64{float64(z.Bytes), float64(z.Completions), z.AvgCompletion, float64(z.RefillBatches),
		float64(z.RefillEntries), float64(z.RefillStalls), float64(z.Rearms), float64(z.CopyCount), float64(z.CopyBytes)} {
		if !z.CopyCounted && strings.HasPrefix(zcrxCounters[i], "copy_") {
			continue
		}
		m["zcrx."+zcrxCounters[i]] = v
	}
}

// cpuSide adds the per-role CPU means and the CPU cost per GB of one host, with the definitions the
// run report uses (report.Side.RoleAvg, report.CPUPerGB), so a gate and a report never disagree.
func cpuSide(m map[string]float64, side string, s *report.Side, secs float64) {
	if secs <= 0 {
		// Older or partial results: the flows' own window is the next best duration.
		var maxUsec uint64
		for _, f := range s.Flows {
			maxUsec = max(maxUsec, f.USec)
		}
		secs = float64(maxUsec) / 1e6
	}
	cost := report.CPUPerGB(*s, secs, report.GB(s.TotalBytes()))
	for _, role := range roles {
		avg, ok := s.RoleAvg(role)
		if !ok {
			continue
		}
		for i, v := range [...]float64{avg.Usr, avg.Sys, avg.Idle, avg.Iow, avg.Irq, avg.Sirq, avg.Steal} {
			m[side+"."+role+"."+fields[i]] = v
		}
		name := role
		if role == "all" {
			name = "total"
		}
		if c, ok := cost[name]; ok {
			m[side+".cpu_s_per_gb."+name] = c
		}
	}
}

func addDevmem(m map[string]float64, prefix string, d *report.Devmem) {
	for i, v := range []uint64{d.DmabufBytes, d.LinearBytes, d.Frags, d.PageAlignedFrags, d.Tokens,
		d.DontneedCalls, d.ShortDontneed} {
		m[prefix+devmemCounters[i]] += float64(v)
	}
	for k, v := range d.Qstats {
		m[prefix+"qstats."+k] += float64(v)
	}
	for k, v := range d.PagePool {
		m[prefix+"page_pool."+k] += float64(v)
	}
}

// Unit returns the unit of a figure name: "Gbps", "%", "s/GB", "B" or "count".
func Unit(name string) string {
	switch {
	case strings.HasSuffix(name, "gbps"):
		return "Gbps"
	case strings.Contains(name, ".cpu_s_per_gb."):
		return "s/GB"
	case isCPUField(name):
		return "%"
	case strings.HasSuffix(name, "bytes"), name == "zcrx.avg_completion":
		return "B"
	}
	return "count"
}

// IsCPU reports whether name is a CPU figure (a per-role time share or a CPU cost per GB): the
// figures `compare --matched` restricts to throughput-matched runs.
func IsCPU(name string) bool {
	return isCPUField(name) || strings.Contains(name, ".cpu_s_per_gb.")
}

func isCPUField(name string) bool {
	p := strings.Split(name, ".")
	return len(p) == 3 && in(p[0], sides) && in(p[1], roles) && in(p[2], fields)
}

func in(s string, set []string) bool {
	for _, x := range set {
		if x == s {
			return true
		}
	}
	return false
}

// HigherIsBetter reports whether a larger value of the figure is an improvement: throughput and CPU
// idle are; CPU time, CPU cost, retransmits and fallback counters are not. Counters with no
// direction (bytes, frags) report false.
func HigherIsBetter(name string) bool {
	return strings.HasSuffix(name, "gbps") || strings.HasSuffix(name, ".idle")
}

var (
	flowName   = regexp.MustCompile(`^flow[0-9]+\.gbps$`)
	devmemName = regexp.MustCompile(`^((tx|rx)\.)?devmem\.(qstats|page_pool)\.[a-z0-9_-]+$`)
)

// Names returns every fixed figure name, plus "flow0.gbps", "devmem.qstats.<name>" and
// "devmem.page_pool.<name>" standing for their families, in table order.
func Names() []string {
	n := []string{"gbps", "tx.gbps", "rx.gbps", "flow0.gbps"}
	for _, s := range sides {
		for _, r := range roles {
			for _, f := range fields {
				n = append(n, s+"."+r+"."+f)
			}
		}
	}
	for _, s := range sides {
		n = append(n, s+".cpu_s_per_gb.net", s+".cpu_s_per_gb.app", s+".cpu_s_per_gb.total")
	}
	n = append(n, "retrans", "zc.sends", "zc.completions", "zc.copied")
	for _, p := range []string{"devmem.", "tx.devmem.", "rx.devmem."} {
		for _, c := range devmemCounters {
			n = append(n, p+c)
		}
		n = append(n, p+"qstats.<name>", p+"page_pool.<name>")
	}
	for _, c := range zcrxCounters {
		n = append(n, "zcrx."+c)
	}
	return n
}

// Known reports whether name is a figure Of can produce.
func Known(name string) bool {
	if flowName.MatchString(name) || devmemName.MatchString(name) {
		return true
	}
	for _, n := range Names() {
		if n == name && !strings.HasSuffix(n, "<name>") {
			return true
		}
	}
	return false
}

// Sort orders figure names the way tables show them: throughput, per-flow throughput (by flow
// number), CPU shares, CPU cost, TCP, zero-copy, devmem; alphabetically within a family.
func Sort(names []string) {
	sort.SliceStable(names, func(i, j int) bool {
		ri, si := rank(names[i])
		rj, sj := rank(names[j])
		if ri != rj {
			return ri < rj
		}
		if si != sj {
			return si < sj
		}
		return names[i] < names[j]
	})
}

// rank returns a figure's family rank and its position within the family.
func rank(name string) (int, int) {
	switch name {
	case "gbps":
		return 0, 0
	case "tx.gbps":
		return 0, 1
	case "rx.gbps":
		return 0, 2
	}
	if flowName.MatchString(name) {
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "flow"), ".gbps"))
		return 1, n
	}
	if isCPUField(name) {
		p := strings.Split(name, ".")
		return 2, idx(p[0], sides)*100 + idx(p[1], roles)*10 + idx(p[2], fields)
	}
	if strings.Contains(name, ".cpu_s_per_gb.") {
		p := strings.Split(name, ".")
		r := map[string]int{"net": 0, "app": 1, "total": 2}[p[2]]
		return 3, idx(p[0], sides)*10 + r
	}
	switch name {
	case "retrans":
		return 4, 0
	case "zc.sends", "zc.completions", "zc.copied":
		return 5, idx(strings.TrimPrefix(name, "zc."), []string{"sends", "completions", "copied"})
	}
	prefix, counter := 0, name
	for i, p := range []string{"devmem.", "tx.devmem.", "rx.devmem."} {
		if strings.HasPrefix(name, p) {
			prefix, counter = i, strings.TrimPrefix(name, p)
		}
	}
	if i := idx(counter, devmemCounters); i >= 0 {
		return 6, prefix*100 + i
	}
	if strings.HasPrefix(counter, "qstats.") {
		return 6, prefix*100 + 50
	}
	if strings.HasPrefix(counter, "page_pool.") {
		return 6, prefix*100 + 60
	}
	if i := idx(strings.TrimPrefix(name, "zcrx."), zcrxCounters); strings.HasPrefix(name, "zcrx.") && i >= 0 {
		return 7, i
	}
	return 8, 0
}

func idx(s string, set []string) int {
	for i, x := range set {
		if x == s {
			return i
		}
	}
	return -1
}

// Format renders a figure value for people: integers exactly, other values to about four
// significant digits.
func Format(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'g', -1, 64)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 1000:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
