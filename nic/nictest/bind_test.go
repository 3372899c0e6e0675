// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nictest

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/nic"
)

func TestBindRXRules(t *testing.T) {
	n := DevmemNIC(3)
	m := New(map[string]*NIC{"eth1": n})
	if _, err := m.BindRX("eth1", []uint32{7}, 1); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bind with header split at the driver default: %v, want EINVAL", err)
	}
	// 6.18+: the queue id is checked first (EINVAL), header split next, then hds-thresh.
	if _, err := m.BindRX("eth1", []uint32{8}, 1); !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "queue-id") {
		t.Fatalf("queue 8 of 8, header split off: %v, want EINVAL naming queue-id", err)
	}
	on := nic.TCPDataSplitEnabled
	if err := m.SetRings("eth1", nic.RingsUpdate{TCPDataSplit: &on}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.BindRX("eth1", []uint32{7}, 1); !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "hds-thresh is not zero") {
		t.Fatalf("hds-thresh 256: %v, want EINVAL hds-thresh is not zero", err)
	}
	// 6.12: header split first, ERANGE after it, no hds-thresh check.
	n.Kernel612 = true
	if _, err := m.BindRX("eth1", []uint32{8}, 1); !errors.Is(err, unix.ERANGE) {
		t.Fatalf("6.12, queue 8 of 8: %v, want ERANGE", err)
	}
	n.Kernel612 = false
	zero := uint32(0)
	if err := m.SetRings("eth1", nic.RingsUpdate{HDSThresh: &zero}); err != nil {
		t.Fatal(err)
	}
	b, err := m.BindRX("eth1", []uint32{6, 7}, 9)
	if err != nil || b.ID() != 9 || !n.Bound {
		t.Fatalf("bind: %v, bound %v", err, n.Bound)
	}
	four := uint32(4)
	if err := m.SetChannels("eth1", nic.ChannelsUpdate{Combined: &four}); err == nil {
		t.Fatal("channels shrunk below bound queues 6-7")
	}
	b.Close()
	b.Close()
	if n.Bound {
		t.Fatal("still bound after Close")
	}
	if err := m.SetChannels("eth1", nic.ChannelsUpdate{Combined: &four}); err != nil {
		t.Fatalf("channels after unbind: %v", err)
	}
	if _, err := m.BindRX("nope", nil, 1); !errors.Is(err, unix.ENODEV) {
		t.Fatalf("unknown device: %v", err)
	}
}
