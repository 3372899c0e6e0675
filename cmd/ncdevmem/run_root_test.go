package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/report"
)

var (
	e2eBinOnce sync.Once
	e2eBinPath string
	e2eBinErr  error
)

// e2eBin is the binary under test: $NCDEVMEM_BIN (make test-root sets it), else one built from
// this tree once per test process.
func e2eBin(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("NCDEVMEM_BIN"); b != "" {
		return b
	}
	e2eBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ncdevmem-e2e")
		if err != nil {
			e2eBinErr = err
			return
		}
		e2eBinPath = filepath.Join(dir, "ncdevmem")
		if out, err := exec.Command("go", "build", "-o", e2eBinPath, ".").CombinedOutput(); err != nil {
			e2eBinErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if e2eBinErr != nil {
		t.Fatalf("NCDEVMEM_BIN unset and building ncdevmem failed: %v", e2eBinErr)
	}
	return e2eBinPath
}

// benchServer is a real `ncdevmem server` in a namespace.
type benchServer struct {
	addr string
	cmd  *exec.Cmd
	logs *bytes.Buffer
	done chan struct{}
}

// startBenchServer starts `ncdevmem server` in ns on port with extra environment, kills it by PID
// when the test ends, and waits until the port accepts connections.
func startBenchServer(t *testing.T, bin string, ns *testnet.NS, port int, keyFile string, env ...string) *benchServer {
	t.Helper()
	s := &benchServer{addr: net.JoinHostPort(ns.Addr.String(), fmt.Sprint(port)), logs: &bytes.Buffer{}, done: make(chan struct{})}
	s.cmd = ns.Command(bin, "server", "--listen", s.addr, "--key-file", keyFile)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start server in %s: %v", ns.Name, err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("server %s log:\n%s", s.addr, s.logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ns.Do(func() error {
			c, err := net.DialTimeout("tcp", s.addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not listening on %s after 10 s: %v\n%s", s.addr, err, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the server with SIGKILL (a crash, not a shutdown) and waits for it.
func (s *benchServer) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

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
	bin := e2eBin(t)
	key := writeKey(t)
	a, b := testnet.Pair(t)
	src := startBenchServer(t, bin, a, 18400, key)
	dst := startBenchServer(t, bin, b, 18400, key)
	for _, flows := range []int{1, 4} {
		out := filepath.Join(t.TempDir(), "r.json")
		code, stdout, stderr := runClient(t, bin, a, "--src", src.addr, "--dst", dst.addr, "-n", fmt.Sprint(flows),
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
	bin := e2eBin(t)
	key := writeKey(t)
	a, b := testnet.Pair(t)
	src := startBenchServer(t, bin, a, 18400, key, testCorruptEnv+"=3000000")
	dst := startBenchServer(t, bin, b, 18400, key)
	start := time.Now()
	code, stdout, stderr := runClient(t, bin, a, "--src", src.addr, "--dst", dst.addr, "--time", "10s", "--key-file", key)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	want := fmt.Sprintf("target server %s: flow 0: payload mismatch at stream offset 3000000: expected 0x", dst.addr)
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
	bin := e2eBin(t)
	key := writeKey(t)
	a, b := testnet.Pair(t)
	src := startBenchServer(t, bin, a, 18400, key)
	dst := startBenchServer(t, bin, b, 18400, key)
	time.AfterFunc(1500*time.Millisecond, src.kill)
	start := time.Now()
	code, stdout, stderr := runClient(t, bin, a, "--src", src.addr, "--dst", dst.addr, "-n", "2", "--time", "20s", "--key-file", key)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "source server "+src.addr+": control connection closed mid-test (did the server crash or get killed?)") {
		t.Errorf("stderr %q does not name the dead source", stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the client took %v to notice", d)
	}
	src2 := startBenchServer(t, bin, a, 18401, key)
	code, stdout, stderr = runClient(t, bin, a, "--src", src2.addr, "--dst", dst.addr, "--time", "1s", "--key-file", key)
	if code != 0 {
		t.Fatalf("next test: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
