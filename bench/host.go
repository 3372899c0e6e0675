// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"syscall"

	"github.com/devmemtcp/ncdevmem/report"
	"github.com/devmemtcp/ncdevmem/rx"
	"github.com/devmemtcp/ncdevmem/tx"
)

// hostDatapath is plain process memory: rx.Host and tx.Host. It changes nothing on the host.
type hostDatapath struct{}

func (hostDatapath) Name() string { return "host" }

func (hostDatapath) Handles(spec *TestSpec, role Role) bool {
	if role == RoleTarget {
		return !spec.DevmemRX
	}
	return !spec.DevmemTX
}

func (hostDatapath) Setup(_ context.Context, s Setup) (Flows, error) {
	return &hostFlows{spec: s.Spec}, nil
}

type hostFlows struct {
	spec *TestSpec
}

func (*hostFlows) Control(string, string, syscall.RawConn) error { return nil }

func (f *hostFlows) Receiver(id int, _ syscall.RawConn) (rx.Engine, error) {
	return rx.NewHost(id, f.spec.ReadSize, f.spec.MsgTrunc, f.spec.Validate.Every)
}

func (f *hostFlows) Sender(id int, rc syscall.RawConn) (tx.Engine, error) {
	if f.spec.MsgZerocopy {
		if err := tx.EnableZerocopy(rc); err != nil {
			return nil, err
		}
	}
	h, err := tx.NewHost(id, f.spec.WriteSize, f.spec.MsgZerocopy)
	if err != nil {
		return nil, err
	}
	return h, nil
}

func (*hostFlows) WindowStart() error     { return nil }
func (*hostFlows) WindowEnd() error       { return nil }
func (*hostFlows) Report() *report.Devmem { return nil }
func (*hostFlows) Close() error           { return nil }
