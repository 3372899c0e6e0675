// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"os"
	"testing"
)

func TestParseRelease(t *testing.T) {
	for in, want := range map[string]Release{
		"6.12.117+deb12-cloud-amd64": {6, 12},
		"7.3.4+deb13-cloud-amd64":    {7, 3},
		"6.18.44-fc-v595":            {6, 18},
	} {
		got, err := parseRelease(in)
		if err != nil || got != want {
			t.Errorf("parseRelease(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseRelease("garbage"); err == nil {
		t.Error("parseRelease(garbage) succeeded")
	}
}

// TestGuestEnvironment checks what the harness promises every guest: udmabuf built in, the netdev
// genl family, two virtio-net NICs, and on 7.x the netdevsim bus.
func TestGuestEnvironment(t *testing.T) {
	Require(t)
	rel := KernelRelease(t)
	t.Logf("guest kernel %s", rel)
	if _, err := os.Stat("/dev/udmabuf"); err != nil {
		t.Errorf("udmabuf: %v (Debian's %s kernel has CONFIG_UDMABUF=y)", err, rel)
	}
	if n := len(VirtioNICs(t)); n != 2 {
		t.Errorf("found %d virtio-net NICs, the harness attaches 2", n)
	}
	if rel.AtLeast(7, 0) {
		if _, err := os.Stat("/sys/bus/netdevsim/new_device"); err != nil {
			t.Errorf("netdevsim: %v (run-tests.sh loads the out-of-tree module on 7.x)", err)
		}
	}
}
