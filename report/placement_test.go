// SPDX-License-Identifier: MIT

package report

import (
	"strings"
	"testing"
)

func TestPlacementWarnings(t *testing.T) {
	run := func(shared bool, src, dst, sirq []int) *Run {
		return &Run{SharedHost: shared,
			Source: Side{Flows: []Flow{{ID: 0, ThreadCPUs: src}}},
			Target: Side{Flows: []Flow{{ID: 0, ThreadCPUs: dst, SoftirqCPUs: sirq}}}}
	}
	for _, c := range []struct {
		name string
		run  *Run
		want string // "" for no warning
	}{
		{"apart", run(true, []int{0}, []int{1}, []int{0}), ""},
		{"two hosts", run(false, []int{0}, []int{0}, []int{0}), ""},
		{"collapsed", run(true, []int{1}, []int{1}, []int{1}), "all ran on CPU 1, so one CPU did all the work"},
		{"wandering", run(true, []int{0, 1}, []int{0, 1}, []int{0, 1}), "were each seen on CPU 0,1, so at times one CPU did the work of all three"},
		{"partly", run(true, []int{0}, []int{0, 1}, []int{0}), "were each seen on CPU 0, so at times"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := PlacementWarnings(c.run)
			switch {
			case c.want == "" && len(got) != 0:
				t.Fatalf("warnings %q, want none", got)
			case c.want != "" && (len(got) != 1 || !strings.Contains(got[0], c.want)):
				t.Fatalf("warnings %q, want one containing %q", got, c.want)
			}
		})
	}
}
