// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/zcrx"
)

// TestRootRunZcrxRefusals: `ncdevmem run --zcrx` between real servers on the host kernel, whose
// veth has no zcrx support: the target refuses with the kernel's reason and advice, exit 1, and
// the veth stays as it was; flag conflicts and an oversized area are usage errors (exit 2). On the
// loopback device the target says to name a NIC.
func TestRootRunZcrxRefusals(t *testing.T) {
	testnet.Require(t)
	bin := testnet.Binary(t)
	key := writeKey(t)
	a, b := testnet.Pair(t)
	src := a.StartServer(t, bin, 18400, nil, "--key-file", key)
	dst := b.StartServer(t, bin, 18400, nil, "--key-file", key)
	before := b.LinkState(t, b.Link)
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--zcrx", "-f", "veth0", "--queues", "0", "--no-setup"}, 1, []string{"zcrx register veth0 queue 0", "no DMA device", "ncdevmem doctor -f veth0"}},
		{[]string{"--zcrx", "-f", "veth0", "--queues", "0"}, 1, []string{"zcrx", "veth0", "header split"}},
		{[]string{"--zcrx", "--devmem-rx", "-f", "veth0"}, 2, []string{"--zcrx and --devmem-rx", "pick one"}},
		{[]string{"--zcrx", "-f", "veth0", "--zcrx-area-size", "1G"}, 2, []string{"above the 128 MiB limit"}},
		{[]string{"--zcrx"}, 2, []string{"add -f IFNAME"}},
		// The namespace's loopback device: one queue and no way to get more, so the advice is to
		// name a NIC, not `ethtool -L lo` (checked below).
		{[]string{"--zcrx", "-f", "lo"}, 1, []string{"lo has 1 RX queue(s)", "name a NIC with -f"}},
	} {
		args := append([]string{"--src", src.Addr, "--dst", dst.Addr, "--time", "1s", "--key-file", key}, tc.args...)
		code, stdout, stderr := runClient(t, bin, a, args...)
		t.Logf("%v: exit %d: %s", tc.args, code, strings.TrimSpace(stderr))
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tc.args, code, tc.code, stdout, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, stderr)
			}
		}
		if strings.Contains(stderr, "ethtool -L lo") {
			t.Errorf("%v: advice that cannot work on the loopback device:\n%s", tc.args, stderr)
		}
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); n > 2 {
			t.Errorf("%v: %d lines of stderr, want one clear line:\n%s", tc.args, n+1, stderr)
		}
	}
	if after := b.LinkState(t, b.Link); after != before {
		t.Errorf("veth changed:\nbefore %s\nafter  %s", before, after)
	}
}

// TestRootRunZcrxMemlock: a target server without CAP_IPC_LOCK and with a 1 MiB RLIMIT_MEMLOCK
// refuses a 4 MiB host area before the kernel's bare ENOMEM (and before it touches the veth), with
// the figures and the ways out; a udmabuf area, which the kernel does not charge, passes that check.
func TestRootRunZcrxMemlock(t *testing.T) {
	testnet.Require(t)
	for _, tool := range []string{"prlimit", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	sup, err := zcrx.Probe()
	if err != nil {
		t.Fatal(err)
	}
	bin := testnet.Binary(t)
	wrap := filepath.Join(t.TempDir(), "ncdevmem-memlock")
	script := "#!/bin/sh\nexec prlimit --memlock=1048576:1048576 setpriv --bounding-set=-ipc_lock --inh-caps=-ipc_lock " + bin + " \"$@\"\n"
	if err := os.WriteFile(wrap, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	key := writeKey(t)
	a, b := testnet.Pair(t)
	src := a.StartServer(t, bin, 18410, nil, "--key-file", key)
	dst := b.StartServer(t, wrap, 18410, nil, "--key-file", key)
	before := b.LinkState(t, b.Link)
	want := []string{"zcrx needs 4.", "RLIMIT_MEMLOCK 1.0 MiB without CAP_IPC_LOCK", "ENOMEM", "ulimit -l", "--rx-mem udmabuf"}
	if errors.Is(sup.Usable(), zcrx.ErrNoZcrx) {
		want = []string{"no io_uring zero-copy receive"}
	}
	args := []string{"--src", src.Addr, "--dst", dst.Addr, "--time", "1s", "--key-file", key, "--zcrx", "-f", "veth0", "--queues", "0", "--zcrx-area-size", "4M"}
	code, stdout, stderr := runClient(t, bin, a, args...)
	t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
	if code != 1 {
		t.Errorf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	// udmabuf: past the memory check, refused further on (no /dev/udmabuf here, or the veth).
	code, _, stderr = runClient(t, bin, a, append(args, "--rx-mem", "udmabuf")...)
	if code != 1 || strings.Contains(stderr, "RLIMIT_MEMLOCK") {
		t.Errorf("udmabuf area: exit %d: %s", code, stderr)
	}
	if after := b.LinkState(t, b.Link); after != before {
		t.Errorf("veth changed:\nbefore %s\nafter  %s", before, after)
	}
}
