// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package doctor

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/zcrx"
)

// zcrxFake is a devmem fake that also answers the zcrx questions.
type zcrxFake struct {
	*fakeSystem
	sup      zcrx.Support
	supErr   error
	disabled int
	disErr   error
	probe    error
	probed   []uint32
	memlock  zcrx.Memlock
	mlErr    error
}

func (f *zcrxFake) ZcrxSupport() (zcrx.Support, error) { return f.sup, f.supErr }
func (f *zcrxFake) IoUringDisabled() (int, error)      { return f.disabled, f.disErr }
func (f *zcrxFake) ZcrxMemlock() (zcrx.Memlock, error) { return f.memlock, f.mlErr }
func (f *zcrxFake) ProbeZcrx(_ int, q uint32) error {
	f.probed = append(f.probed, q)
	return f.probe
}

func readyZcrx() *zcrxFake {
	return &zcrxFake{fakeSystem: readyNIC(),
		sup:     zcrx.Support{RecvZC: true, Query: &uapi.IoUringQueryZcrx{AreaFlags: uapi.IORING_ZCRX_AREA_DMABUF, Features: uapi.ZCRX_FEATURE_EVENT}, Major: 7, Minor: 3},
		probe:   &zcrx.RegisterError{Errno: unix.EINVAL},
		memlock: zcrx.Memlock{Limit: 8 << 20, IPCLock: true}}
}

func TestZcrxReady(t *testing.T) {
	f := readyZcrx()
	r, err := Run(f, "eth1")
	if err != nil {
		t.Fatal(err)
	}
	if r.ZCRX == nil || !r.ZCRX.Ready {
		t.Fatalf("zcrx verdict %+v", r.ZCRX)
	}
	if c := check(t, r, "zcrx-kernel"); c.Status != StatusOK || !strings.Contains(c.Detail, "dma-buf areas (--rx-mem udmabuf) yes, copy-fallback counters yes") {
		t.Errorf("kernel line %+v", c)
	}
	if len(f.probed) != 1 || f.probed[0] != 3 {
		t.Errorf("probed queues %v, want the last free one (3)", f.probed)
	}
	// The shared lines gate zcrx; udmabuf does not (zcrx can use host memory).
	if !check(t, r, "tcp-data-split").ZC || check(t, r, "udmabuf").ZC || check(t, r, "bind-tx-probe").ZC {
		t.Error("wrong lines shared with zcrx")
	}
	var b bytes.Buffer
	WriteText(&b, r)
	if !strings.Contains(b.String(), "ZCRX: ready") {
		t.Errorf("text lacks the zcrx verdict:\n%s", b.String())
	}
}

func TestZcrxNotReady(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func(f *zcrxFake)
		id    string
		fix   string
		ready bool
	}{
		{"kernel without zcrx", func(f *zcrxFake) { f.sup = zcrx.Support{RecvZC: false, Register: zcrx.ErrNoZcrx} }, "zcrx-kernel", "CONFIG_IO_URING_ZCRX", false},
		{"sysctl 2", func(f *zcrxFake) { f.disabled = 2 }, "zcrx-sysctl", "kernel.io_uring_disabled=0", false},
		{"sysctl 1 as root", func(f *zcrxFake) { f.disabled = 1 }, "zcrx-sysctl", "kernel.io_uring_disabled=0", true},
		{"no sysctl", func(f *zcrxFake) { f.disErr = os.ErrNotExist }, "zcrx-sysctl", "", true},
		{"no DMA device", func(f *zcrxFake) { f.probe = &zcrx.RegisterError{Errno: unix.EOPNOTSUPP} }, "zcrx-probe", "memory providers", false},
		{"header split off (the setup turns it on)", func(f *zcrxFake) { f.rings.TCPDataSplit = nic.TCPDataSplitDisabled }, "tcp-data-split", "tcp-data-split on", true},
		{"no CAP_NET_ADMIN", func(f *zcrxFake) { f.noCap = true }, "cap-net-admin", "", false},
		// A low RLIMIT_MEMLOCK only limits host areas: a warning with the ways out, still ready.
		{"8 MiB RLIMIT_MEMLOCK without CAP_IPC_LOCK", func(f *zcrxFake) { f.memlock.IPCLock = false }, "zcrx-memlock", "ulimit -l unlimited", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := readyZcrx()
			tc.mod(f)
			r, err := Run(f, "eth1")
			if err != nil {
				t.Fatal(err)
			}
			if r.ZCRX.Ready != tc.ready {
				t.Fatalf("ready %v, want %v: %+v", r.ZCRX.Ready, tc.ready, r.ZCRX)
			}
			c := check(t, r, tc.id)
			if tc.fix != "" && !strings.Contains(strings.Join(c.Fix, " "), tc.fix) {
				t.Errorf("%s fix %q lacks %q", tc.id, c.Fix, tc.fix)
			}
		})
	}
	// The probe is not sent when it could not teach anything.
	f := readyZcrx()
	f.noCap = true
	if _, err := Run(f, "eth1"); err != nil || len(f.probed) != 0 {
		t.Errorf("probed %v without CAP_NET_ADMIN", f.probed)
	}
}

func TestZcrxMemlockLine(t *testing.T) {
	for _, tc := range []struct {
		m      zcrx.Memlock
		err    error
		status Status
		detail string
	}{
		{zcrx.Memlock{Limit: 8 << 20, IPCLock: true}, nil, StatusOK, "CAP_IPC_LOCK"},
		{zcrx.Memlock{Limit: unix.RLIM_INFINITY}, nil, StatusOK, "unlimited"},
		{zcrx.Memlock{Limit: 1 << 30}, nil, StatusOK, "RLIMIT_MEMLOCK 1024.0 MiB without CAP_IPC_LOCK: the default host area fits"},
		{zcrx.Memlock{Limit: 8 << 20}, nil, StatusWarn, "RLIMIT_MEMLOCK 8.0 MiB without CAP_IPC_LOCK: the default 62 MiB host area (--rx-mem host) would be refused; a host area fits up to about 7540 KiB"},
		{zcrx.Memlock{}, errors.New("capget: EPERM"), StatusWarn, "cannot read: capget"},
	} {
		f := readyZcrx()
		f.memlock, f.mlErr = tc.m, tc.err
		r, err := Run(f, "eth1")
		if err != nil {
			t.Fatal(err)
		}
		c := check(t, r, "zcrx-memlock")
		if c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) || !c.ZC {
			t.Errorf("%+v: %s %q, want %s with %q", tc.m, c.Status, c.Detail, tc.status, tc.detail)
		}
	}
}

func TestZcrxAbsentForDevmemOnlySystems(t *testing.T) {
	r, err := Run(readyNIC(), "eth1")
	if err != nil {
		t.Fatal(err)
	}
	if r.ZCRX != nil {
		t.Fatalf("zcrx verdict from a System without zcrx answers: %+v", r.ZCRX)
	}
}

// TestRootDoctorZcrxVeth: on the host kernel, the zcrx lines see the kernel's zcrx support and the
// real refusal of a veth queue.
func TestRootDoctorZcrxVeth(t *testing.T) {
	testnet.Require(t)
	sup, err := zcrx.Probe()
	if err != nil {
		t.Fatal(err)
	}
	ns := testnet.Single(t)
	var r *Report
	err = ns.Do(func() error {
		l := Live()
		defer l.Close()
		var err error
		r, err = Run(l, ns.Link)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.ZCRX == nil || r.ZCRX.Ready {
		t.Fatalf("veth judged ready for zcrx: %+v", r.ZCRX)
	}
	want := map[string]Status{"zcrx-kernel": StatusOK, "zcrx-sysctl": StatusOK, "zcrx-probe": StatusFail}
	if errors.Is(sup.Usable(), zcrx.ErrNoZcrx) {
		want = map[string]Status{"zcrx-kernel": StatusFail, "zcrx-probe": StatusSkip}
	}
	for id, st := range want {
		if c := check(t, r, id); c.Status != st {
			t.Errorf("%s: %s (%s), want %s", id, c.Status, c.Detail, st)
		}
	}
	if sup.Usable() == nil && !strings.Contains(check(t, r, "zcrx-probe").Detail, "no DMA device") {
		t.Errorf("zcrx probe %+v: want the missing DMA device named", check(t, r, "zcrx-probe"))
	}
}
