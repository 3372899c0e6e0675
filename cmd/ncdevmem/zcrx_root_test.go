// SPDX-License-Identifier: MIT

package main

import (
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
)

// TestRootRunZcrxRefusals: `ncdevmem run --zcrx` between real servers on the host kernel, whose
// veth has no zcrx support: the target refuses with the kernel's reason and advice, exit 1, and
// the veth stays as it was; flag conflicts and an oversized area are usage errors (exit 2).
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
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); n > 2 {
			t.Errorf("%v: %d lines of stderr, want one clear line:\n%s", tc.args, n+1, stderr)
		}
	}
	if after := b.LinkState(t, b.Link); after != before {
		t.Errorf("veth changed:\nbefore %s\nafter  %s", before, after)
	}
}
