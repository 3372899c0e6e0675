// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package stats

// CounterDelta returns after-before for every counter in after (netdev qstats, page-pool stats:
// monotonic kernel counters sampled at both ends of the window). A counter missing from before
// counts from zero; one that went backwards (the queue or page pool was reset, e.g. by a channel
// change) gives its after value, the part that can be vouched for, rather than a wrapped delta.
func CounterDelta(before, after map[string]uint64) map[string]uint64 {
	if len(after) == 0 {
		return nil
	}
	out := make(map[string]uint64, len(after))
	for k, a := range after {
		b := before[k]
		if a < b {
			out[k] = a
			continue
		}
		out[k] = a - b
	}
	return out
}
