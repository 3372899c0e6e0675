// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/zcrx"
)

func TestSpecZcrxRefusals(t *testing.T) {
	base := func() TestSpec {
		s := DefaultSpec()
		s.Zcrx, s.Ifname = true, "eth1"
		return s
	}
	ok := base()
	if err := ok.Check(); err != nil {
		t.Fatalf("a plain --zcrx spec refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*TestSpec)
		want string
	}{
		{"with --devmem-rx", func(s *TestSpec) { s.DevmemRX = true }, "--zcrx and --devmem-rx"},
		{"without -f", func(s *TestSpec) { s.Ifname = "" }, "add -f IFNAME"},
		{"area above the limit", func(s *TestSpec) { s.ZcrxAreaSize = zcrx.MaxAreaSize + 4096 }, "above the"},
		{"area not in pages", func(s *TestSpec) { s.ZcrxAreaSize = 1<<20 + 1 }, "not a multiple"},
		{"cuda area", func(s *TestSpec) { s.RxMem = "cuda" }, "--rx-mem host|udmabuf"},
		{"--dmabuf-size", func(s *TestSpec) { s.DmabufSize = 1 << 20 }, "--zcrx-area-size"},
		{"--msg-trunc", func(s *TestSpec) { s.MsgTrunc, s.Validate.Every = true, 0 }, "--msg-trunc and --zcrx"},
		{"area size without --zcrx", func(s *TestSpec) { s.Zcrx, s.Ifname, s.ZcrxAreaSize = false, "", 1<<20 }, "only applies to --zcrx"},
	} {
		s := base()
		tc.mod(&s)
		err := s.Check()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestRootZcrxRefusedOnVeth: on the host kernel (zcrx built in, no zcrx-capable driver) the zcrx
// target refuses a veth with the kernel's reason and advice, and leaves the veth as it was.
func TestRootZcrxRefusedOnVeth(t *testing.T) {
	testnet.Require(t)
	sup, err := zcrx.Probe()
	if err != nil {
		t.Fatal(err)
	}
	_, b := testnet.Pair(t)
	stateDir := t.TempDir()
	for _, tc := range []struct {
		name string
		spec TestSpec
		want []string
		is   error
	}{
		{name: "no setup", spec: TestSpec{Queues: []int{0}, NoSetup: true}, want: []string{"zcrx register veth0 queue 0", "no DMA device"}, is: unix.EOPNOTSUPP},
		{name: "nic setup", spec: TestSpec{Queues: []int{0}}, want: []string{"zcrx", "veth0"}},
		{name: "no such interface", spec: TestSpec{Ifname: "nosuch0"}, want: []string{"nosuch0", "check -f"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Zcrx = true
			if spec.Ifname == "" {
				spec.Ifname = "veth0"
			}
			spec.StateDir, spec.Flows, spec.ReadSize = stateDir, 1, 64<<10
			if errors.Is(sup.Usable(), zcrx.ErrNoZcrx) && tc.is != nil {
				tc.want, tc.is = []string{"no io_uring zero-copy receive"}, nil
			}
			before := b.LinkState(t, "veth0")
			err := b.Do(func() error {
				fl, err := zcrxDatapath{}.Setup(context.Background(), Setup{Spec: &spec, Role: RoleTarget,
					Local: netip.AddrPortFrom(b.Addr, 5201), Logf: func(f string, a ...any) { t.Logf("note: "+f, a...) }})
				if err == nil {
					fl.Close()
					return errors.New("zcrx setup succeeded on a veth")
				}
				return err
			})
			t.Logf("error: %v", err)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if after := b.LinkState(t, "veth0"); after != before {
				t.Errorf("veth changed:\nbefore %s\nafter  %s", before, after)
			}
			if ents, _ := os.ReadDir(stateDir); len(ents) != 0 {
				t.Errorf("journal left in the state directory: %v", ents)
			}
		})
	}
}

// zcrxNetdev is a device with n RX queues (NAPI ids 100+i), held marks queues a provider holds.
type zcrxNetdev struct {
	fakeNetdev
	n    uint32
	held map[uint32]bool
}

func (d zcrxNetdev) Queues(int) ([]bind.Queue, error) {
	var qs []bind.Queue
	for i := range d.n {
		qs = append(qs, bind.Queue{ID: i, Type: bind.QueueRX, NapiID: 100 + i, IOUring: d.held[i]})
	}
	return qs, nil
}

func TestZcrxPickQueuesSplitsTheArea(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   TestSpec
		dev    zcrxNetdev
		queues []uint32
		per    int64
		want   string
	}{
		{"one queue", TestSpec{NumRXQueues: 1, ZcrxAreaSize: 1 << 20}, zcrxNetdev{n: 4}, []uint32{3}, 1 << 20, ""},
		{"three queues", TestSpec{NumRXQueues: 3, ZcrxAreaSize: 1 << 20}, zcrxNetdev{n: 4}, []uint32{1, 2, 3}, 348160, ""},
		{"--queues", TestSpec{Queues: []int{0, 2}, ZcrxAreaSize: 1 << 20}, zcrxNetdev{n: 4}, []uint32{0, 2}, 512 << 10, ""},
		{"too small to split", TestSpec{NumRXQueues: 3, ZcrxAreaSize: 128 << 10}, zcrxNetdev{n: 4}, nil, 0, "below the 64 KiB minimum per queue"},
		{"held", TestSpec{NumRXQueues: 2, ZcrxAreaSize: 1 << 20}, zcrxNetdev{n: 4, held: map[uint32]bool{3: true}}, nil, 0, "queue 3 is already held"},
		{"too few queues", TestSpec{NumRXQueues: 4, ZcrxAreaSize: 1 << 20}, zcrxNetdev{n: 4}, nil, 0, "ethtool -L"},
	} {
		dev := tc.dev
		k := &devmemKernel{dial: func() (netdevClient, error) { return dev, nil }}
		spec := tc.spec
		f := &zcrxFlows{spec: &spec, k: k, ifname: "eth1", size: spec.ZcrxAreaSize}
		err := f.pickQueues()
		if tc.want != "" {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
			}
			continue
		}
		if err != nil || !slices.Equal(f.queues, tc.queues) || f.per != tc.per {
			t.Errorf("%s: queues %v, %d bytes each (%v); want %v, %d", tc.name, f.queues, f.per, err, tc.queues, tc.per)
		}
	}
}

func TestZcrxMemoryCheckedBeforeTheNIC(t *testing.T) {
	low := zcrx.Memlock{Limit: 8 << 20}
	for _, tc := range []struct {
		kind  string
		m     zcrx.Memlock
		mlErr error
		want  string
	}{
		{"host", low, nil, "RLIMIT_MEMLOCK 8.0 MiB without CAP_IPC_LOCK"},
		{"udmabuf", low, nil, ""}, // a dma-buf area is not charged; the rings fit
		{"host", zcrx.Memlock{Limit: 8 << 20, IPCLock: true}, nil, ""},
		{"host", zcrx.Memlock{}, errors.New("capget: EPERM"), ""}, // noted, left to the kernel
	} {
		k := &devmemKernel{validate: func(string, int64) error { return nil }}
		var notes []string
		f := &zcrxFlows{k: k, kind: tc.kind, per: 32 << 20, queues: []uint32{2, 3},
			logf: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }}
		err := f.checkMemory(tc.m, tc.mlErr)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.kind, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "zcrx needs 66.0 MiB") {
			t.Errorf("the refusal does not give the two 32 MiB areas' charge: %v", err)
		}
	}
	// A udmabuf area over the module's limit is refused by dmabuf's own check.
	k := &devmemKernel{validate: func(kind string, size int64) error { return fmt.Errorf("%d bytes over the udmabuf size limit", size) }}
	f := &zcrxFlows{k: k, kind: "udmabuf", per: 32 << 20, queues: []uint32{3}, logf: func(string, ...any) {}}
	if err := f.checkMemory(low, nil); err == nil || !strings.Contains(err.Error(), "zcrx --rx-mem udmabuf: 33554432 bytes") {
		t.Errorf("udmabuf over the limit: %v", err)
	}
}

func TestZcrxRcvbuf(t *testing.T) {
	for _, tc := range []struct {
		per     int64
		flows   int
		rmemMax int64
		want    int
	}{
		{256 << 10, 1, 6 << 20, 32 << 10},    // 64 buffers: the socket may hold a quarter of them
		{256 << 10, 4, 6 << 20, 8 << 10},     // shared by four flows that may all land on the queue
		{64 << 10, 8, 6 << 20, 4096},         // never below a page
		{DefaultZcrxAreaSize, 1, 6 << 20, 0}, // the kernel's autotuning already fits
		{32 << 20, 4, 6 << 20, 1 << 20},      // 2 MiB buffers, below the 6 MiB maximum
		{32 << 20, 4, 0, 1 << 20},            // tcp_rmem unknown: cap anyway
	} {
		if got := zcrxRcvbuf(tc.per, tc.flows, tc.rmemMax); got != tc.want {
			t.Errorf("zcrxRcvbuf(%d, %d, %d) = %d, want %d", tc.per, tc.flows, tc.rmemMax, got, tc.want)
		}
	}
	if tcpRmemMax() <= 0 {
		t.Error("net.ipv4.tcp_rmem unreadable")
	}
}

func TestZcrxQueueOfNeedsTheFlowsNAPI(t *testing.T) {
	c, _ := testnet.TCPPair(t)
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	rc.Control(func(u uintptr) { fd = int(u) })
	f := &zcrxFlows{ifname: "eth1", client: zcrxNetdev{n: 4}, queues: []uint32{2, 3},
		qs: []*zcrxQueue{{queue: 2}, {queue: 3}}}
	// Loopback has no NAPI: with two ifqs the flow's cannot be told, and that is said.
	if _, err := f.queueOf(fd); err == nil || !strings.Contains(err.Error(), "no NAPI id (the device has no NAPI, or the flow is not steered to the zcrx queues 2-3)") {
		t.Errorf("queueOf on loopback: %v", err)
	}
	f.qs = f.qs[:1]
	if q, err := f.queueOf(fd); err != nil || q.queue != 2 {
		t.Errorf("one ifq: %v %v, want it whatever the NAPI", q, err)
	}
}
