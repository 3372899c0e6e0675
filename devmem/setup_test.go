// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package devmem

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/nic/nictest"
)

const eth = "eth1"

type fixture struct {
	model  *nictest.Model
	before *nictest.NIC
	cfg    Config
	freed  int
}

// closeCount is a host buffer whose Close is counted.
type closeCount struct {
	dmabuf.Buffer
	n *int
}

func (c closeCount) Close() error { *c.n++; return c.Buffer.Close() }

func newFixture(t *testing.T) *fixture {
	n := nictest.DevmemNIC(7)
	f := &fixture{model: nictest.New(map[string]*nictest.NIC{eth: n}), before: n.Clone()}
	f.cfg = Config{
		Ifname: eth, Ifindex: 7, Queues: []uint32{6, 7},
		Flows:    []nic.Flow{{Dst: netip.MustParseAddrPort("192.0.2.1:5201")}},
		StateDir: t.TempDir(), Log: &strings.Builder{}, NIC: f.model,
		Alloc: func() (dmabuf.Buffer, error) {
			b, err := dmabuf.NewHost(1 << 20)
			return closeCount{b, &f.freed}, err
		},
		BindRX: func(req bind.RXRequest) (Binding, error) { return f.model.BindRX(eth, req.Queues, 5) },
	}
	return f
}

func (f *fixture) restored(t *testing.T) {
	t.Helper()
	if diff := cmp.Diff(f.before, f.model.NICs[eth], cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Fatalf("NIC not restored (-before +after):\n%s\nlog:\n%s", diff, f.cfg.Log)
	}
	if err := nic.CheckClean(f.cfg.StateDir, eth); err != nil {
		t.Fatalf("journal left: %v", err)
	}
}

func TestOpenAndClose(t *testing.T) {
	f := newFixture(t)
	f.cfg.RxPageSize = 16384
	s, err := Open(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := f.model.NICs[eth]
	if !n.Bound || s.Binding.ID() != 5 || len(s.Rules()) != 1 || s.NiovSize != 16384 || s.Buf == nil {
		t.Fatalf("bound %v id %v rules %v niov %d", n.Bound, s.Binding, s.Rules(), s.NiovSize)
	}
	// The model refuses header split off while bound: Close must unbind before it restores.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f.restored(t)
	if f.freed != 1 || s.Close() != nil || f.freed != 1 {
		t.Errorf("buffer freed %d times, want once", f.freed)
	}
}

// TestOpenFailsAtEachStep: a refused step undoes the earlier ones and names itself.
func TestOpenFailsAtEachStep(t *testing.T) {
	for _, step := range []Step{StepPrepare, StepAlloc, StepBind} {
		f := newFixture(t)
		switch step {
		case StepPrepare:
			f.cfg.Queues = []uint32{6, 99}
		case StepAlloc:
			f.cfg.Alloc = func() (dmabuf.Buffer, error) { return nil, errors.New("no udmabuf") }
		case StepBind:
			f.cfg.BindRX = func(bind.RXRequest) (Binding, error) { return nil, errors.New("refused") }
		}
		s, err := Open(context.Background(), f.cfg)
		if s != nil || StepOf(err) != step {
			t.Fatalf("%s: setup %v, err %v (step %q)", step, s, err, StepOf(err))
		}
		f.restored(t)
		if step == StepBind && f.freed != 1 {
			t.Errorf("bind refused: buffer freed %d times, want once", f.freed)
		}
	}
}

// TestOpenWithoutBinding is the path for a memory provider that is not a dma-buf (io_uring zcrx):
// the NIC is prepared and steered, nothing allocated or bound.
func TestOpenWithoutBinding(t *testing.T) {
	f := newFixture(t)
	f.cfg.Alloc, f.cfg.NoBind = nil, true
	s, err := Open(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := f.model.NICs[eth]
	if n.Bound || s.Binding != nil || s.Buf != nil || n.SplitConfig != nic.TCPDataSplitEnabled || len(s.Rules()) != 1 {
		t.Fatalf("bound %v binding %v buf %v split %v rules %v", n.Bound, s.Binding, s.Buf, n.SplitConfig, s.Rules())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f.restored(t)
}

// TestOpenCallerBuffer: a buffer the caller passes in is bound but not freed; NoSetup leaves the
// NIC alone, so the bind meets the NIC as the user left it.
func TestOpenCallerBuffer(t *testing.T) {
	f := newFixture(t)
	buf, _ := dmabuf.NewHost(1 << 20)
	f.cfg.Buffer, f.cfg.Alloc = closeCount{buf, &f.freed}, nil
	f.cfg.NoSetup = true
	_, err := Open(context.Background(), f.cfg)
	if StepOf(err) != StepBind || !strings.Contains(err.Error(), "tcp-data-split is disabled") {
		t.Fatalf("--no-setup with header split off: %v, want the kernel's refusal at bind", err)
	}
	f.restored(t)
	f.cfg.NoSetup = false
	s, err := Open(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if f.freed != 0 {
		t.Errorf("caller's buffer freed %d times", f.freed)
	}
	f.restored(t)
}

func TestOpenDryRun(t *testing.T) {
	f := newFixture(t)
	f.cfg.DryRun = true
	s, err := Open(context.Background(), f.cfg)
	if err != nil || s.Buf != nil || s.Binding != nil {
		t.Fatalf("dry run: %v, %+v", err, s)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f.restored(t)
}
