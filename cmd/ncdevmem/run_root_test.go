// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/report"
)

// runClient runs `ncdevmem run args...` in ns and returns its exit code, stdout and stderr.
func runClient(t *testing.T, bin string, ns *testnet.NS, args ...string) (int, string, string) {
	t.Helper()
	cmd := ns.Command(bin, append([]string{"run"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run client: %v", err)
	}
	return code, stdout.String(), stderr.String()
}

func writeKey(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte("root-test-key-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRootRunBetweenNamespaces runs real servers in two namespaces joined by veth and `ncdevmem
// run` between them with 1 and 4 flows, validation on, authenticated, and checks the JSON.
func TestRootRunBetweenNamespaces(t *testing.T) {
	testnet.Require(t)
	bin := testnet.Binary(t)
	key := writeKey(t)
	a, b := testnet.Pair(t)
	src := a.StartServer(t, bin, 18400, nil, "--key-file", key)
	dst := b.StartServer(t, bin, 18400, nil, "--key-file", key)
	for _, flows := range []int{1, 4} {
		out := filepath.Join(t.TempDir(), "r.json")
		code, stdout, stderr := runClient(t, bin, a, "--src", src.Addr, "--dst", dst.Addr, "-n", fmt.Sprint(flows),
			"--time", "2s", "--validate", "on", "--key-file", key, "--json", out, "--interval", "500ms", "--expect", "gbps>0")
		if code != 0 {
			t.Fatalf("%d flows: exit %d\nstdout:\n%s\nstderr:\n%s", flows, code, stdout, stderr)
		}
		if !strings.Contains(stdout, "== Source") || !strings.Contains(stdout, "== Target") || !strings.Contains(stdout, "  Rx ") {
			t.Errorf("%d flows: text report lacks kperf's sections:\n%s", flows, stdout)
		}
		if !strings.Contains(stderr, "Gbits/sec") {
			t.Errorf("%d flows: no --interval progress on stderr:\n%s", flows, stderr)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		r, err := report.ReadJSON(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if r.Config.Validate != "on" || r.Config.Flows != flows || len(r.Runs) != 1 {
			t.Fatalf("%d flows: config %+v, %d runs", flows, r.Config, len(r.Runs))
		}
		run := r.Runs[0]
		if len(run.Source.Flows) != flows || len(run.Target.Flows) != flows || len(run.Intervals) < 2 {
			t.Fatalf("%d flows: got %d/%d flows, %d intervals", flows, len(run.Source.Flows), len(run.Target.Flows), len(run.Intervals))
		}
		var tx, rx uint64
		for i := range flows {
			tx += run.Source.Flows[i].Bytes
			rx += run.Target.Flows[i].Bytes
			if run.Target.Flows[i].TCP == nil || run.Target.Flows[i].NetCPU < 0 {
				t.Errorf("flow %d: no TCP_INFO or net CPU: %+v", i, run.Target.Flows[i])
			}
		}
		if rx == 0 || rx > tx || float64(rx) < 0.8*float64(tx) {
			t.Errorf("%d flows: sent %d, received %d in the window", flows, tx, rx)
		}
		if len(run.Target.CPUs) == 0 || len(run.Source.CPUs) == 0 {
			t.Errorf("%d flows: no CPU figures", flows)
		}
		if r.Env["source"] == nil || r.Env["target"] == nil {
			t.Errorf("%d flows: no environment", flows)
		}
	}
}

// TestRootCorruptedStream proves validation fails: the source server's test hook flips one byte.
func TestRootCorruptedStream(t *testing.T) {
	testnet.Require(t)
	bin := testnet.Binary(t)
	key := writeKey(t)
	a, b := testnet.Pair(t)
	src := a.StartServer(t, bin, 18400, []string{testCorruptEnv + "=3000000"}, "--key-file", key)
	dst := b.StartServer(t, bin, 18400, nil, "--key-file", key)
	start := time.Now()
	code, stdout, stderr := runClient(t, bin, a, "--src", src.Addr, "--dst", dst.Addr, "--time", "10s", "--key-file", key)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	want := fmt.Sprintf("target server %s: flow 0: payload mismatch at stream offset 3000000: expected 0x", dst.Addr)
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q lacks the mismatch from the target", stderr)
	}
	if time.Since(start) > 8*time.Second {
		t.Errorf("the mismatch took %v to stop the run", time.Since(start))
	}
}

// TestRootSourceKilled kills the source server mid-run: the client names it, and the target
// serves the next test.
func TestRootSourceKilled(t *testing.T) {
	testnet.Require(t)
	bin := testnet.Binary(t)
	key := writeKey(t)
	a, b := testnet.Pair(t)
	src := a.StartServer(t, bin, 18400, nil, "--key-file", key)
	dst := b.StartServer(t, bin, 18400, nil, "--key-file", key)
	time.AfterFunc(1500*time.Millisecond, src.Kill)
	start := time.Now()
	code, stdout, stderr := runClient(t, bin, a, "--src", src.Addr, "--dst", dst.Addr, "-n", "2", "--time", "20s", "--key-file", key)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "source server "+src.Addr+": control connection closed mid-test (did the server crash or get killed?)") {
		t.Errorf("stderr %q does not name the dead source", stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the client took %v to notice", d)
	}
	src2 := a.StartServer(t, bin, 18401, nil, "--key-file", key)
	code, stdout, stderr = runClient(t, bin, a, "--src", src2.Addr, "--dst", dst.Addr, "--time", "1s", "--key-file", key)
	if code != 0 {
		t.Fatalf("next test: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
