// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/doctor"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/nic"
)

// doctorCLI runs args as run does, with the doctor command reading sys (nil: the live machine).
func doctorCLI(sys doctor.System, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	if sys == nil {
		code = run(context.Background(), args, strings.NewReader(""), &o, &e)
		return code, o.String(), e.String()
	}
	root := newRootCmd()
	if c, _, err := root.Find([]string{"doctor"}); err == nil && c != root {
		root.RemoveCommand(c)
	}
	root.AddCommand(doctorCmd(&doctorOptions{open: func() (doctor.System, func() error) {
		return sys, func() error { return nil }
	}}))
	root.SetArgs(args)
	root.SetIn(strings.NewReader(""))
	root.SetOut(&o)
	root.SetErr(&e)
	code = exitCode(root.ExecuteContext(context.Background()), &e)
	return code, o.String(), e.String()
}

// doctorFake is a NIC ready for devmem RX; tx says whether its driver also sends from a dma-buf.
type doctorFake struct{ tx bool }

func (doctorFake) KernelRelease() (string, error) { return "6.18.44", nil }
func (doctorFake) Ifindex(ifname string) (int, error) {
	if ifname != "eth1" {
		return 0, errors.New("no interface " + ifname + " in this network namespace")
	}
	return 3, nil
}
func (doctorFake) NetdevOps() ([]bind.Op, error) {
	return []bind.Op{{Cmd: 10, Name: "queue-get", Flags: 0xe}, {Cmd: 13, Name: "bind-rx", Flags: 0xb}, {Cmd: 15, Name: "bind-tx", Flags: 0xa}}, nil
}
func (doctorFake) Queues(int) ([]bind.Queue, error) {
	return []bind.Queue{{ID: 0, Type: bind.QueueRX, NapiID: 9}, {ID: 1, Type: bind.QueueRX, NapiID: 10}}, nil
}
func (doctorFake) Napis(int) ([]bind.Napi, error) {
	return []bind.Napi{{ID: 9, IRQ: 30}, {ID: 10, IRQ: 31}}, nil
}
func (doctorFake) ProbeBindRX(int, uint32) error {
	return &bind.Error{Op: "bind-rx", Errno: unix.EINVAL}
}
func (f doctorFake) ProbeBindTX(int) error {
	if f.tx {
		return &bind.Error{Op: "bind-tx", Errno: unix.EINVAL}
	}
	return &bind.Error{Op: "bind-tx", Errno: unix.EOPNOTSUPP, Message: "Driver does not support netmem TX", Advice: "use host-memory TX"}
}
func (doctorFake) Driver(string) (*nic.Driver, error) { return &nic.Driver{Driver: "gve"}, nil }
func (doctorFake) Channels(string) (*nic.Channels, error) {
	return &nic.Channels{Combined: 2, CombinedMax: 4}, nil
}
func (doctorFake) Rings(string) (*nic.Rings, error) {
	return &nic.Rings{TCPDataSplit: nic.TCPDataSplitDisabled}, nil
}
func (doctorFake) Ntuple(string) (*nic.Ntuple, error) { return &nic.Ntuple{TableSize: 8}, nil }
func (doctorFake) RSS(string) (*nic.RSS, error) {
	return &nic.RSS{RXRings: 2, Indir: []uint32{0, 1}}, nil
}
func (doctorFake) Link(int) (doctor.Link, error)      { return doctor.Link{Up: true}, nil }
func (doctorFake) IRQAffinity(uint32) (string, error) { return "1", nil }
func (doctorFake) Udmabuf() (bool, int, error)        { return true, 64, nil }
func (doctorFake) CapNetAdmin() (bool, error)         { return true, nil }
func (doctorFake) CUDA() error                        { return nil }
func (doctorFake) CUDABuilt() bool                    { return false }

func TestDoctorUsage(t *testing.T) {
	for _, args := range [][]string{
		{"doctor"},
		{"doctor", "-f", "eth1", "--for", "sideways"},
		{"doctor", "-f", "eth1", "extra"},
		{"doctor", "--bogus"},
	} {
		code, out, errs := doctorCLI(doctorFake{tx: true}, args...)
		if code != exitUsage || out != "" || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "ncdevmem: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one line", args, code, out, errs)
		}
	}
}

func TestDoctorExitCodes(t *testing.T) {
	for _, tc := range []struct {
		tx   bool
		args []string
		code int
	}{
		{true, []string{"doctor", "-f", "eth1"}, exitOK},
		{false, []string{"doctor", "-f", "eth1"}, exitFailure},
		{false, []string{"doctor", "-f", "eth1", "--for", "rx"}, exitOK},
		{false, []string{"doctor", "-f", "eth1", "--for", "tx"}, exitFailure},
		{true, []string{"doctor", "-f", "nosuch0"}, exitFailure},
	} {
		code, out, errs := doctorCLI(doctorFake{tx: tc.tx}, tc.args...)
		if code != tc.code {
			t.Errorf("tx %v %q: exit %d, want %d\n%s%s", tc.tx, tc.args, code, tc.code, out, errs)
		}
		if tc.args[2] == "nosuch0" {
			if !strings.Contains(errs, "nosuch0") || out != "" {
				t.Errorf("unknown interface: stdout %q stderr %q", out, errs)
			}
			continue
		}
		// Not ready is said by the report itself, not by an extra error line.
		if errs != "" || !strings.Contains(out, "RX: ready") {
			t.Errorf("%q: stderr %q, stdout:\n%s", tc.args, errs, out)
		}
		if !strings.Contains(out, "fix: ethtool -G eth1 tcp-data-split on") {
			t.Errorf("the header-split fix is missing:\n%s", out)
		}
	}
}

func TestDoctorJSON(t *testing.T) {
	code, out, _ := doctorCLI(doctorFake{}, "doctor", "-f", "eth1", "--json")
	if code != exitFailure {
		t.Errorf("exit %d, want 1 (no devmem TX)", code)
	}
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if rep.Ifname != "eth1" || !rep.RX.Ready || rep.TX.Ready || len(rep.Queues) != 2 || rep.Queues[1].IRQ != 31 || rep.Queues[1].CPUs != "1" {
		t.Errorf("report %+v", rep)
	}
}

// TestRootDoctorVeth runs the real binary's doctor inside a namespace: a veth is not ready, exit 1.
func TestRootDoctorVeth(t *testing.T) {
	testnet.Require(t)
	ns := testnet.Single(t)
	var code int
	var out, errs string
	if err := ns.Do(func() error {
		code, out, errs = doctorCLI(nil, "doctor", "-f", ns.Link)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if code != exitFailure || errs != "" {
		t.Fatalf("exit %d stderr %q, want 1 and the report only\n%s", code, errs, out)
	}
	for _, want := range []string{
		"RX: not ready", "TX: not ready",
		"[fail] tcp-data-split on", "[fail] ntuple rule slot", "[fail] RSS control",
		"fix: ethtool -L veth0 rx 2",
		"bind-rx on queue 0: operation not supported [attribute ifindex]",
		"lacks the queue management API devmem RX needs",
		"bind-tx: Driver does not support netmem TX",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
