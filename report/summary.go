// SPDX-License-Identifier: MIT

package report

import "math"

// Stat summarises one figure over several runs.
type Stat struct {
	N      int
	Mean   float64
	Stddev float64 // sample standard deviation (n-1); 0 for fewer than 2 values
	Min    float64
	Max    float64
}

// Summarize returns the mean, standard deviation, minimum and maximum of v (all zero for no values).
func Summarize(v []float64) Stat {
	s := Stat{N: len(v)}
	if len(v) == 0 {
		return s
	}
	s.Min, s.Max = v[0], v[0]
	var sum float64
	for _, x := range v {
		sum += x
		s.Min = math.Min(s.Min, x)
		s.Max = math.Max(s.Max, x)
	}
	s.Mean = sum / float64(len(v))
	if len(v) > 1 {
		var ss float64
		for _, x := range v {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.Stddev = math.Sqrt(ss / float64(len(v)-1))
	}
	return s
}

// HasRole reports whether a CPU with role r serves role want ("net+app" serves both).
func HasRole(r, want string) bool {
	return r == want || (r == "net+app" && (want == "net" || want == "app"))
}

// RoleAvg is the mean CPU split of the side's CPUs that serve role ("net" or "app"; "net+app" CPUs
// count for both; "all" is every listed CPU, each once); ok is false when the side lists no such CPU.
func (s Side) RoleAvg(role string) (avg CPU, ok bool) {
	n := 0
	for _, c := range s.CPUs {
		if role != "all" && !HasRole(c.Role, role) {
			continue
		}
		n++
		avg.Usr += c.Usr
		avg.Sys += c.Sys
		avg.Idle += c.Idle
		avg.Iow += c.Iow
		avg.Irq += c.Irq
		avg.Sirq += c.Sirq
		avg.Steal += c.Steal
	}
	if n == 0 {
		return CPU{}, false
	}
	f := 1 / float64(n)
	avg = CPU{CPU: -1, Role: role, Usr: avg.Usr * f, Sys: avg.Sys * f, Idle: avg.Idle * f, Iow: avg.Iow * f,
		Irq: avg.Irq * f, Sirq: avg.Sirq * f, Steal: avg.Steal * f}
	return avg, true
}
