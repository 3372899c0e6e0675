// SPDX-License-Identifier: MIT

package bench

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

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
