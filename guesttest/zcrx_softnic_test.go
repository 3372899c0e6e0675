// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/metrics"
	"github.com/devmemtcp/ncdevmem/report"
)

// The zcrx tests over softnic (issue 16): `ncdevmem run --zcrx` between the lab's namespaces,
// through the same NIC preparation and restore as devmem RX, every byte validated in the area.

// zcrxRow prints one NCDEVMEM-ZCRX-ROW line (scripts/vm/zcrx-table.sh turns them into the guest
// report's zcrx tables) and returns the zcrx counters of the run.
func zcrxRow(t *testing.T, r *report.Result, mode, area string) *report.Zcrx {
	t.Helper()
	run := &r.Runs[len(r.Runs)-1]
	m := metrics.Of(run)
	row := map[string]any{"kernel": KernelRelease(t).String(), "mode": mode, "area": area, "flows": len(run.Target.Flows),
		"gbps": m["gbps"], "rx_cpu_s_per_gb": m["rx.cpu_s_per_gb.total"]}
	var z *report.Zcrx
	if d := run.Target.Devmem; d != nil {
		z = d.Zcrx
		if z != nil {
			row["bytes"], row["completions"], row["avg_completion"] = z.Bytes, z.Completions, z.AvgCompletion
			row["refill_batches"], row["refill_stalls"], row["rearms"] = z.RefillBatches, z.RefillStalls, z.Rearms
			if z.CopyCounted {
				row["copy_bytes"] = z.CopyBytes
			}
		} else {
			row["bytes"] = d.DmabufBytes + d.LinearBytes
		}
	}
	js, _ := json.Marshal(row)
	fmt.Printf("NCDEVMEM-ZCRX-ROW %s\n", js)
	return z
}

// TestGuestSoftnicZcrx: 1 and 4 flows into host-memory and udmabuf areas, validation on; the
// queue, header split, RSS and rules back exactly afterwards. On 6.12 the run is refused (no zcrx).
func TestGuestSoftnicZcrx(t *testing.T) {
	b := newSoftnicBench(t)
	link := b.lab.B.Link
	if rel := KernelRelease(t); !rel.AtLeast(6, 15) {
		before := snicState(t, b.lab.B, link)
		_, stdout, stderr, err := b.run(t, "--zcrx", "-f", link, "-n", "1", "--time", "1s")
		if err == nil || !strings.Contains(stdout+stderr, "no io_uring zero-copy receive") {
			t.Fatalf("kernel %s: --zcrx: %v\n%s%s", rel, err, stdout, stderr)
		}
		checkSame(t, "refused zcrx", before, snicState(t, b.lab.B, link))
		return
	}
	for _, area := range []string{"host", "udmabuf"} {
		for _, flows := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/flows=%d", area, flows), func(t *testing.T) {
				before := snicState(t, b.lab.B, link)
				r, stdout, stderr, err := b.run(t, "--zcrx", "-f", link, "--num-rx-queues", "1", "--rx-mem", area,
					"--zcrx-area-size", "32M", "-n", strconv.Itoa(flows), "--time", "2s", "--validate", "on")
				if err != nil {
					t.Fatalf("ncdevmem run --zcrx: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
				}
				t.Logf("stdout:\n%s", stdout)
				z := zcrxRow(t, r, "zcrx", area)
				if z == nil || z.Bytes == 0 || z.Completions == 0 || z.RefillBatches == 0 || z.Area != area {
					t.Fatalf("zcrx counters %+v", z)
				}
				var rx uint64
				for _, f := range r.Runs[0].Target.Flows {
					rx += f.Bytes
				}
				if rx == 0 {
					t.Fatal("no bytes received")
				}
				if z.CopyCounted && z.CopyBytes > z.Bytes/10 {
					t.Errorf("%d of %d bytes copied: the flows did not land on the zcrx queue", z.CopyBytes, z.Bytes)
				}
				checkSame(t, "after zcrx", before, snicState(t, b.lab.B, link))
			})
		}
	}
}

// TestGuestSoftnicZcrxPressure: areas of 64 KiB and 256 KiB (16 and 64 buffers) slow the run but
// never hang it or lose data: the run ends on time (the source's backlog arrives within the
// bench's drain after the window), every byte is validated, and the NIC comes back exactly. Before
// the receive windows were capped to fit the area (bench zcrxRcvbuf), the out-of-order queue behind
// one packet dropped for want of a buffer could take every buffer, and the source's backlog
// outlived the drain.
func TestGuestSoftnicZcrxPressure(t *testing.T) {
	b := newSoftnicBench(t)
	if !KernelRelease(t).AtLeast(6, 15) {
		t.Skip("no zcrx on this kernel: TestGuestSoftnicZcrx checks the refusal")
	}
	link := b.lab.B.Link
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"256K/paced", []string{"--zcrx-area-size", "256K", "--pace", "0.05", "-n", "1"}},
		{"256K/flows=4", []string{"--zcrx-area-size", "256K", "-n", "4"}},
		{"64K", []string{"--zcrx-area-size", "64K", "-n", "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snicState(t, b.lab.B, link)
			fails0 := SoftnicCounters(t, b.lab.B, link)["rx_alloc_fail"]
			start := time.Now()
			r, stdout, stderr, err := b.run(t, append([]string{"--zcrx", "-f", link, "--num-rx-queues", "1", "--time", "3s", "--validate", "on"}, tc.args...)...)
			if err != nil {
				t.Fatalf("ncdevmem run --zcrx %v: %v\nstdout:\n%s\nstderr:\n%s", tc.args, err, stdout, stderr)
			}
			fails := SoftnicCounters(t, b.lab.B, link)["rx_alloc_fail"] - fails0
			t.Logf("%.1f s from start to restored, %d packets dropped for want of a buffer\nstdout:\n%s\nstderr:\n%s", time.Since(start).Seconds(), fails, stdout, stderr)
			z := zcrxRow(t, r, "pressure-"+tc.name, "host")
			if z == nil || z.Bytes == 0 {
				t.Fatalf("no bytes through a small area: %+v", z)
			}
			if !strings.Contains(stderr, "receive buffer is capped") {
				t.Errorf("no receive-window cap for a small area:\n%s", stderr)
			}
			checkSame(t, "after the small-area run", before, snicState(t, b.lab.B, link))
		})
	}
}

// TestGuestSoftnicZcrxQueues: zcrx on 2 and 3 queues with 4 flows, one ifq (and area) per queue:
// the flows are spread over the queues by the RSS context, each flow is received through the ifq
// of the queue it arrives on, every byte is validated, and the NIC comes back exactly.
func TestGuestSoftnicZcrxQueues(t *testing.T) {
	b := newSoftnicBench(t)
	if !KernelRelease(t).AtLeast(6, 15) {
		t.Skip("no zcrx on this kernel: TestGuestSoftnicZcrx checks the refusal")
	}
	link := b.lab.B.Link
	arrives := regexp.MustCompile(`zcrx: flow (\d) arrives on ` + link + ` queue (\d+) \(zcrx ifq (\d+)\)`)
	for _, tc := range []struct {
		queues int
		area   string
		want   map[string]bool
	}{
		{2, "host", map[string]bool{"2": true, "3": true}},
		{3, "udmabuf", map[string]bool{"1": true, "2": true, "3": true}},
	} {
		t.Run(fmt.Sprintf("queues=%d/%s", tc.queues, tc.area), func(t *testing.T) {
			before := snicState(t, b.lab.B, link)
			r, stdout, stderr, err := b.run(t, "--zcrx", "-f", link, "--num-rx-queues", strconv.Itoa(tc.queues), "--rx-mem", tc.area,
				"--zcrx-area-size", "48M", "-n", "4", "--time", "2s", "--validate", "on")
			if err != nil {
				t.Fatalf("ncdevmem run --zcrx on %d queues: %v\nstdout:\n%s\nstderr:\n%s", tc.queues, err, stdout, stderr)
			}
			t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
			if n := strings.Count(stderr, "-byte "+tc.area+" area registered on "+link+" queue "); n != tc.queues {
				t.Errorf("%d ifqs registered, want %d", n, tc.queues)
			}
			got := map[string]string{}
			for _, m := range arrives.FindAllStringSubmatch(stderr, -1) {
				if !tc.want[m[2]] {
					t.Errorf("flow %s arrived on queue %s, not one of the zcrx queues %v", m[1], m[2], tc.want)
				}
				got[m[1]] = m[2]
			}
			if len(got) != 4 {
				t.Errorf("the queues of %d flows named, want 4: %v", len(got), got)
			}
			z := zcrxRow(t, r, fmt.Sprintf("queues=%d", tc.queues), tc.area)
			if z == nil || z.Bytes == 0 || z.AreaBytes != 48<<20/uint64(tc.queues)&^4095*uint64(tc.queues) {
				t.Fatalf("zcrx counters %+v", z)
			}
			// A flow whose bytes did not go through the ifq of its queue would have failed the run
			// (RECV_ZC answers EFAULT for another ifq's buffers), and every byte was validated, the
			// drain's included. A flow may still receive nothing inside the window: in the guest
			// both ends share two CPUs, and one ring's thread, pinned to a CPU that the other
			// queue's softirq and senders keep busy, was starved for the whole window once (load
			// 10 on the host); its flows caught up in the drain.
			for _, f := range r.Runs[0].Target.Flows {
				if f.Bytes == 0 {
					t.Logf("flow %d received nothing inside the window", f.ID)
				}
			}
			checkSame(t, "after zcrx on several queues", before, snicState(t, b.lab.B, link))
		})
	}
}

// TestGuestSoftnicZcrxCorruption: softnic flips one payload byte on the zcrx queue; the run fails
// naming flow 0 and the byte's stream offset, and the NIC is restored.
func TestGuestSoftnicZcrxCorruption(t *testing.T) {
	b := newSoftnicBench(t)
	if !KernelRelease(t).AtLeast(6, 15) {
		t.Skip("no zcrx on this kernel: TestGuestSoftnicZcrx checks the refusal")
	}
	const port, pos = 45124, 2_000_029
	want := armCorruption(t, b, port, pos)
	before := snicState(t, b.lab.B, b.lab.B.Link)
	_, stdout, stderr, err := b.run(t, "--zcrx", "-f", b.lab.B.Link, "--num-rx-queues", "1", "-n", "1", "--time", "3s", "--validate", "on")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("ncdevmem run --zcrx with a corrupted byte: %v (want exit 1)\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	for _, w := range []string{"flow 0", fmt.Sprintf("stream offset %d", want)} {
		if !strings.Contains(stderr+stdout, w) {
			t.Errorf("the failure does not name %q:\n%s%s", w, stdout, stderr)
		}
	}
	checkSame(t, "after the corrupted zcrx run", before, snicState(t, b.lab.B, b.lab.B.Link))
}

// TestGuestSoftnicZcrxSideBySide measures host-memory RX, devmem RX and zcrx RX on the same softnic
// boot, interleaved (host, devmem, zcrx, host, ...), 1 flow, validation on: Gbps and the receiver's
// CPU-seconds per GB, one NCDEVMEM-ZCRX-ROW line per run, the medians in the log.
func TestGuestSoftnicZcrxSideBySide(t *testing.T) {
	b := newSoftnicBench(t)
	if !KernelRelease(t).AtLeast(6, 15) {
		t.Skip("no zcrx on this kernel: the side-by-side runs on 7.x")
	}
	link := b.lab.B.Link
	modes := []struct {
		name string
		args []string
	}{
		{"host", nil},
		{"devmem", []string{"--devmem-rx", "-f", link, "--num-rx-queues", "1", "--dmabuf-size", "32M"}},
		{"zcrx", []string{"--zcrx", "-f", link, "--num-rx-queues", "1", "--zcrx-area-size", "32M"}},
	}
	const rounds = 3
	gbps := map[string][]float64{}
	cpu := map[string][]float64{}
	for round := range rounds {
		for _, m := range modes {
			args := append([]string{"-n", "1", "--time", "2s", "--validate", "on"}, m.args...)
			r, stdout, stderr, err := b.run(t, args...)
			if err != nil {
				t.Fatalf("round %d %s: %v\nstdout:\n%s\nstderr:\n%s", round, m.name, err, stdout, stderr)
			}
			zcrxRow(t, r, "side:"+m.name, "-")
			f := metrics.Of(&r.Runs[0])
			gbps[m.name] = append(gbps[m.name], f["gbps"])
			cpu[m.name] = append(cpu[m.name], f["rx.cpu_s_per_gb.total"])
		}
	}
	med := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	var tab strings.Builder
	fmt.Fprintf(&tab, "%-8s %10s %22s\n", "RX path", "Gbps", "rx CPU-s per GB")
	for _, m := range modes {
		fmt.Fprintf(&tab, "%-8s %10.3f %22.3f   (rounds: %v / %v)\n", m.name, med(gbps[m.name]), med(cpu[m.name]), gbps[m.name], cpu[m.name])
	}
	t.Logf("side by side, %d interleaved rounds, medians:\n%s", rounds, tab.String())
}
