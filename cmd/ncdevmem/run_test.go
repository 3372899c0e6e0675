// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/report"
)

func runMain(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestRunUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--flows", "0"}, "--flows 0: want 1..1024"},
		{[]string{"run", "--validate", "maybe"}, `--validate "maybe": want on, off or sample:N`},
		{[]string{"run", "--src", "hostA"}, "give both --src and --dst"},
		{[]string{"run", "--time", "0"}, "--time \"0\""},
		{[]string{"run", "--time", "soon"}, "want a duration such as 10s"},
		{[]string{"run", "--write-size", "12Q"}, "--write-size \"12Q\""},
		{[]string{"run", "--read-size", "256M"}, "at most 134217728 bytes"},
		{[]string{"run", "--devmem-rx"}, "add -f IFNAME"},
		{[]string{"run", "--queues", "3-1", "--devmem-rx", "-f", "eth1"}, "--queues: list"},
		{[]string{"run", "--queues", "1"}, "--queues only applies to devmem runs"},
		{[]string{"run", "--msg-trunc", "--validate", "on"}, "cannot be validated"},
		{[]string{"run", "--expect", "bogus>=1"}, "--expect: expect \"bogus>=1\": unknown metric"},
		{[]string{"run", "--pace", "-1"}, "--pace -1"},
		{[]string{"run", "--runs", "0"}, "--runs 0"},
		{[]string{"run", "--no-pin", "--pin-off", "2"}, "--no-pin contradicts"},
		{[]string{"run", "--cpu-src", "x"}, "--cpu-src: list"},
		{[]string{"run", "--rx-mem", "gpu", "--devmem-rx", "-f", "eth1"}, `--rx-mem "gpu": want udmabuf, cuda or host`},
		{[]string{"run", "--key-file", "/nonexistent/key"}, "--key-file: read key file"},
		{[]string{"run", "--json", "/nonexistent/dir/x.json", "--time", "0.1"}, "--json /nonexistent/dir/x.json: cannot create a file in /nonexistent/dir: no such file or directory"},
		{[]string{"run", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"run", "extra"}, `unexpected argument "extra"`},
	} {
		code, _, stderr := runMain(t, context.Background(), tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestRunSpecFromFlags(t *testing.T) {
	o := &runOptions{flows: 4, duration: "1.5", writeSize: "1M", readSize: "64KiB", validate: "sample:8",
		pinOff: 1, cpuDst: "2-3", paceGbps: 8, interval: time.Second, runs: 1}
	s, err := o.spec()
	if err != nil {
		t.Fatal(err)
	}
	if s.Flows != 4 || s.Duration != 1500*time.Millisecond || s.WriteSize != 1<<20 || s.ReadSize != 64<<10 ||
		s.Validate.Every != 8 || s.PinOff != 1 || len(s.CPUsDst) != 2 || s.PaceBytes != 1e9 || s.Interval != time.Second {
		t.Errorf("spec %+v", s)
	}
	o = &runOptions{flows: 1, duration: "5s", writeSize: "64K", readSize: "64K", validate: "on", msgTrunc: true, runs: 1}
	if s, err := o.spec(); err != nil || s.Validate.On() {
		t.Errorf("--msg-trunc alone: validate %v, %v; want off by default", s.Validate, err)
	}
}

func TestAddrs(t *testing.T) {
	for in, want := range map[string]string{"hostA": "hostA:18400", "hostA:9": "hostA:9", "[::1]": "[::1]:18400", "10.0.0.1": "10.0.0.1:18400"} {
		if got, err := controlAddr("--src", in); err != nil || got != want {
			t.Errorf("controlAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{":18400": ":18400", "127.0.0.1": "127.0.0.1:18400", "[::]": "[::]:18400", "0.0.0.0:0": "0.0.0.0:0"} {
		if got, err := listenAddr(in); err != nil || got != want {
			t.Errorf("listenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "h:99999", "h:x"} {
		if _, err := listenAddr(in); err == nil {
			t.Errorf("listenAddr(%q) accepted", in)
		}
	}
}

// TestRunEmbedded is the front door: `ncdevmem run` with both servers in-process on loopback.
func TestRunEmbedded(t *testing.T) {
	code, stdout, stderr := runMain(t, context.Background(), "run", "--time", "0.4", "-n", "2", "--no-pin", "--json", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r, err := report.ReadJSON(strings.NewReader(stdout))
	if err != nil {
		t.Fatalf("--json -: %v\n%s", err, stdout)
	}
	if len(r.Runs) != 1 || len(r.Runs[0].Target.Flows) != 2 || r.Config.Validate != "on" || r.Tool.Args == nil {
		t.Errorf("result %+v", r)
	}
	if !strings.Contains(stderr, "== Target") {
		t.Errorf("with --json - the text report goes to stderr; got %q", stderr)
	}

	code, _, stderr = runMain(t, context.Background(), "run", "--time", "0.3", "--no-pin", "--expect", "gbps>=1e9", "--expect", "gbps>0")
	if code != exitFailure || !strings.Contains(stderr, "expect failed: run 1: gbps = ") || strings.Contains(stderr, "want > 0") {
		t.Errorf("--expect: exit %d, %q", code, stderr)
	}

	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, stderr = runMain(t, context.Background(), "run", "--time", "0.2", "--no-pin", "--runs", "2", "--warmup", "1", "--json", out, "--msg-zerocopy")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err = report.ReadJSON(f)
	if err != nil || len(r.Runs) != 2 || r.Warmup != 1 || r.Runs[0].Source.Flows[0].ZC == nil {
		t.Errorf("--runs 2 --warmup 1 --msg-zerocopy: %v, %+v", err, r)
	}
	if !strings.Contains(stdout, "Run 2/2") {
		t.Errorf("text report of two runs: %q", stdout)
	}
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(300*time.Millisecond, func() { cancel(&signalError{sig: syscall.SIGINT}) })
	start := time.Now()
	code, _, stderr := runMain(t, ctx, "run", "--time", "20s", "--no-pin")
	if code != 130 || stderr != "ncdevmem: interrupted by SIGINT during the measurement window of run 1 of 1\n" {
		t.Errorf("exit %d, %q", code, stderr)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("interrupt took %v", time.Since(start))
	}
}

func TestServerCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	code, _, stderr := runMain(t, ctx, "server", "--listen", "0.0.0.0:0")
	if code != 0 || !strings.Contains(stderr, "warning: listening on ") || !strings.Contains(stderr, "without --key-file") {
		t.Errorf("exit %d, %q", code, stderr)
	}
	key := filepath.Join(t.TempDir(), "key")
	os.WriteFile(key, []byte("0123456789abcdef"), 0o600)
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	code, _, stderr = runMain(t, ctx, "server", "--listen", "127.0.0.1:0", "--key-file", key, "-q")
	if code != 0 || strings.Contains(stderr, "warning") {
		t.Errorf("keyed loopback server: exit %d, %q", code, stderr)
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"server", "--listen", "h:99999"}},
		{[]string{"server", "--key-file", "/nonexistent"}},
	} {
		if code, _, stderr := runMain(t, context.Background(), tc.args...); code != exitUsage {
			t.Errorf("%v: exit %d, %q", tc.args, code, stderr)
		}
	}
	t.Setenv(testCorruptEnv, "x")
	if code, _, stderr := runMain(t, context.Background(), "server", "--listen", "127.0.0.1:0"); code != exitUsage || !strings.Contains(stderr, testCorruptEnv) {
		t.Errorf("bad test hook: exit %d, %q", code, stderr)
	}
}

func TestRunFailureWritesJSON(t *testing.T) {
	out := filepath.Join(t.TempDir(), "old.json")
	os.WriteFile(out, []byte("previous result"), 0o644)
	code, _, stderr := runMain(t, context.Background(), "run", "--src", "127.0.0.1:1", "--dst", "127.0.0.1:1", "--json", out)
	if code != exitFailure || !strings.Contains(stderr, "target server 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused (is `ncdevmem server` running there and port 1 open?)") {
		t.Errorf("exit %d, %q", code, stderr)
	}
	// The failed run still writes its JSON, whole: no runs, and the failure with its phase.
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := report.ReadJSON(f)
	if err != nil || len(r.Runs) != 0 || r.Failure == nil || r.Failure.Phase != "connect" ||
		!strings.Contains(r.Failure.Message, "connection refused") || r.Failure.Signal != "" {
		t.Errorf("--json after a failed run: %v, %+v", err, r)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*tmp")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// The call sizes default to 512 KiB, and to kperf's 64 KiB in devmem and zcrx runs; a size given
// on the command line wins either way.
func TestRunIOSizeDefaults(t *testing.T) {
	for _, tc := range []struct {
		name       string
		o          runOptions
		write, rdz int
	}{
		{"host", runOptions{}, 512 << 10, 512 << 10},
		{"devmem rx", runOptions{devmemRX: true, ifname: "eth1"}, 64 << 10, 64 << 10},
		{"devmem tx", runOptions{devmemTX: true, ifname: "eth1"}, 64 << 10, 64 << 10},
		{"zcrx", runOptions{zcrx: true, ifname: "eth1"}, 64 << 10, 64 << 10},
		{"given", runOptions{devmemRX: true, ifname: "eth1", writeSize: "1M", readSize: "256K"}, 1 << 20, 256 << 10},
	} {
		o := tc.o
		o.flows, o.duration, o.validate, o.runs = 1, "1s", "on", 1
		s, err := o.spec()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if s.WriteSize != tc.write || s.ReadSize != tc.rdz {
			t.Errorf("%s: write %d read %d, want %d and %d", tc.name, s.WriteSize, s.ReadSize, tc.write, tc.rdz)
		}
	}
}
