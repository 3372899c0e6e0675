// SPDX-License-Identifier: MIT

package report

import "math"

// Gbps is bytes*8 over usec microseconds, in gigabits per second (kperf's bytes*8/usec/1000);
// 0 when usec is 0.
func Gbps(bytes, usec uint64) float64 {
	if usec == 0 {
		return 0
	}
	return float64(bytes) * 8 / float64(usec) / 1000
}

// TotalBytes is the sum of the side's flows' bytes.
func (s Side) TotalBytes() uint64 {
	var n uint64
	for i := range s.Flows {
		n += s.Flows[i].Bytes
	}
	return n
}

// dirTotal sums the bytes of the flows in direction dir on both sides and returns them with the
// longest window among those flows.
func (r Run) dirTotal(dir string) (bytes, usec uint64, flows int) {
	for _, s := range []*Side{&r.Source, &r.Target} {
		for i := range s.Flows {
			f := &s.Flows[i]
			if f.Dir != dir {
				continue
			}
			bytes += f.Bytes
			usec = max(usec, f.USec)
			flows++
		}
	}
	return bytes, usec, flows
}

// RxGbps is the run's received throughput: all "rx" flows' bytes over the longest of their windows.
func (r Run) RxGbps() float64 { return Gbps(r.RxBytes(), r.rxUSec()) }

// TxGbps is the run's sent throughput: all "tx" flows' bytes over the longest of their windows.
func (r Run) TxGbps() float64 { return Gbps(r.TxBytes(), r.txUSec()) }

// RxBytes is the bytes of all "rx" flows.
func (r Run) RxBytes() uint64 { b, _, _ := r.dirTotal("rx"); return b }

// TxBytes is the bytes of all "tx" flows.
func (r Run) TxBytes() uint64 { b, _, _ := r.dirTotal("tx"); return b }

func (r Run) rxUSec() uint64 { _, u, _ := r.dirTotal("rx"); return u }
func (r Run) txUSec() uint64 { _, u, _ := r.dirTotal("tx"); return u }

// CPUPerGB is the CPU time the side's listed CPUs were busy (not idle, not in iowait) over a window
// of durSec seconds, per gigabyte (1e9 bytes) moved, by role: "net" (CPUs with role "net" or
// "net+app"), "app" ("app" or "net+app") and "total" (every listed CPU once). It returns nil when
// gb or durSec is not positive, since a cost per nothing means nothing, and when the side lists no
// CPU, since then nothing was measured (a role with no CPU of its own reads 0).
func CPUPerGB(side Side, durSec float64, gb float64) map[string]float64 {
	if !(gb > 0) || !(durSec > 0) || len(side.CPUs) == 0 {
		return nil
	}
	out := map[string]float64{"net": 0, "app": 0, "total": 0}
	for _, c := range side.CPUs {
		busy := math.Max(0, 100-c.Idle-c.Iow) / 100 * durSec
		for _, role := range []string{"net", "app"} {
			if HasRole(c.Role, role) {
				out[role] += busy
			}
		}
		out["total"] += busy
	}
	for k := range out {
		out[k] /= gb
	}
	return out
}

// GB is bytes in gigabytes (1e9 bytes), the unit CPUPerGB divides by.
func GB(bytes uint64) float64 { return float64(bytes) / 1e9 }
