// SPDX-License-Identifier: MIT

package report

import (
	"bytes"
	"testing"
)

func TestFormatInterval(t *testing.T) {
	for _, tc := range []struct {
		iv   Interval
		want string
	}{
		{Interval{StartSec: 3, EndSec: 4, RxBytes: 11510000000, Gbps: 92.08}, "[SUM]   3.00-4.00   sec  10.7 GBytes   92.1 Gbits/sec"},
		{Interval{StartSec: 0, EndSec: 1, RxBytes: 117440512, Gbps: 0.944}, "[SUM]   0.00-1.00   sec   112 MBytes    944 Mbits/sec"},
		{Interval{StartSec: 10, EndSec: 11, RxBytes: 0, Gbps: 0}, "[SUM]  10.00-11.00  sec  0.00 Bytes   0.00 bits/sec"},
		{Interval{StartSec: 1, EndSec: 2, RxBytes: 50 << 30, Gbps: 400}, "[SUM]   1.00-2.00   sec  50.0 GBytes    400 Gbits/sec"},
	} {
		if got := FormatInterval(tc.iv); got != tc.want {
			t.Errorf("FormatInterval(%+v)\n got %q\nwant %q", tc.iv, got, tc.want)
		}
	}
	var b bytes.Buffer
	if err := WriteInterval(&b, Interval{EndSec: 1}); err != nil || b.Len() == 0 || b.Bytes()[b.Len()-1] != '\n' {
		t.Errorf("WriteInterval wrote %q, %v", b.String(), err)
	}
}
