// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/proto"
	"github.com/devmemtcp/ncdevmem/report"
	"golang.org/x/sys/unix"
)

// The stop contract (issue 14): SIGINT or SIGTERM ends `ncdevmem run` within stopLimit in every
// phase, exits 128+N with one line saying what was interrupted, and still writes --json. These
// tests run the real binary on loopback; the phase is reached for real (a connect that hangs, a
// server that never speaks, a 30 s window) or, for phases too short to hit, held by the
// NCDEVMEM_TEST_HOLD hook, which says on stderr when it holds. Only the stop is timed.
const stopLimit = time.Second

type proc struct {
	cmd    *exec.Cmd
	stderr *testnet.Log
	done   chan struct{}
}

func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(testnet.Binary(t), args...), stderr: &testnet.Log{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitFor waits (generously: setup is not what is measured) until stderr holds s.
func (p *proc) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.stderr.String(), s) {
		select {
		case <-p.done:
			t.Fatalf("exited before %q appeared:\n%s", s, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on stderr after 60 s:\n%s", s, p.stderr.String())
		}
	}
}

// stop sends sig and returns how long the process took to exit, and its exit code.
func (p *proc) stop(t *testing.T, sig syscall.Signal) (time.Duration, int) {
	t.Helper()
	t0 := time.Now()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after %v:\n%s", sig, p.stderr.String())
	}
	return time.Since(t0), p.cmd.ProcessState.ExitCode()
}

// checkStopped asserts the stop contract: in time, exit 128+sig, one line naming the phase, and
// a --json file (when given) with the failure's phase.
func checkStopped(t *testing.T, p *proc, sig syscall.Signal, phase, words, jsonPath string) {
	t.Helper()
	took, code := p.stop(t, sig)
	t.Logf("%s: stopped %v after %v", phase, took.Round(time.Millisecond), sig)
	if took > stopLimit {
		t.Errorf("%s: took %v to stop after %v, want under %v", phase, took, sig, stopLimit)
	}
	if want := 128 + int(sig); code != want {
		t.Errorf("%s: exit %d, want %d", phase, code, want)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
		if strings.HasPrefix(l, "ncdevmem: ") && !strings.Contains(l, "test hook") {
			lines = append(lines, l)
		}
	}
	name := map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[sig]
	if len(lines) != 1 || !strings.Contains(lines[0], "interrupted by "+name) || !strings.Contains(lines[0], words) {
		t.Errorf("%s: want one line 'interrupted by %s ... %s', got:\n%s", phase, name, words, p.stderr.String())
	}
	if jsonPath == "" {
		return
	}
	f, err := os.Open(jsonPath)
	if err != nil {
		t.Fatalf("%s: --json not written: %v", phase, err)
	}
	defer f.Close()
	res, err := report.ReadJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", phase, err)
	}
	if res.Failure == nil || res.Failure.Phase != phase || res.Failure.Signal != name || res.Failure.Message == "" {
		t.Errorf("%s: JSON failure %+v", phase, res.Failure)
	}
}

func TestStopConnect(t *testing.T) {
	// A listener whose accept queue is full: the kernel drops further SYNs, so connect hangs.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	filler, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	js := filepath.Join(t.TempDir(), "r.json")
	p := start(t, nil, "run", "--src", addr, "--dst", addr, "--json", js)
	// Its SYN is out (the dial times out after 10 s, long after this): it is connecting.
	waitSynSent(t, p, sa.(*unix.SockaddrInet4).Port)
	checkStopped(t, p, syscall.SIGINT, "connect", "while resolving and connecting", js)
}

// waitSynSent waits until a socket in this network namespace is in SYN_SENT towards 127.0.0.1:port
// (/proc/net/tcp): only p dials that port, so p is inside connect.
func waitSynSent(t *testing.T, p *proc, port int) {
	t.Helper()
	rem := fmt.Sprintf(" 0100007F:%04X 02 ", port) // rem_address and st (TCP_SYN_SENT)
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), rem) {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("exited before connecting:\n%s", p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SYN_SENT socket to port %d after 60 s:\n%s", port, p.stderr.String())
		}
	}
}

func TestStopHandshake(t *testing.T) {
	// A server that says hello, reads the client's and never welcomes it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	js := filepath.Join(t.TempDir(), "r.json")
	p := start(t, nil, "run", "--src", ln.Addr().String(), "--dst", ln.Addr().String(), "--json", js)
	select {
	case c := <-accepted:
		defer c.Close()
		// The client's hello is the sign that it is in the handshake, waiting for the welcome.
		pc := proto.NewConn(c)
		if err := pc.Send(proto.TypeHello, &proto.Hello{Proto: proto.Version, Software: "fake", Nonce: proto.NewNonce()}); err != nil {
			t.Fatalf("fake server hello: %v", err)
		}
		var h proto.Hello
		if err := pc.Expect(proto.TypeHello, &h); err != nil {
			t.Fatalf("fake server: the client's hello: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the client never connected")
	}
	checkStopped(t, p, syscall.SIGINT, "handshake", "during the handshake", js)
}

func TestStopSetup(t *testing.T) {
	js := filepath.Join(t.TempDir(), "r.json")
	p := start(t, []string{"NCDEVMEM_TEST_HOLD=setup"}, "run", "--json", js)
	p.waitFor(t, "holding in phase setup")
	checkStopped(t, p, syscall.SIGINT, "setup", "while the servers prepared the test", js)
}

func TestStopWindow(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		js := filepath.Join(t.TempDir(), "r.json")
		p := start(t, nil, "run", "--time", "30s", "-n", "2", "--interval", "200ms", "--json", js)
		p.waitFor(t, "Gbits/sec") // the first interval line: the window is open and data flows
		checkStopped(t, p, sig, "window", "during the measurement window of run 1 of 1", js)
	}
}

func TestStopDrain(t *testing.T) {
	js := filepath.Join(t.TempDir(), "r.json")
	p := start(t, []string{"NCDEVMEM_TEST_HOLD=drain"}, "run", "--time", "0.3", "--json", js)
	p.waitFor(t, "holding in phase drain")
	checkStopped(t, p, syscall.SIGINT, "drain", "while draining after the window", js)
}

func TestStopBetweenRuns(t *testing.T) {
	js := filepath.Join(t.TempDir(), "r.json")
	p := start(t, []string{"NCDEVMEM_TEST_HOLD=between"}, "run", "--time", "0.3", "--runs", "3", "--json", js)
	p.waitFor(t, "holding in phase between")
	checkStopped(t, p, syscall.SIGINT, "between", "between runs 1 and 2 of 3; 1 finished", js)
	// The finished run is in the JSON.
	b, _ := os.ReadFile(js)
	var res report.Result
	if err := json.Unmarshal(b, &res); err != nil || len(res.Runs) != 1 || res.Runs[0].Target.Flows[0].Bytes == 0 {
		t.Errorf("want the one finished run in the JSON, got %d runs (%v)", len(res.Runs), err)
	}
}

// TestStopServer: a `server` told to stop mid-test ends the test cleanly (the client is told the
// server is shutting down, and exits 1 with that line) and exits 143 within stopLimit.
func TestStopServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := start(t, nil, "server", "--listen", addr)
	srv.waitFor(t, "listening on")
	cl := start(t, nil, "run", "--src", addr, "--dst", addr, "--time", "30s", "--interval", "200ms")
	cl.waitFor(t, "Gbits/sec")
	took, code := srv.stop(t, syscall.SIGTERM)
	t.Logf("server stopped %v after SIGTERM", took.Round(time.Millisecond))
	if took > stopLimit || code != 143 {
		t.Errorf("server: exit %d after %v, want 143 within %v", code, took, stopLimit)
	}
	if !strings.Contains(srv.stderr.String(), "ncdevmem: server stopped: interrupted by SIGTERM") {
		t.Errorf("server stderr:\n%s", srv.stderr.String())
	}
	select {
	case <-cl.done:
	case <-time.After(stopLimit):
		t.Fatalf("client still running %v after the server stopped:\n%s", stopLimit, cl.stderr.String())
	}
	if c := cl.cmd.ProcessState.ExitCode(); c != 1 || !strings.Contains(cl.stderr.String(), "the server is shutting down") {
		t.Errorf("client: exit %d, stderr:\n%s\nwant exit 1 and the server's shutdown named", c, cl.stderr.String())
	}
}
