// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nictest

import (
	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/nic"
)

// Binding is a devmem dma-buf binding on the model; Close unbinds, as closing the netlink socket
// does in the kernel.
type Binding struct {
	id     uint32
	unbind func()
}

// ID is the binding's dma-buf id.
func (b *Binding) ID() uint32 { return b.id }

// Close unbinds; a second Close does nothing.
func (b *Binding) Close() error {
	if b.unbind != nil {
		b.unbind()
		b.unbind = nil
	}
	return nil
}

// NewBinding is a binding that pins nothing (bind-tx, or a broken kernel's accepted request).
func NewBinding(id uint32) *Binding { return &Binding{id: id} }

// BindRX binds queues of ifname as the kernel's bind-rx does on a devmem-capable driver. The
// kernel's order of checks depends on its version (NIC.Kernel612):
//   - 6.18 and later: a queue beyond the RX channels is EINVAL with the bad queue-id attribute,
//     checked first (netdev-genl); then "tcp-data-split is disabled" unless header split is
//     configured on (the configured value, not what the driver reports); then "hds-thresh is not
//     zero" when the driver reports a nonzero threshold (netdev_rx_queue.c).
//   - 6.12: header split first, then ERANGE "rx queue index out of range"; hds-thresh unchecked.
//
// While bound, the model refuses to disable header split and to shrink the channels below the
// bound queues, as the kernel does.
func (m *Model) BindRX(ifname string, queues []uint32, id uint32) (*Binding, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.get(ifname, "bind-rx")
	if err != nil {
		return nil, err
	}
	if !n.Kernel612 {
		for _, q := range queues {
			if q >= n.rxQueues() {
				return nil, kerr(ifname, "bind-rx", unix.EINVAL, "bad attribute: queue-id")
			}
		}
	}
	if !n.HDS || n.SplitConfig != nic.TCPDataSplitEnabled {
		return nil, kerr(ifname, "bind-rx", unix.EINVAL, "tcp-data-split is disabled")
	}
	if !n.Kernel612 && n.HDSThreshSupported && n.HDSThresh != 0 {
		return nil, kerr(ifname, "bind-rx", unix.EINVAL, "hds-thresh is not zero")
	}
	for _, q := range queues {
		if q >= n.rxQueues() {
			return nil, kerr(ifname, "bind-rx", unix.ERANGE, "rx queue index out of range")
		}
	}
	n.Bound, n.BoundQueues = true, append([]uint32(nil), queues...)
	return &Binding{id: id, unbind: func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		n.Bound, n.BoundQueues = false, nil
	}}, nil
}
