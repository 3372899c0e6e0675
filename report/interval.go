// SPDX-License-Identifier: MIT

package report

import (
	"fmt"
	"io"
)

// FormatInterval renders one --interval sample the way iperf3 prints its [SUM] rows, so the live
// progress on stderr reads familiarly:
//
//	[SUM]   3.00-4.00   sec  10.7 GBytes  92.1 Gbits/sec
//
// Bytes use iperf3's binary units (GBytes = 2^30 bytes), the rate decimal bits per second.
func FormatInterval(iv Interval) string {
	return fmt.Sprintf("[SUM] %6.2f-%-6.2f sec %s  %s", iv.StartSec, iv.EndSec, iperfBytes(iv.RxBytes), iperfRate(iv.Gbps))
}

// WriteInterval writes FormatInterval(iv) and a newline to w.
func WriteInterval(w io.Writer, iv Interval) error {
	if _, err := io.WriteString(w, FormatInterval(iv)+"\n"); err != nil {
		return fmt.Errorf("write interval: %w", err)
	}
	return nil
}

// iperfBytes is iperf3's "%4.1f MBytes"-style byte count, with three significant digits.
func iperfBytes(n uint64) string {
	return scaled(float64(n), 1024, "Bytes", "KBytes", "MBytes", "GBytes", "TBytes")
}

// iperfRate is iperf3's "Mbits/sec"-style rate.
func iperfRate(gbps float64) string {
	return scaled(gbps*1e9, 1000, "bits/sec", "Kbits/sec", "Mbits/sec", "Gbits/sec", "Tbits/sec")
}

// scaled divides v by step until it is below step or the units run out, and prints it with sig3
// and its unit.
func scaled(v, step float64, units ...string) string {
	i := 0
	for v >= step && i < len(units)-1 {
		v /= step
		i++
	}
	return sig3(v) + " " + units[i]
}

// sig3 prints v with iperf3's precision rule: 3 significant digits, right-aligned in 5 columns.
func sig3(v float64) string {
	switch {
	case v < 9.995:
		return fmt.Sprintf("%5.2f", v)
	case v < 99.95:
		return fmt.Sprintf("%5.1f", v)
	}
	return fmt.Sprintf("%5.0f", v)
}
