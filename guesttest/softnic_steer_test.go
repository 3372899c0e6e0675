// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/report"
)

// The tests here close issue 12's steering gaps on softnic: one ntuple rule per flow, through an
// RSS context or without one, NAPI ids that agree with the bound queues, unsplit packets on a
// bound queue (fidelity row 1 on 7.x), and --rx-page-size above 4K (row 15).

// watchedRun is a devmem run of the softnic bench with namespace B's NIC state polled while it
// runs.
type watchedRun struct {
	res            *report.Result
	stdout, stderr string
	err            error
	// during is the first state seen with the run's rules in place (see runWatched), "" if none.
	during string
}

// runWatched runs `ncdevmem run args` and meanwhile polls `ethtool -n` and the RSS contexts
// 1-3 of B's end every 200 ms; the first snapshot with wantRules rules is kept.
func (b *softnicBench) runWatched(t *testing.T, wantRules int, args ...string) *watchedRun {
	t.Helper()
	w := &watchedRun{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
			out, err := nsCmd(b.lab.B, "ethtool", "-n", b.lab.B.Link).CombinedOutput()
			if err != nil || strings.Count(string(out), "Filter:") != wantRules {
				continue
			}
			var s strings.Builder
			s.Write(out)
			for ctx := 1; ctx <= 3; ctx++ {
				x, err := nsCmd(b.lab.B, "ethtool", "-x", b.lab.B.Link, "context", strconv.Itoa(ctx)).CombinedOutput()
				if err == nil {
					fmt.Fprintf(&s, "== context %d\n%s", ctx, x)
				}
			}
			w.during = s.String()
			return
		}
	}()
	w.res, w.stdout, w.stderr, w.err = b.run(t, args...)
	close(done)
	wg.Wait()
	return w
}

var (
	srcPortRE = regexp.MustCompile(`Src port: (\d+) mask: 0x0\b`)
	// ethtool -x context N: "    0:      2     3     2     3 ..." rows of the indirection table.
	indirRowRE = regexp.MustCompile(`(?m)^\s*\d+:((?:\s+\d+)+)\s*$`)
)

// rulePorts returns the source ports the rules in `ethtool -n` output match exactly.
func rulePorts(out string) []int {
	var p []int
	for _, m := range srcPortRE.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		p = append(p, n)
	}
	sort.Ints(p)
	return p
}

// contextQueues returns the queues an `ethtool -x ... context N` table spreads over.
func contextQueues(out string) []uint32 {
	seen := map[uint32]bool{}
	for _, m := range indirRowRE.FindAllStringSubmatch(out, -1) {
		for _, f := range strings.Fields(m[1]) {
			n, _ := strconv.Atoi(f)
			seen[uint32(n)] = true
		}
	}
	var q []uint32
	for n := range seen {
		q = append(q, n)
	}
	slices.Sort(q)
	return q
}

// checkRestored checks B's NIC state is before again as soon as the run returned: the client
// returns only after both servers sent restored (their teardown, the NIC restore included, is
// done), so there is nothing to wait for.
func (b *softnicBench) checkRestored(t *testing.T, what, before string) {
	t.Helper()
	checkSame(t, what, before, snicState(t, b.lab.B, b.lab.B.Link))
}

// checkNapi fails t unless every flow's socket NAPI id is one of the bound queues' and the bound
// queues' qstats carry the bytes the flows received.
func checkNapi(t *testing.T, r *report.Result, bound []uint32, flows int) {
	t.Helper()
	d := r.Runs[0].Target.Devmem
	if d == nil || d.Napi == nil {
		t.Fatalf("the run's JSON has no devmem.napi: %+v", d)
	}
	t.Logf("NAPI: flows %+v, bound queues %+v", d.Napi.Flows, d.Napi.Queues)
	ids := map[uint32]uint32{}
	for _, q := range d.Napi.Queues {
		if q.NapiID == 0 {
			t.Errorf("bound queue %d has no NAPI id", q.Queue)
		}
		ids[q.NapiID] = q.Queue
	}
	var got []uint32
	for _, q := range d.Napi.Queues {
		got = append(got, q.Queue)
	}
	if !slices.Equal(got, bound) {
		t.Errorf("the report's bound queues %v, want %v", got, bound)
	}
	if len(d.Napi.Flows) != flows {
		t.Errorf("NAPI ids of %d flows, want %d", len(d.Napi.Flows), flows)
	}
	for _, f := range d.Napi.Flows {
		q, ok := ids[f.NapiID]
		switch {
		case f.NapiID == 0 || !ok:
			t.Errorf("flow %d: socket NAPI id %d is none of the bound queues' %v", f.Flow, f.NapiID, d.Napi.Queues)
		case f.Queue != int(q):
			t.Errorf("flow %d: NAPI id %d is queue %d's, the report says queue %d", f.Flow, f.NapiID, q, f.Queue)
		}
	}
	var payload uint64
	for _, f := range r.Runs[0].Target.Flows {
		payload += f.Bytes
	}
	rxBytes, rxPackets := d.Qstats["rx-bytes"], d.Qstats["rx-packets"]
	t.Logf("bound queues' qstats over the window: rx-bytes %d, rx-packets %d; flows received %d payload bytes", rxBytes, rxPackets, payload)
	// rx-bytes counts whole frames (headers too) and both are window deltas read a little apart.
	if payload == 0 || rxBytes < payload*9/10 {
		t.Errorf("the bound queues' qstats carry %d bytes for %d payload bytes received", rxBytes, payload)
	}
}

// TestGuestSoftnicRunRulePerFlow: `ncdevmem run --devmem-rx -n N` writes one ntuple rule per
// flow before the flows connect (the target chose each flow's source port, the source bound it):
// N src-port rules in `ethtool -n` during the run, none after. With --rss-context on (-n 4) the
// rules point at a new RSS context spread over the devmem queues; with --rss-context off (-n 2)
// each names a devmem queue and no context exists. Either way every flow's socket NAPI id is one
// of the bound queues', whose qstats carry the bytes, and the NIC is restored exactly.
func TestGuestSoftnicRunRulePerFlow(t *testing.T) {
	b := newSoftnicBench(t)
	bound := lastQueues(t, b.lab.B, b.lab.B.Link, 2)
	for _, c := range []struct {
		ctx   string
		flows int
	}{{"on", 4}, {"off", 2}} {
		t.Run("rss-context="+c.ctx, func(t *testing.T) {
			before := snicState(t, b.lab.B, b.lab.B.Link)
			w := b.runWatched(t, c.flows, "--devmem-rx", "-f", b.lab.B.Link, "--num-rx-queues", "2", "-n", strconv.Itoa(c.flows),
				"--rss-context", c.ctx, "--time", "2s", "--validate", "on", "--dmabuf-size", "32M")
			if w.err != nil {
				t.Fatalf("ncdevmem run: %v\nstdout:\n%s\nstderr:\n%s", w.err, w.stdout, w.stderr)
			}
			row(t, w.res, "rx")
			t.Logf("during the run:\n%s", w.during)
			if w.during == "" {
				t.Fatalf("never saw %d rules in ethtool -n %s during the run\nstdout:\n%s", c.flows, b.lab.B.Link, w.stdout)
			}
			rules, table, hasCtx := strings.Cut(w.during, "== context ")
			ports := rulePorts(rules)
			if len(ports) != c.flows || len(slices.Compact(slices.Clone(ports))) != c.flows {
				t.Errorf("rules match source ports %v, want %d different ones", ports, c.flows)
			}
			for _, p := range ports {
				if p < 61000 {
					t.Errorf("source port %d is not one the target chose (61000-65535)", p)
				}
			}
			if c.ctx == "on" {
				if !hasCtx || strings.Count(rules, "RSS Context ID:") != c.flows {
					t.Fatalf("--rss-context on: no RSS context, or rules not pointing at one")
				}
				if q := contextQueues(table); !slices.Equal(q, bound) {
					t.Errorf("the RSS context spreads over queues %v, want the devmem queues %v", q, bound)
				}
			} else {
				if hasCtx || strings.Contains(rules, "RSS Context ID:") {
					t.Errorf("--rss-context off: an RSS context was used")
				}
				for _, q := range bound {
					if !strings.Contains(rules, fmt.Sprintf("Action: Direct to queue %d", q)) {
						t.Errorf("--rss-context off: no rule directs to devmem queue %d", q)
					}
				}
			}
			checkNapi(t, w.res, bound, c.flows)
			b.checkRestored(t, "after the run", before)
		})
	}
}

// TestGuestSoftnicRunUnsplit (fidelity row 1 on 7.x): softnic's unsplit_every switch delivers
// every 7th segment whole, payload in the linear area, although header split is on and
// hds-thresh 0, as a NIC does with a packet it cannot parse. Those bytes reach the socket on the
// bound queue as plain bytes: the run counts them as linear payload, validates them, and passes.
func TestGuestSoftnicRunUnsplit(t *testing.T) {
	b := newSoftnicBench(t)
	SoftnicParam(t, "unsplit_every", "7")
	before := SoftnicCounters(t, b.lab.B, b.lab.B.Link)
	r, stdout, stderr, err := b.run(t, "--devmem-rx", "-f", b.lab.B.Link, "-n", "1", "--time", "2s",
		"--validate", "on", "--dmabuf-size", "32M")
	after := SoftnicCounters(t, b.lab.B, b.lab.B.Link)
	unsplit := after["rx_fault_unsplit"] - before["rx_fault_unsplit"]
	linear := after["rx_linear_payload_bytes"] - before["rx_linear_payload_bytes"]
	t.Logf("softnic: rx_fault_unsplit +%d, rx_linear_payload_bytes +%d", unsplit, linear)
	if err != nil {
		t.Fatalf("ncdevmem run with unsplit packets on the bound queue: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	m := row(t, r, "rx")
	d := r.Runs[0].Target.Devmem
	t.Logf("dma-buf bytes %d, linear bytes %d (%v validated)", d.DmabufBytes, d.LinearBytes, m["validated_bytes"])
	if unsplit == 0 || linear == 0 {
		t.Fatalf("softnic delivered nothing unsplit: the switch did not fire")
	}
	if d.LinearBytes == 0 || d.DmabufBytes == 0 {
		t.Errorf("want both linear (%d) and dma-buf (%d) bytes", d.LinearBytes, d.DmabufBytes)
	}
	// The window holds most, not all, of what softnic delivered unsplit during the whole run.
	if d.LinearBytes > linear {
		t.Errorf("the run counted %d linear bytes, more than softnic left linear (%d)", d.LinearBytes, linear)
	}
}

// TestGuestSoftnicRunRxPageSize (fidelity row 15 through `run`): --rx-page-size 16K binds with
// 16 KiB net_iovs (several frags share one), on a hugetlb-backed udmabuf; validation on, every
// byte through the dma-buf, 0 mismatches.
func TestGuestSoftnicRunRxPageSize(t *testing.T) {
	if !KernelRelease(t).AtLeast(7, 0) {
		t.Skipf("kernel %s has no rx-page-size for bind-rx (7.x has it): softnic builds its pools with 4 KiB pages here", KernelRelease(t))
	}
	b := newSoftnicBench(t)
	before := snicState(t, b.lab.B, b.lab.B.Link)
	r, stdout, stderr, err := b.run(t, "--devmem-rx", "-f", b.lab.B.Link, "-n", "2", "--rx-page-size", "16K",
		"--time", "2s", "--validate", "on", "--dmabuf-size", "32M")
	if err != nil {
		t.Fatalf("ncdevmem run --rx-page-size 16K: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	row(t, r, "rx")
	d := r.Runs[0].Target.Devmem
	t.Logf("devmem counters: dma-buf %d, linear %d, frags %d, tokens %d, DONTNEED calls %d, page pool %v",
		d.DmabufBytes, d.LinearBytes, d.Frags, d.Tokens, d.DontneedCalls, d.PagePool)
	if d.DmabufBytes == 0 || d.Tokens == 0 {
		t.Errorf("nothing came through the dma-buf")
	}
	b.checkRestored(t, "after the run", before)
}
