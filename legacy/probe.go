// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package legacy

import (
	"context"
	"fmt"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/nic"
)

// probe is the C tool's run_devmem_tests: with the NIC prepared (RSS off the devmem queues, header
// split on), a bind with attribute-less queue nests must fail, a bind with header split off must
// fail, a bind with it on must succeed, and shrinking the channels below the bound queues must
// fail. Everything is put back whatever happens. A nil error means the NIC supports devmem RX.
func (t *tool) probe(ctx context.Context) (err error) {
	mem, err := t.allocate()
	if err != nil {
		return ctool("Failed to allocate memory buffer", err)
	}
	defer mem.Close()
	if _, err := t.sys.nic().Rings(t.o.Ifname); err != nil {
		return ctool("Failed to get current ring configuration", err)
	}
	// The shared setup path prepares the NIC; the binds below are the probe's own tests.
	setup, err := t.open(ctx, nil, mem, false, true)
	if err != nil {
		return fmt.Errorf("rss error: %w", err)
	}
	defer t.close(setup)
	passed := func(what string) { t.summary.Probe = append(t.summary.Probe, what) }

	// (a) Queue nests without attributes.
	if b, err := t.sys.bindRXEmpty(t.ifindex, t.num, mem.FD()); err == nil {
		b.Close()
		return toolError("Binding empty queues array should have failed")
	}
	passed("bind with empty queue nests refused")

	// (b) Header split back to the driver default: the bind must be refused.
	if err := t.headerSplit(false); err != nil {
		return ctool("Failed to configure header split", err)
	}
	req := bind.RXRequest{Ifindex: t.ifindex, Queues: t.queues(), DmabufFD: mem.FD(), RxPageSize: t.o.RxPageSize}
	if b, err := t.sys.bindRX(req); err == nil {
		b.Close()
		return toolError("Configure dmabuf with header split off should have failed")
	}
	passed("bind with header split off refused")

	// (c) Header split on: the bind must succeed.
	if err := t.headerSplit(true); err != nil {
		return ctool("Failed to configure header split", err)
	}
	b, err := t.sys.bindRX(req)
	if err != nil {
		return ctool("Failed to bind", err)
	}
	defer b.Close()
	fmt.Fprintf(t.stderr, "got dmabuf id=%d\n", b.ID())
	t.summary.DmabufID = b.ID()
	passed("bind with header split on")

	// (d) Deactivating a bound queue must be refused.
	refused, err := t.changeChannels(uint32(t.num), uint32(t.num))
	if err != nil {
		return err
	}
	if !refused {
		return toolError("Deactivating a bound queue should be illegal")
	}
	passed("channel change below the bound queues refused")
	return nil
}

// changeChannels is the C tool's check_changing_channels: it asks for rx RX and tx TX channels
// (combined where the driver counts combined channels) and reports whether the kernel refused. An
// unexpected success is undone at once.
func (t *tool) changeChannels(rxn, txn uint32) (refused bool, err error) {
	fmt.Fprintf(t.stderr, "setting channel count rx:%d tx:%d\n", rxn, txn)
	k := t.sys.nic()
	old, err := k.Channels(t.o.Ifname)
	if err != nil {
		return false, fmt.Errorf("get channels: %w", err)
	}
	var u nic.ChannelsUpdate
	zero := uint32(0)
	switch {
	case old.CombinedMax > 0 || old.Combined > 0:
		if old.RXMax > 0 || old.TXMax > 0 {
			u.RX, u.TX = &zero, &zero
		}
		c := min(rxn, txn)
		u.Combined = &c
		switch {
		case rxn > txn:
			d := rxn - txn
			u.RX = &d
		case txn > rxn:
			d := txn - rxn
			u.TX = &d
		}
	case old.RXMax > 0 || old.RX > 0:
		u.RX, u.TX = &rxn, &txn
	default:
		return false, fmt.Errorf("device has neither combined nor rx channels")
	}
	if err := k.SetChannels(t.o.Ifname, u); err != nil {
		fmt.Fprintf(t.stderr, "set channels: %v\n", err)
		return true, nil
	}
	back := nic.ChannelsUpdate{RX: &old.RX, TX: &old.TX, Combined: &old.Combined}
	if err := k.SetChannels(t.o.Ifname, back); err != nil {
		return false, fmt.Errorf("un-setting channels of %s back to rx %d tx %d combined %d: %w",
			t.o.Ifname, old.RX, old.TX, old.Combined, err)
	}
	return false, nil
}
