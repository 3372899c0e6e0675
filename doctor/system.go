// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package doctor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/gpu"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/nic/ethtool"
	"golang.org/x/sys/unix"
)

// Live returns the System of this machine, seen from the calling thread's network namespace. It
// opens one netdev netlink socket lazily; Close releases it.
func Live() *LiveSystem { return &LiveSystem{cuda: sync.OnceValue(gpu.Available)} }

// LiveSystem reads the machine: netdev generic netlink (package bind), ethtool (package nic),
// rtnetlink (package nic/ethtool), /proc, /sys, /dev and capget. Reading needs no privilege; the bind probes need CAP_NET_ADMIN.
type LiveSystem struct {
	c    *bind.Client
	cerr error
	cuda func() error // gpu.Available, once: loading libcuda is slow
}

var _ System = (*LiveSystem)(nil)

// Close closes the netdev socket, if one was opened.
func (l *LiveSystem) Close() error {
	if l.c != nil {
		return l.c.Close()
	}
	return nil
}

func (l *LiveSystem) client() (*bind.Client, error) {
	if l.c == nil && l.cerr == nil {
		l.c, l.cerr = bind.Dial()
	}
	return l.c, l.cerr
}

// KernelRelease is uname -r.
func (l *LiveSystem) KernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// Ifindex looks ifname up in this network namespace.
func (l *LiveSystem) Ifindex(ifname string) (int, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return 0, fmt.Errorf("no interface %s in this network namespace", ifname)
	}
	return ifi.Index, nil
}

// NetdevOps is the netdev family's op list.
func (l *LiveSystem) NetdevOps() ([]bind.Op, error) {
	c, err := l.client()
	if err != nil {
		return nil, err
	}
	return c.Family().Ops, nil
}

// Queues dumps the device's queues.
func (l *LiveSystem) Queues(ifindex int) ([]bind.Queue, error) {
	c, err := l.client()
	if err != nil {
		return nil, err
	}
	return c.Queues(ifindex)
}

// Napis dumps the device's NAPI instances.
func (l *LiveSystem) Napis(ifindex int) ([]bind.Napi, error) {
	c, err := l.client()
	if err != nil {
		return nil, err
	}
	return c.Napis(ifindex)
}

// probeFD is a file the kernel can never take as a dma-buf, so a probe cannot bind anything.
func probeFD() (int, error) {
	fd, err := unix.MemfdCreate("ncdevmem-doctor-probe", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("memfd for the bind probe: %w", err)
	}
	return fd, nil
}

// ProbeBindRX sends bind-rx for one queue with a memfd.
func (l *LiveSystem) ProbeBindRX(ifindex int, queue uint32) error {
	fd, err := probeFD()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	b, err := bind.BindRX(ifindex, []uint32{queue}, fd)
	if err == nil {
		b.Close() // impossible with a memfd; unbind at once all the same
	}
	return err
}

// ProbeBindTX sends bind-tx with a memfd.
func (l *LiveSystem) ProbeBindTX(ifindex int) error {
	fd, err := probeFD()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	b, err := bind.BindTX(ifindex, fd)
	if err == nil {
		b.Close()
	}
	return err
}

// Driver is ETHTOOL_GDRVINFO.
func (l *LiveSystem) Driver(ifname string) (*nic.Driver, error) { return nic.DriverInfo(ifname) }

// Channels is ethtool -l.
func (l *LiveSystem) Channels(ifname string) (*nic.Channels, error) { return nic.GetChannels(ifname) }

// Rings is ethtool -g.
func (l *LiveSystem) Rings(ifname string) (*nic.Rings, error) { return nic.GetRings(ifname) }

// Ntuple is ethtool -n.
func (l *LiveSystem) Ntuple(ifname string) (*nic.Ntuple, error) { return nic.NtupleInfo(ifname) }

// RSS is ethtool -x.
func (l *LiveSystem) RSS(ifname string) (*nic.RSS, error) { return nic.RSSInfo(ifname) }

// Link is what rtnetlink says about a device that matters for devmem: up, and any XDP program.
type Link = ethtool.Link

// Link asks rtnetlink for the device's flags and IFLA_XDP.
func (l *LiveSystem) Link(ifindex int) (Link, error) {
	c, err := ethtool.DialLink()
	if err != nil {
		return Link{}, err
	}
	defer c.Close()
	return c.Link(ifindex)
}

// IRQAffinity reads /proc/irq/N/smp_affinity_list.
func (l *LiveSystem) IRQAffinity(irq uint32) (string, error) {
	b, err := os.ReadFile("/proc/irq/" + strconv.FormatUint(uint64(irq), 10) + "/smp_affinity_list")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

const (
	udmabufDev   = "/dev/udmabuf"
	udmabufLimit = "/sys/module/udmabuf/parameters/size_limit_mb"
)

// Udmabuf checks /dev/udmabuf and its size limit.
func (l *LiveSystem) Udmabuf() (bool, int, error) { return udmabufState(udmabufDev, udmabufLimit) }

func udmabufState(dev, limitFile string) (bool, int, error) {
	st, err := os.Stat(dev)
	if errors.Is(err, os.ErrNotExist) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	if st.Mode()&os.ModeCharDevice == 0 {
		return false, 0, fmt.Errorf("%s is not a character device", dev)
	}
	b, err := os.ReadFile(limitFile)
	if err != nil {
		return true, 0, nil // the limit is informative; the device is what matters
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return true, 0, fmt.Errorf("%s: %q is not a number", limitFile, strings.TrimSpace(string(b)))
	}
	return true, n, nil
}

// CapNetAdmin reports whether CAP_NET_ADMIN is in this thread's effective set.
func (l *LiveSystem) CapNetAdmin() (bool, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false, fmt.Errorf("capget: %w", err)
	}
	return data[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) != 0, nil
}

// CUDA is gpu.Available.
func (l *LiveSystem) CUDA() error { return l.cuda() }

// CUDABuilt reports whether this binary was built with the cuda tag.
func (l *LiveSystem) CUDABuilt() bool { return !errors.Is(l.cuda(), gpu.ErrNoCUDA) }
