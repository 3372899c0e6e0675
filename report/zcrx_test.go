// SPDX-License-Identifier: MIT

package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestZcrxText(t *testing.T) {
	z := &Zcrx{Queue: 1, Area: "host", AreaBytes: 64 << 20, BufLen: 4096, Bytes: 1 << 30, Completions: 262144,
		AvgCompletion: 4096, RefillBatches: 8192, RefillEntries: 262144, CopyCounted: true, CopyCount: 10, CopyBytes: 1 << 20}
	var b bytes.Buffer
	writeDevmemText(&b, &Devmem{Zcrx: z, Qstats: map[string]uint64{"rx-packets": 5}})
	out := b.String()
	for _, want := range []string{
		"zcrx: queue 1, host area of 67108864 bytes, 4096-byte buffers",
		"1073741824 bytes in 262144 completions (avg 4096 bytes), 8192 refill batches (avg 32.0 buffers)",
		"copy fallbacks: 1048576 bytes (0.10%) in 10 copied frags",
		"qstats",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "dmabuf") {
		t.Errorf("zcrx text shows devmem's dma-buf counters:\n%s", out)
	}
	z.CopyCounted = false
	b.Reset()
	writeDevmemText(&b, &Devmem{Zcrx: z})
	if !strings.Contains(b.String(), "copy fallbacks: not counted by this kernel") {
		t.Errorf("unknown copy counters shown as figures:\n%s", b.String())
	}
	j, err := json.Marshal(&Devmem{Zcrx: z})
	if err != nil || !strings.Contains(string(j), `"zcrx":{"queue":1`) || !strings.Contains(string(j), `"copy_counted":false`) {
		t.Errorf("JSON %s %v", j, err)
	}
}
