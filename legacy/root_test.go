// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package legacy

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
)

func runIn(t *testing.T, ns *testnet.NS, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var code int
	var o, e bytes.Buffer
	ns.Run(t, func() error {
		code = Run(context.Background(), args, &System{StateDir: t.TempDir()}, strings.NewReader(stdin), &o, &e)
		return nil
	})
	return code, o.String(), e.String()
}

func TestRootProbeOnVeth(t *testing.T) {
	testnet.Require(t)
	ns := testnet.Single(t)
	before := ns.LinkState(t, "veth0")
	// veth has one RX queue: the C tool stops at the queue count with exit 1.
	code, stdout, stderr := runIn(t, ns, "", "-f", "veth0")
	if code != ExitError || stdout != "" || !strings.Contains(stderr, "ncdevmem: number of device queues is too low") {
		t.Errorf("probe: exit %d stdout %q stderr:\n%s", code, stdout, stderr)
	}
	// With queues named, the probe runs and fails (no udmabuf here, or no devmem on veth) with
	// the C tool's probe failure code, 255.
	code, _, stderr = runIn(t, ns, "", "-f", "veth0", "-t", "0", "-q", "1")
	if code != ExitProbeFails || !strings.Contains(stderr, "ncdevmem: ") {
		t.Errorf("probe -t 0 -q 1: exit %d, stderr:\n%s", code, stderr)
	}
	if after := ns.LinkState(t, "veth0"); after != before {
		t.Errorf("veth changed by the probe:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestRootRXOnVethFailsWithAdvice(t *testing.T) {
	testnet.Require(t)
	ns := testnet.Single(t)
	before := ns.LinkState(t, "veth0")
	code, stdout, stderr := runIn(t, ns, "", "-l", "-f", "veth0", "-s", ns.Addr.String(), "-p", "5201", "-t", "0", "-q", "1", "-v", "7")
	if code != ExitError || stdout != "" {
		t.Errorf("rx: exit %d stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	last := strings.TrimSpace(stderr)
	last = last[strings.LastIndex(last, "\n")+1:]
	if !strings.HasPrefix(last, "ncdevmem: ") || len(last) < 40 {
		t.Errorf("last stderr line is not one clear error: %q", last)
	}
	if after := ns.LinkState(t, "veth0"); after != before {
		t.Errorf("veth changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The TX client on veth (no bind-tx support) fails the same way.
	code, _, stderr = runIn(t, ns, "hello\n", "-f", "veth0", "-s", "198.18.0.9", "-p", "5201")
	if code != ExitError || !strings.Contains(stderr, "ncdevmem: ") {
		t.Errorf("tx: exit %d, stderr:\n%s", code, stderr)
	}
}
