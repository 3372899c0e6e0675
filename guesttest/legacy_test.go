// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/google/go-cmp/cmp"
)

// probeExit is the C ncdevmem's exit status when probe mode finds the NIC unfit (main returns -1).
const probeExit = 255

// TestGuestLegacyProbeNetdevsim runs the C-compatible probe mode, `ncdevmem -f IF`, on netdevsim
// (7.x): it must end with the C tool's failure code and leave channels, header split and
// hds-thresh exactly as they were, with no journal behind.
func TestGuestLegacyProbeNetdevsim(t *testing.T) {
	Require(t)
	dev, before := nsimForPrepare(t, 51)
	probe(t, dev, probeExit)
	if d := cmp.Diff(before, readNIC(t, dev)); d != "" {
		t.Errorf("probe mode changed %s (-before +after):\n%s", dev, d)
	}
	if err := nic.CheckClean(nic.DefaultStateDir, dev); err != nil {
		t.Errorf("probe mode left a journal: %v", err)
	}
}

// TestGuestLegacyProbeVirtio runs probe mode on virtio-net under each kernel. With one RX queue the C
// tool stops before probing, in main, with exit status 1 and "number of device queues is too low";
// nothing may change.
func TestGuestLegacyProbeVirtio(t *testing.T) {
	Require(t)
	dev := VirtioNICs(t)[0]
	ipLink(t, "set", dev, "up")
	t.Cleanup(func() { ipLink(t, "set", dev, "down") })
	before := readNIC(t, dev)
	if n := before.Channels.RXQueues(); n >= 2 {
		t.Fatalf("virtio-net has %d RX queues; the harness gives it one", n)
	}
	stderr := probe(t, dev, 1)
	if !strings.Contains(stderr, "ncdevmem: number of device queues is too low") {
		t.Errorf("stderr lacks the C tool's message")
	}
	if d := cmp.Diff(before, readNIC(t, dev)); d != "" {
		t.Errorf("probe mode changed %s (-before +after):\n%s", dev, d)
	}
	if err := nic.CheckClean(nic.DefaultStateDir, dev); err != nil {
		t.Errorf("probe mode left a journal: %v", err)
	}
}

// probe runs `ncdevmem -f dev`, checks its exit status and returns its stderr.
func probe(t *testing.T, dev string, want int) string {
	t.Helper()
	cmd := exec.Command(ncdevmemBin(t), "-f", dev)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("ncdevmem -f %s: %v\nstdout:\n%s\nstderr:\n%s", dev, err, stdout.String(), stderr.String())
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != want {
		t.Errorf("ncdevmem -f %s: %v, want exit status %d", dev, err, want)
	}
	return stderr.String()
}
