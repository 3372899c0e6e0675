// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func selftestCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), append([]string{"selftest"}, args...), strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

func TestSelftestUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "missing -f IF"},
		{[]string{"-f", "eth1"}, "missing --peer HOST"},
		{[]string{"-f", "eth1", "--peer", "h:99999"}, `--peer "h:99999": port "99999" is not 1..65535`},
		{[]string{"-f", "eth1", "--peer", ":18400"}, `--peer ":18400": want HOST[:PORT]`},
		{[]string{"-f", "eth1", "--peer", "h", "--only", "rx,tcp"}, `--only: unknown check "tcp"`},
		{[]string{"-f", "eth1", "--peer", "h", "--only", ""}, "--only: no checks named"},
		{[]string{"-f", "eth1", "--peer", "h", "--addr", "eth1"}, `--addr "eth1": not an IP address`},
		{[]string{"-f", "eth1", "--peer", "h", "--addr", "10.0.0.1", "--peer-addr", "fd00::2"}, "different families"},
		{[]string{"-f", "eth1", "--peer", "h", "--port", "-1"}, "port -1 out of range"},
		{[]string{"-f", "eth1", "--peer", "h", "--timeout", "0s"}, "--timeout 0s: want a positive duration"},
		{[]string{"-f", "eth1", "--peer", "h", "--key-file", "/nonexistent/key"}, "--key-file:"},
		{[]string{"-f", "eth1", "--peer", "h", "extra"}, "unknown command"},
		{[]string{"-f", "eth1", "--peer", "h", "--bogus"}, "unknown flag: --bogus"},
	} {
		code, stdout, stderr := selftestCLI(tt.args...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d stdout %q stderr %q, want exit 2 and one line with %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
}

func TestSelftestPeerForms(t *testing.T) {
	for in, want := range map[string]string{
		"h": "h:18400", "h:1": "h:1", "10.0.0.2": "10.0.0.2:18400", "fd00::2": "[fd00::2]:18400",
		"[fd00::2]": "[fd00::2]:18400", "[fd00::2]:5": "[fd00::2]:5",
	} {
		if got, err := peerControlAddr(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
}

// On loopback the probe cannot run (no queues to bind), so the whole run is a kselftest skip.
func TestSelftestSkipOnLoopback(t *testing.T) {
	code, stdout, stderr := selftestCLI("-f", "lo", "--peer", "127.0.0.1:1", "--only", "probe,rx")
	want := "TAP version 13\n1..2\n"
	if code != 4 || stderr != "" || !strings.HasPrefix(stdout, want) ||
		!strings.Contains(stdout, "ok 1 devmem.require_devmem # SKIP Test requires devmem support\n") ||
		!strings.Contains(stdout, "ok 2 devmem.check_rx # SKIP Test requires devmem support\n") ||
		!strings.HasSuffix(stdout, "# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:2 error:0\n") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
}
