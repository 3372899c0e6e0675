// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/devmem"
	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/internal/devmemsim"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/proto"
	"github.com/devmemtcp/ncdevmem/report"
	"github.com/devmemtcp/ncdevmem/rx"
)

// The tests here run ncdevmem itself over softnic: `ncdevmem run` between the lab's two
// namespaces through the real preparation path, the C-compatible command line, selftest, and the
// fidelity rows softnic can show. Each devmem run prints one NCDEVMEM-ROW line for the report.

// softnicBench is the lab with an `ncdevmem server` in each namespace: A sends, B receives.
type softnicBench struct {
	lab      *Softnic
	bin, key string
	src, dst string
}

func newSoftnicBench(t *testing.T) *softnicBench {
	t.Helper()
	CheckKernelLog(t)
	lab := SoftnicLab(t, false)
	b := &softnicBench{lab: lab, bin: ncdevmemBin(t), key: writeKey(t)}
	b.src = startServer(t, b.bin, lab.A, b.key)
	b.dst = startServer(t, b.bin, lab.B, b.key)
	return b
}

// run runs `ncdevmem run` from namespace A with args and returns the JSON result (nil when the
// run failed), stdout, stderr and the error.
func (b *softnicBench) run(t *testing.T, args ...string) (*report.Result, string, string, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "r.json")
	full := append([]string{"run", "--src", b.src, "--dst", b.dst, "--key-file", b.key, "--json", out}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", b.lab.A.Name, b.bin}, full...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return nil, stdout.String(), stderr.String(), err
	}
	f, ferr := os.Open(out)
	if ferr != nil {
		t.Fatalf("ncdevmem run %v: no JSON: %v\n%s", args, ferr, stderr.String())
	}
	defer f.Close()
	r, rerr := report.ReadJSON(f)
	if rerr != nil {
		t.Fatalf("ncdevmem run %v: %v", args, rerr)
	}
	return r, stdout.String(), stderr.String(), nil
}

// snicState is what must come back exactly after a run: ethtool -g, -l, -x, -n, the RSS contexts
// 1-3 (none should exist), and per queue of the netdev family whether a dma-buf holds it.
func snicState(t *testing.T, ns *testnet.NS, link string) string {
	t.Helper()
	var b strings.Builder
	for _, opt := range []string{"-g", "-l", "-x", "-n"} {
		fmt.Fprintf(&b, "== ethtool %s\n%s", opt, nsRun(t, ns, "ethtool", opt, link))
	}
	for ctx := 1; ctx <= 3; ctx++ {
		out, err := nsCmd(ns, "ethtool", "-x", link, "context", strconv.Itoa(ctx)).CombinedOutput()
		fmt.Fprintf(&b, "== context %d: exists %v\n", ctx, err == nil && bytes.Contains(out, []byte("indirection table")))
	}
	err := netdevIn(ns, link, func(c *bind.Client, ifindex int) error {
		qs, err := c.Queues(ifindex)
		if err != nil {
			return err
		}
		for _, q := range qs {
			fmt.Fprintf(&b, "== queue %v %d held %v\n", q.Type, q.ID, q.Held())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("netdev queues of %s: %v", link, err)
	}
	return b.String()
}

// netdevIn runs f inside ns (nil: here) with a netdev netlink client and link's ifindex.
func netdevIn(ns *testnet.NS, link string, f func(c *bind.Client, ifindex int) error) error {
	return doIn(ns, func() error {
		c, err := bind.Dial()
		if err != nil {
			return err
		}
		defer c.Close()
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		return f(c, ifi.Index)
	})
}

// doIn runs f in ns, or in the current namespace when ns is nil.
func doIn(ns *testnet.NS, f func() error) error {
	if ns == nil {
		return f()
	}
	return ns.Do(f)
}

func checkSame(t *testing.T, what, before, after string) {
	t.Helper()
	if before != after {
		t.Errorf("%s: NIC not restored exactly.\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

// row prints the NCDEVMEM-ROW line of a devmem run (scripts/vm turns them into the report's
// table) and returns it.
func row(t *testing.T, r *report.Result, mode string) map[string]any {
	t.Helper()
	run := r.Runs[len(r.Runs)-1]
	var gbps float64
	for _, f := range run.Target.Flows {
		gbps += f.Gbps
	}
	m := map[string]any{"kernel": KernelRelease(t).String(), "mode": mode, "flows": len(run.Target.Flows),
		"gbps": gbps, "validated_bytes": uint64(0), "linear_bytes": uint64(0), "tokens": uint64(0),
		"dontneed_calls": uint64(0), "mismatches": 0}
	if d := run.Target.Devmem; d != nil {
		if r.Config.Validate == "on" {
			m["validated_bytes"] = d.DmabufBytes + d.LinearBytes
		}
		m["linear_bytes"], m["tokens"], m["dontneed_calls"] = d.LinearBytes, d.Tokens, d.DontneedCalls
	}
	js, _ := json.Marshal(m)
	fmt.Printf("NCDEVMEM-ROW %s\n", js)
	return m
}

// lastQueues returns the last n RX queues of link (what --num-rx-queues n and the C tool pick).
func lastQueues(t *testing.T, ns *testnet.NS, link string, n int) []uint32 {
	t.Helper()
	rxq := uint32(len(queueRX(t, ns, link)))
	if rxq < uint32(n)+1 {
		t.Fatalf("%s has %d RX queues, want at least %d", link, rxq, n+1)
	}
	var q []uint32
	for i := rxq - uint32(n); i < rxq; i++ {
		q = append(q, i)
	}
	return q
}

// checkQueues fails t unless the RX packets between before and after went to the bound queues:
// the others may carry only the control connection (a few dozen packets).
func checkQueues(t *testing.T, before, after map[uint32]uint64, bound []uint32) {
	t.Helper()
	d := deltas(before, after)
	var on, off uint64
	for q, v := range d {
		if slices.Contains(bound, q) {
			on += v
		} else {
			off += v
		}
	}
	t.Logf("rx-packets per queue %v (bound %v)", d, bound)
	if on < 100 || off > on/20+50 {
		t.Errorf("qstats: %d packets on the bound queues %v, %d elsewhere %v: the flows did not land on the binding", on, bound, off, d)
	}
}

// TestGuestSoftnicRunDevmemRX runs `ncdevmem run --devmem-rx` with validation over the lab, 1 and
// 4 flows, through the real preparation path (header split on, hds-thresh 0, an RSS context over
// the devmem queues where the kernel allows one, the ntuple rule): every byte validated from the
// dma-buf, the packets counted on the bound queues, and every setting back exactly afterwards.
func TestGuestSoftnicRunDevmemRX(t *testing.T) {
	b := newSoftnicBench(t)
	for _, flows := range []int{1, 4} {
		t.Run(fmt.Sprintf("flows=%d", flows), func(t *testing.T) {
			nq := min(flows, 2)
			bound := lastQueues(t, b.lab.B, b.lab.B.Link, nq)
			before := snicState(t, b.lab.B, b.lab.B.Link)
			q0 := queueRX(t, b.lab.B, b.lab.B.Link)
			r, stdout, stderr, err := b.run(t, "--devmem-rx", "-f", b.lab.B.Link, "--num-rx-queues", strconv.Itoa(nq),
				"-n", strconv.Itoa(flows), "--time", "2s", "--validate", "on", "--dmabuf-size", "32M")
			if err != nil {
				t.Fatalf("ncdevmem run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
			q1 := queueRX(t, b.lab.B, b.lab.B.Link)
			t.Logf("stdout:\n%s", stdout)
			m := row(t, r, "rx")
			d := r.Runs[0].Target.Devmem
			if d == nil || d.DmabufBytes == 0 || d.Tokens == 0 || d.DontneedCalls == 0 {
				t.Fatalf("devmem counters %+v: nothing came through the dma-buf", d)
			}
			var rx uint64
			for _, f := range r.Runs[0].Target.Flows {
				rx += f.Bytes
			}
			if len(r.Runs[0].Target.Flows) != flows || rx == 0 {
				t.Errorf("%d target flows, %d bytes", len(r.Runs[0].Target.Flows), rx)
			}
			t.Logf("DONTNEED calls per 10,000 tokens: %.1f (%v tokens, %v calls)",
				10000*float64(d.DontneedCalls)/float64(d.Tokens), m["tokens"], m["dontneed_calls"])
			checkQueues(t, q0, q1, bound)
			b.checkRestored(t, "after the run", before)
		})
	}
}

// TestGuestSoftnicRunDevmemTX runs --devmem-rx --devmem-tx (7.x: 6.12 has no bind-tx). -f names
// the device on each host, so both ends of the lab take one name for it.
func TestGuestSoftnicRunDevmemTX(t *testing.T) {
	if !KernelRelease(t).AtLeast(6, 15) {
		t.Skipf("kernel %s has no bind-tx (6.15+): devmem TX cannot run here", KernelRelease(t))
	}
	b := newSoftnicBench(t)
	sameName(t, b.lab, "dm0")
	before := snicState(t, b.lab.B, b.lab.B.Link)
	r, stdout, stderr, err := b.run(t, "--devmem-rx", "--devmem-tx", "-f", "dm0", "-n", "1", "--time", "2s",
		"--validate", "on", "--dmabuf-size", "32M")
	if err != nil {
		t.Fatalf("ncdevmem run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	t.Logf("stdout:\n%s", stdout)
	row(t, r, "both")
	if d := r.Runs[0].Target.Devmem; d == nil || d.DmabufBytes == 0 {
		t.Fatalf("target devmem counters %+v", d)
	}
	// The completion path the simulator's tests assert exactly, here against the real kernel:
	// devmem sends were made, the kernel completed some, and never more than were sent.
	if fs := r.Runs[0].Source.Flows; len(fs) != 1 || fs[0].ZC == nil || fs[0].ZC.Sends == 0 ||
		fs[0].ZC.Completions == 0 || fs[0].ZC.Completions > fs[0].ZC.Sends {
		t.Fatalf("source zerocopy counters: %+v", fs)
	} else {
		t.Logf("source zerocopy counters: %+v", *fs[0].ZC)
	}
	b.checkRestored(t, "after the RX+TX run", before)
}

// sameName renames both ends of the lab to name inside their namespaces (a device keeps its
// addresses), and back when t ends, before the lab is taken down.
func sameName(t *testing.T, lab *Softnic, name string) {
	t.Helper()
	for _, ns := range []*testnet.NS{lab.A, lab.B} {
		old := ns.Link
		rename(t, ns, old, name)
		ns.Link = name
		t.Cleanup(func() {
			rename(t, ns, name, old)
			ns.Link = old
		})
	}
	for _, ns := range []*testnet.NS{lab.A, lab.B} {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(nsRun(t, ns, "ip", "-o", "link", "show", "dev", name), "LOWER_UP") {
			if time.Now().After(deadline) {
				t.Fatalf("%s in %s has no carrier after the rename", name, ns.Name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func rename(t *testing.T, ns *testnet.NS, from, to string) {
	t.Helper()
	nsRun(t, ns, "ip", "link", "set", "dev", from, "down")
	nsRun(t, ns, "ip", "link", "set", "dev", from, "name", to)
	nsRun(t, ns, "ip", "link", "set", "dev", to, "up")
}

// TestGuestSoftnicRunKilled kills the target server (kill -9) in the middle of a devmem run, then
// `ncdevmem cleanup` in its namespace puts every setting back exactly.
func TestGuestSoftnicRunKilled(t *testing.T) {
	CheckKernelLog(t)
	lab := SoftnicLab(t, false)
	bin := ncdevmemBin(t)
	key := writeKey(t)
	src := startServer(t, bin, lab.A, key)
	before := snicState(t, lab.B, lab.B.Link)
	dstAddr := net.JoinHostPort(lab.B.Addr.String(), "18401")
	srv := lab.B.Command(bin, "server", "--listen", dstAddr, "--key-file", key)
	var slog bytes.Buffer
	srv.Stdout, srv.Stderr = &slog, &slog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { srv.Wait(); close(exited) }()
	t.Cleanup(func() { srv.Process.Kill(); <-exited })
	waitListen(t, lab.B, dstAddr)
	run := lab.A.Command(bin, "run", "--src", src, "--dst", dstAddr, "--key-file", key, "--devmem-rx", "-f", lab.B.Link,
		"-n", "1", "--time", "20s", "--validate", "on", "--dmabuf-size", "32M")
	var rlog bytes.Buffer
	run.Stdout, run.Stderr = &rlog, &rlog
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- run.Wait() }()
	t.Cleanup(func() { run.Process.Kill() })
	// Wait until the NIC is prepared and the binding holds a queue, then kill -9 the server.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(snicState(t, lab.B, lab.B.Link), "held true") {
		if time.Now().After(deadline) {
			t.Fatalf("no queue bound after 60 s; server log:\n%s\nrun log:\n%s", slog.String(), rlog.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if err := <-runDone; err == nil {
		t.Errorf("the run succeeded although its target was killed:\n%s", rlog.String())
	}
	killed := snicState(t, lab.B, lab.B.Link)
	if killed == before {
		t.Fatalf("the NIC looks untouched after the kill: the test did not kill a prepared run")
	}
	out, err := lab.B.Command(bin, "cleanup", "-f", lab.B.Link).CombinedOutput()
	if err != nil {
		t.Fatalf("ncdevmem cleanup: %v\n%s", err, out)
	}
	t.Logf("cleanup:\n%s", out)
	checkSame(t, "after kill -9 and cleanup", before, snicState(t, lab.B, lab.B.Link))
}

func waitListen(t *testing.T, ns *testnet.NS, addr string) {
	t.Helper()
	if err := listening(ns, addr, 30*time.Second); err != nil {
		t.Fatalf("nothing listens on %s after 30 s: %v", addr, err)
	}
}

// listening waits up to within for a TCP listener on addr inside ns; the last dial's error when
// none came up.
func listening(ns *testnet.NS, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := ns.Do(func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeKey writes the lab's pre-shared key to a temporary file and returns its path.
func writeKey(t *testing.T) string {
	t.Helper()
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("softnic-guest-key-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return key
}

// armCorruption makes softnic flip the byte at TCP stream position pos of the next connection
// to port in namespace B, which it pins as B's only ephemeral port (restored at cleanup). It
// returns the payload stream offset the run must report: pos less the data hello before it.
func armCorruption(t *testing.T, b *softnicBench, port, pos int) int {
	t.Helper()
	old := strings.TrimSpace(nsRun(t, b.lab.B, "cat", "/proc/sys/net/ipv4/ip_local_port_range"))
	nsRun(t, b.lab.B, "sh", "-c", fmt.Sprintf("echo '%d %d' > /proc/sys/net/ipv4/ip_local_port_range", port, port))
	t.Cleanup(func() {
		nsRun(t, b.lab.B, "sh", "-c", "echo '"+old+"' > /proc/sys/net/ipv4/ip_local_port_range")
	})
	SoftnicParam(t, "corrupt_sport", "0")
	SoftnicParam(t, "corrupt_offset", strconv.Itoa(pos))
	SoftnicParam(t, "corrupt_dport", strconv.Itoa(port))
	hello, err := proto.EncodeFrame(proto.TypeDataHello, &proto.DataHello{Session: proto.NewNonce(), Flow: 0, MAC: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return pos - len(hello)
}

// TestGuestSoftnicCorruptionCaught arms softnic's corruption fault on the run's data connection:
// the run must fail (exit 1) naming the flow and the exact stream offset of the byte. The
// target's data port is pinned by giving namespace B a one-port ephemeral range, and the stream
// offset is softnic's TCP position less the data hello that precedes the payload.
func TestGuestSoftnicCorruptionCaught(t *testing.T) {
	b := newSoftnicBench(t)
	const port, pos = 45123, 3_000_017
	want := armCorruption(t, b, port, pos)
	before := SoftnicParamValue(t, "corrupted")
	_, stdout, stderr, err := b.run(t, "--devmem-rx", "-f", b.lab.B.Link, "-n", "1", "--time", "3s", "--validate", "on",
		"--dmabuf-size", "32M")
	t.Logf("corrupted before %s after %s", before, SoftnicParamValue(t, "corrupted"))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("ncdevmem run with a corrupted byte: %v (want exit 1)\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	for _, w := range []string{"flow 0", fmt.Sprintf("stream offset %d", want)} {
		if !strings.Contains(stderr+stdout, w) {
			t.Errorf("the failure does not name %q:\n%s%s", w, stdout, stderr)
		}
	}
}

// TestGuestSoftnicNoSetupAdvice: with header split off and --no-setup, bind-rx is refused with the
// kernel's "tcp-data-split is disabled" (7.x), and the run passes it on with the fix. 6.12's core
// has no such check: the driver's refusal is a bare EINVAL, and the advice names header split too.
func TestGuestSoftnicNoSetupAdvice(t *testing.T) {
	b := newSoftnicBench(t)
	before := snicState(t, b.lab.B, b.lab.B.Link)
	_, stdout, stderr, err := b.run(t, "--devmem-rx", "-f", b.lab.B.Link, "--no-setup", "-n", "1", "--time", "1s")
	if err == nil {
		t.Fatalf("--no-setup with header split off succeeded:\n%s", stdout)
	}
	out := stdout + stderr
	want := []string{"tcp-data-split is disabled", "ethtool -G " + b.lab.B.Link + " tcp-data-split on"}
	if !KernelRelease(t).AtLeast(6, 14) {
		want[0] = "check that header split is on"
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("the refusal lacks %q:\n%s", w, out)
		}
	}
	checkSame(t, "after the refused run", before, snicState(t, b.lab.B, b.lab.B.Link))
}

// TestGuestSoftnicFigures measures, in one boot, host-memory RX, devmem RX with validation on and
// off, and devmem RX+TX (7.x), 2 s each; the figures go to the log and the NCDEVMEM-ROW lines.
func TestGuestSoftnicFigures(t *testing.T) {
	b := newSoftnicBench(t)
	type fig struct {
		name string
		args []string
		mode string
	}
	figs := []fig{
		{"host RX", []string{"--validate", "on"}, ""},
		{"devmem RX, validation on", []string{"--devmem-rx", "--validate", "on"}, "rx"},
		{"devmem RX, validation off", []string{"--devmem-rx", "--validate", "off"}, "rx"},
	}
	tx := KernelRelease(t).AtLeast(6, 15)
	if tx {
		sameName(t, b.lab, "dm0")
		figs = append(figs, fig{"devmem RX+TX, validation on", []string{"--devmem-rx", "--devmem-tx", "--validate", "on"}, "both"})
	}
	var lines []string
	for _, f := range figs {
		args := append([]string{"-n", "1", "--time", "2s"}, f.args...)
		if f.mode != "" {
			args = append(args, "-f", b.lab.B.Link, "--dmabuf-size", "32M")
		}
		r, stdout, stderr, err := b.run(t, args...)
		if err != nil {
			t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", f.name, err, stdout, stderr)
		}
		var gbps float64
		for _, fl := range r.Runs[0].Target.Flows {
			gbps += fl.Gbps
		}
		line := fmt.Sprintf("%-30s %.3f Gbps", f.name, gbps)
		if f.mode != "" {
			m := row(t, r, f.mode)
			if d := r.Runs[0].Target.Devmem; d != nil && d.Tokens > 0 {
				line += fmt.Sprintf(", %.1f DONTNEED calls per 10,000 tokens (%v calls)", 10000*float64(d.DontneedCalls)/float64(d.Tokens), m["dontneed_calls"])
			}
		}
		lines = append(lines, line)
	}
	if !tx {
		lines = append(lines, fmt.Sprintf("devmem TX: not measured, kernel %s has no bind-tx", KernelRelease(t)))
	}
	t.Logf("softnic figures on %s (TCG: relative only):\n%s", KernelRelease(t), strings.Join(lines, "\n"))
}

// TestGuestSoftnicConformance runs the simulator's conformance table (internal/devmemsim.Cases)
// against a real devmem socket: a udmabuf bound through the shared setup path (package devmem) to
// the last queue of the lab's receiving end, a flow steered there, the peer sending continuously. The
// simulator runs the same table in its own tests; both must give the same answers.
func TestGuestSoftnicConformance(t *testing.T) {
	CheckKernelLog(t)
	lab := SoftnicLab(t, false)
	before := snicState(t, lab.B, lab.B.Link)
	const port = 5301
	dst := netip.AddrPortFrom(lab.B.Addr, port)
	queue := lastQueues(t, lab.B, lab.B.Link, 1)
	var setup *devmem.Setup
	var ln net.Listener
	err := lab.B.Do(func() (err error) {
		setup, err = devmem.Open(context.Background(), devmem.Config{
			Ifname: lab.B.Link, Queues: queue, Flows: []nic.Flow{{Dst: dst}}, StateDir: t.TempDir(),
			Log: testWriter{t}, Alloc: func() (dmabuf.Buffer, error) { return dmabuf.Open("udmabuf", 16<<20, dmabuf.OpenOptions{}) },
		})
		if err != nil {
			return err
		}
		ln, err = net.Listen("tcp", dst.String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// The restore's ethtool calls act on the namespace they run in.
		if err := lab.B.Do(setup.Close); err != nil {
			t.Errorf("teardown: %v", err)
		}
		checkSame(t, "after the conformance run", before, snicState(t, lab.B, lab.B.Link))
	}()
	defer ln.Close()
	var c net.Conn
	if err := lab.A.Do(func() (err error) { c, err = net.DialTimeout("tcp", dst.String(), 10*time.Second); return }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		buf := make([]byte, 16<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			c.Write(buf)
		}
	}()
	quiet := func() error {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-sent
		time.Sleep(500 * time.Millisecond) // TCG: let the last segments arrive
		return nil
	}
	defer quiet()
	rc, err := s.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	rc.Control(func(f uintptr) { fd = int(f) })
	conn := &devmemsim.Conn{Sys: rx.Kernel{}, Fd: fd, DmabufID: setup.Binding.ID(), Quiet: quiet}
	var st devmemsim.State
	for _, tc := range devmemsim.Cases {
		if err := tc.Run(conn, &st); err != nil {
			t.Errorf("%s (fidelity row %d): the real kernel disagrees: %v", tc.Name, tc.Row, err)
		} else {
			t.Logf("ok: %s", tc.Name)
		}
	}
}

// testWriter sends the setup's log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestGuestSoftnicPoolExhaustion (fidelity row 6): when the NIC cannot get a buffer (softnic's
// page-pool failure switch, or a dma-buf too small for the traffic) it drops packets; TCP
// retransmits them and the devmem run completes with every byte validated, no hang, no error.
func TestGuestSoftnicPoolExhaustion(t *testing.T) {
	b := newSoftnicBench(t)
	for _, c := range []struct {
		name  string
		param string
		size  string
	}{
		{"page-pool failures", "pp_fail_pct", "32M"},
		{"a 1 MiB dma-buf", "", "1M"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.param != "" {
				SoftnicParam(t, c.param, "2")
			}
			before := SoftnicCounters(t, b.lab.B, b.lab.B.Link)
			r, stdout, stderr, err := b.run(t, "--devmem-rx", "-f", b.lab.B.Link, "-n", "1", "--time", "2s",
				"--validate", "on", "--dmabuf-size", c.size)
			after := SoftnicCounters(t, b.lab.B, b.lab.B.Link)
			t.Logf("softnic: rx_alloc_fail +%d, rx_fault_pp_fail +%d, rx_hw_drops +%d", after["rx_alloc_fail"]-before["rx_alloc_fail"],
				after["rx_fault_pp_fail"]-before["rx_fault_pp_fail"], after["rx_hw_drops"]-before["rx_hw_drops"])
			if err != nil {
				t.Fatalf("ncdevmem run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
			row(t, r, "rx")
			var retrans uint32
			for _, f := range r.Runs[0].Source.Flows {
				if f.TCP != nil {
					retrans += f.TCP.Retrans
				}
			}
			d := r.Runs[0].Target.Devmem
			t.Logf("%d bytes through the dma-buf, %d retransmits", d.DmabufBytes, retrans)
			if d.DmabufBytes == 0 {
				t.Errorf("nothing received")
			}
			if c.param != "" && after["rx_fault_pp_fail"] == before["rx_fault_pp_fail"] {
				t.Errorf("%s fired no fault", c.param)
			}
		})
	}
}
