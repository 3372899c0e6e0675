// SPDX-License-Identifier: MIT

package metrics

import (
	"testing"

	"github.com/devmemtcp/ncdevmem/report"
)

func TestZcrxFigures(t *testing.T) {
	run := &report.Run{Duration: 1}
	run.Target.Devmem = &report.Devmem{Zcrx: &report.Zcrx{Bytes: 4096, Completions: 2, AvgCompletion: 2048,
		RefillBatches: 1, RefillEntries: 2, CopyCounted: true, CopyCount: 1, CopyBytes: 100}}
	m := Of(run)
	for name, want := range map[string]float64{"zcrx.bytes": 4096, "zcrx.completions": 2, "zcrx.avg_completion": 2048,
		"zcrx.refill_batches": 1, "zcrx.refill_entries": 2, "zcrx.copy_count": 1, "zcrx.copy_bytes": 100} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
		if !Known(name) {
			t.Errorf("%s not Known", name)
		}
	}
	if Unit("zcrx.avg_completion") != "B" || Unit("zcrx.completions") != "count" {
		t.Errorf("units %s %s", Unit("zcrx.avg_completion"), Unit("zcrx.completions"))
	}
	// Uncounted copy fallbacks are absent, not zero.
	run.Target.Devmem.Zcrx.CopyCounted = false
	m = Of(run)
	if _, ok := m["zcrx.copy_bytes"]; ok {
		t.Error("zcrx.copy_bytes present although the kernel does not count copies")
	}
}
