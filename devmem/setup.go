// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package devmem is the one devmem setup path that bench, legacy and selftest share: a device's
// RX queues are prepared (nic.Prepare: header split on, hds-thresh 0, channels, RSS off the
// queues or an RSS context, one ntuple rule per flow, all journaled), a dma-buf is allocated (or
// taken from the caller), and bound to the queues with bind-rx; Close tears it down in reverse:
// unbind (closing the binding's netlink socket), restore the NIC, free the buffer.
//
// The queue choice stays with the caller (the C tool's and the bench's policies differ); so do
// the texts of their errors: a failure comes back as a *StepError naming the step.
//
// For a memory provider other than a dma-buf (io_uring zcrx), leave Alloc and Buffer nil and set
// NoBind: Open then prepares the NIC and steers the flows to the queues, and nothing else; the
// caller registers its own provider on the queues and calls Close after releasing it (the kernel
// refuses to turn header split off while a provider holds a queue).
//
// Open and Close need CAP_NET_ADMIN unless Config.NoSetup and a dry run leave nothing to change.
package devmem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/rx"
)

// Binding is a bind-rx binding (a *bind.Binding): alive until Close.
type Binding interface {
	ID() uint32
	Close() error
}

// Config is one devmem RX setup.
type Config struct {
	// Ifname is the device; Ifindex its index (looked up when 0).
	Ifname  string
	Ifindex int
	// Queues are the RX queues to prepare and bind.
	Queues []uint32
	// Flows are steered to the queues (one ntuple rule each); a refused 5-tuple rule falls back
	// to the 3-tuple (nic.Prepare).
	Flows []nic.Flow
	// NoSetup leaves the NIC as it is (the user prepared it: --no-setup, -n).
	NoSetup bool
	// The nic.Request fields: where the journal goes, a dry run, whether to use an RSS context
	// (nil: when the NIC has them), header split only (no RSS, no rules), the log, and the kernel
	// (nil: the running one).
	StateDir        string
	DryRun          bool
	UseRSSContext   *bool
	HeaderSplitOnly bool
	Log             io.Writer
	NIC             nic.Kernel

	// Buffer is a dma-buf the caller owns (Close leaves it open); else Alloc makes one after the
	// NIC is prepared, and Close frees it. With neither, nothing is allocated or bound.
	Buffer dmabuf.Buffer
	Alloc  func() (dmabuf.Buffer, error)
	// NoBind prepares (and allocates) without binding: a non-devmem memory provider, or a caller
	// that binds later.
	NoBind bool
	// RxPageSize is the net_iov size asked of bind-rx (0: the page size); it becomes NiovSize.
	RxPageSize uint32
	// BindRX binds; nil is bind.BindRXWith.
	BindRX func(req bind.RXRequest) (Binding, error)
}

// Step names a step of Open, for the caller's error texts.
type Step string

// The steps of Open, in order.
const (
	StepIfindex Step = "ifindex"
	StepPrepare Step = "prepare"
	StepAlloc   Step = "alloc"
	StepBind    Step = "bind"
)

// StepError is a failed step of Open; everything before it has been undone.
type StepError struct {
	Step Step
	Err  error
}

func (e *StepError) Error() string { return e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// StepOf returns the step err failed in, "" when it is not a *StepError.
func StepOf(err error) Step {
	var se *StepError
	if errors.As(err, &se) {
		return se.Step
	}
	return ""
}

// Setup is a prepared, bound device. Fields are read-only.
type Setup struct {
	Ifname  string
	Ifindex int
	Queues  []uint32
	// NIC is the preparation (nil with NoSetup); Rules lists what it applied.
	NIC *nic.Setup
	// Buf is the dma-buf (nil without one); Binding the bind-rx binding (nil without one).
	Buf     dmabuf.Buffer
	Binding Binding
	// NiovSize is the binding's buffer granule: RxPageSize, or rx.DefaultNiovSize.
	NiovSize int

	ownBuf bool
	closed bool
	cerr   error
}

// Open runs the steps in order: ifindex, NIC preparation (unless NoSetup), allocation (Alloc),
// bind-rx (unless NoBind or there is no buffer). A failed step undoes the earlier ones and comes
// back as a *StepError, leaving the NIC, buffers and journal as they were.
func Open(ctx context.Context, cfg Config) (_ *Setup, err error) {
	s := &Setup{Ifname: cfg.Ifname, Ifindex: cfg.Ifindex, Queues: append([]uint32(nil), cfg.Queues...),
		NiovSize: rx.DefaultNiovSize}
	if cfg.RxPageSize > 0 {
		s.NiovSize = int(cfg.RxPageSize)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	if s.Ifindex == 0 {
		ifi, err := net.InterfaceByName(cfg.Ifname)
		if err != nil {
			return nil, &StepError{StepIfindex, fmt.Errorf("interface %s: %w (check -f: the interface must exist in this network namespace)", cfg.Ifname, err)}
		}
		s.Ifindex = ifi.Index
	}
	if len(cfg.Queues) == 0 {
		return nil, &StepError{StepPrepare, fmt.Errorf("%s: no RX queues to set up", cfg.Ifname)}
	}
	if !cfg.NoSetup {
		qs := make([]int, len(cfg.Queues))
		for i, q := range cfg.Queues {
			qs[i] = int(q)
		}
		s.NIC, err = nic.Prepare(ctx, nic.Request{Ifname: cfg.Ifname, Queues: qs, Flows: cfg.Flows,
			StateDir: cfg.StateDir, DryRun: cfg.DryRun, UseRSSContext: cfg.UseRSSContext,
			HeaderSplitOnly: cfg.HeaderSplitOnly, Log: cfg.Log, Kernel: cfg.NIC})
		if err != nil {
			return nil, &StepError{StepPrepare, err}
		}
	}
	if cfg.DryRun {
		return s, nil
	}
	switch {
	case cfg.Buffer != nil:
		s.Buf = cfg.Buffer
	case cfg.Alloc != nil:
		// Assigned only on success: a failed call may return a typed nil.
		buf, err := cfg.Alloc()
		if err != nil {
			return nil, &StepError{StepAlloc, err}
		}
		s.Buf, s.ownBuf = buf, true
	}
	if cfg.NoBind || s.Buf == nil {
		return s, nil
	}
	bindRX := cfg.BindRX
	if bindRX == nil {
		bindRX = func(req bind.RXRequest) (Binding, error) {
			b, err := bind.BindRXWith(req)
			if err != nil {
				return nil, err
			}
			return b, nil
		}
	}
	b, err := bindRX(bind.RXRequest{Ifindex: s.Ifindex, Queues: s.Queues, DmabufFD: s.Buf.FD(), RxPageSize: cfg.RxPageSize})
	if err != nil {
		return nil, &StepError{StepBind, err}
	}
	s.Binding = b
	return s, nil
}

// Rules are the steering rules the preparation applied (none with NoSetup).
func (s *Setup) Rules() []nic.Rule {
	if s.NIC == nil {
		return nil
	}
	return s.NIC.Rules()
}

// Close tears down in reverse: unbind, restore the NIC, free a buffer Open allocated. It goes on
// past a failed step and returns every error; a second Close returns the first one's result.
func (s *Setup) Close() error {
	if s.closed {
		return s.cerr
	}
	s.closed = true
	var errs []error
	if s.Binding != nil {
		if err := s.Binding.Close(); err != nil {
			errs = append(errs, fmt.Errorf("unbind %s queues %s: %w", s.Ifname, rx.QueueList(s.Queues), err))
		}
	}
	if s.NIC != nil {
		if err := s.NIC.Restore(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.ownBuf && s.Buf != nil {
		if err := s.Buf.Close(); err != nil {
			errs = append(errs, fmt.Errorf("free the dma-buf: %w", err))
		}
	}
	s.cerr = errors.Join(errs...)
	return s.cerr
}
