// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package stats

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCounterDelta(t *testing.T) {
	before := map[string]uint64{"rx-packets": 100, "rx-bytes": 1000, "gone": 5, "reset": 900}
	after := map[string]uint64{"rx-packets": 150, "rx-bytes": 1000, "new": 7, "reset": 30}
	want := map[string]uint64{"rx-packets": 50, "rx-bytes": 0, "new": 7, "reset": 30}
	if d := cmp.Diff(want, CounterDelta(before, after)); d != "" {
		t.Fatalf("CounterDelta (-want +got):\n%s", d)
	}
	if CounterDelta(before, nil) != nil {
		t.Fatal("CounterDelta with nothing after is not nil")
	}
}
