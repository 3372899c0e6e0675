// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/rx"
	"github.com/devmemtcp/ncdevmem/tx"
)

// The seam: the kernel reaches the datapaths through one config struct, devmemKernel, which a
// Server hands each Setup (Server.sys, Setup.sys). Nil means the running kernel. Tests give a
// Server another one to run whole devmem tests on the simulator (internal/devmemsim) and a
// modelled NIC (nic/nictest), or to reach the NIC steps without /dev/udmabuf. There are no
// package-level hook variables.

// netdevClient is what the devmem datapath asks the netdev family (a *bind.Client).
type netdevClient interface {
	Queues(ifindex int) ([]bind.Queue, error)
	QstatsQueues(ifindex int) ([]bind.Qstats, error)
	PagePools(ifindex int) ([]bind.PagePool, error)
	PagePoolStats(ifindex int) ([]bind.PagePoolStats, error)
	Close() error
}

// binding is a dma-buf binding (a *bind.Binding): alive until Close.
type binding interface {
	ID() uint32
	Close() error
}

// devmemKernel is the devmem and zcrx datapaths' ways into the kernel.
type devmemKernel struct {
	validate func(kind string, size int64) error
	open     func(kind string, size int64) (dmabuf.Buffer, error)
	dial     func() (netdevClient, error)
	bindRX   func(ifindex int, queues []uint32, fd int) (binding, error)
	bindTX   func(ifindex, fd int) (binding, error)
	rxSys    rx.DevmemSys // nil: the running kernel
	txSys    tx.DevmemSys
	nic      nic.Kernel // nil: the running kernel
}

// runningKernel is the kernel this process runs on.
func runningKernel() *devmemKernel {
	return &devmemKernel{
		validate: func(kind string, size int64) error { return dmabuf.Validate(kind, size, dmabuf.OpenOptions{}) },
		open: func(kind string, size int64) (dmabuf.Buffer, error) {
			return dmabuf.Open(kind, size, dmabuf.OpenOptions{})
		},
		dial: func() (netdevClient, error) {
			c, err := bind.Dial()
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		bindRX: func(ifindex int, queues []uint32, fd int) (binding, error) {
			b, err := bind.BindRX(ifindex, queues, fd)
			if err != nil {
				return nil, err
			}
			return b, nil
		},
		bindTX: func(ifindex, fd int) (binding, error) {
			b, err := bind.BindTX(ifindex, fd)
			if err != nil {
				return nil, err
			}
			return b, nil
		},
	}
}
