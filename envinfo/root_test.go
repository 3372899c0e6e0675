// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package envinfo

import (
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/report"
)

// TestRootCaptureVeth captures a veth inside a namespace entered with setns, where sysfs still
// shows the host's devices: the ethtool facts must come through regardless.
func TestRootCaptureVeth(t *testing.T) {
	testnet.Require(t)
	ns := testnet.Single(t)
	var e *report.Env
	ns.Run(t, func() error { e = Capture(ns.Link); return nil })
	if e.Driver != "veth" {
		t.Errorf("driver %q, want veth (ETHTOOL_GDRVINFO in the namespace); unknown: %s", e.Driver, e.Extra["unknown"])
	}
	if e.Channels == nil && !strings.Contains(e.Extra["unknown"], "channels: ") {
		t.Errorf("channels neither read nor marked unknown: %+v", e)
	}
	if e.KernelRelease == "" {
		t.Error("no kernel release")
	}
	t.Logf("veth: rings %v channels %v header split %q unknown %q", e.Rings, e.Channels, e.HeaderSplit, e.Extra["unknown"])
}
