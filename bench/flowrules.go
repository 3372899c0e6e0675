// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"

	"github.com/devmemtcp/ncdevmem/nic"
	"golang.org/x/sys/unix"
)

// One ntuple rule per flow. The devmem target writes its steering rules while it is prepared,
// before any data connection exists, so it chooses each flow's source port itself: the ports go
// to the client in the target's ready message, the client passes them to the source in its
// prepare, and the source binds each data socket to its port before connecting. Each flow then
// has its own rule (src-port, dst-ip, dst-port), spread over the devmem queues or pointing at
// the RSS context. The source's address is left out of the rule: the target cannot know which
// of the source's addresses its route picks, and the port with the target's data address and
// port already names one flow. A NIC that refuses rules on the source falls back to the
// 3-tuple (nic.Prepare), which the flows then share.

// The source ports are chosen above Linux's default ephemeral range (32768-60999), so that the
// source's own outgoing connections seldom hold them.
const (
	srcPortLo = 61000
	srcPortHi = 65535
)

// sourcePorter is implemented by target Flows that chose the source port of each flow.
type sourcePorter interface {
	SourcePorts() []uint16
}

// sourcePorts returns the source ports f chose (nil: any port will do).
func sourcePorts(f Flows) []uint16 {
	if sp, ok := f.(sourcePorter); ok {
		return sp.SourcePorts()
	}
	return nil
}

// pickSourcePorts returns n consecutive source ports from a random base in [srcPortLo,
// srcPortHi]; a fresh base per test keeps a run clear of the previous run's TIME_WAIT sockets.
func pickSourcePorts(n int) []uint16 {
	if n < 1 || n > srcPortHi-srcPortLo+1 {
		return nil
	}
	base := srcPortLo + rand.IntN(srcPortHi-srcPortLo+2-n)
	out := make([]uint16, n)
	for i := range out {
		out[i] = uint16(base + i)
	}
	return out
}

// flowsFor returns the flows to steer to the target's data address local: one per source port,
// or one 3-tuple flow when no ports were chosen.
func flowsFor(local netip.AddrPort, ports []uint16) []nic.Flow {
	if len(ports) == 0 {
		return []nic.Flow{{Dst: local}}
	}
	out := make([]nic.Flow, len(ports))
	for i, p := range ports {
		out[i] = nic.Flow{Dst: local, Src: netip.AddrPortFrom(netip.Addr{}, p)}
	}
	return out
}

// checkSourcePorts checks the ports a source was told to bind: none, or one non-zero port per
// flow, all different.
func checkSourcePorts(ports []uint16, flows int) error {
	if len(ports) == 0 {
		return nil
	}
	if len(ports) != flows {
		return fmt.Errorf("the target chose %d source ports for %d flows", len(ports), flows)
	}
	seen := map[uint16]bool{}
	for _, p := range ports {
		if p == 0 || seen[p] {
			return fmt.Errorf("the target's source ports %v: each must be non-zero and different", ports)
		}
		seen[p] = true
	}
	return nil
}

// sourceDialer returns d for flow i: unchanged without ports; else bound, before connecting, to
// the flow's source port (any local address) with SO_REUSEADDR, so that a TIME_WAIT left on the
// port by an earlier connection elsewhere does not refuse the bind.
func sourceDialer(d net.Dialer, ports []uint16, i int) *net.Dialer {
	if i >= len(ports) {
		return &d
	}
	d.LocalAddr = &net.TCPAddr{Port: int(ports[i])}
	ctl := d.Control
	d.Control = func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("SO_REUSEADDR: %w", serr)
		}
		if ctl != nil {
			return ctl(network, address, c)
		}
		return nil
	}
	return &d
}

// sourcePortAdvice explains a connect that failed because the chosen source port was taken.
func sourcePortAdvice(err error, ports []uint16, i int) error {
	if i < len(ports) && errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w (the target chose source port %d for this flow so that its ntuple rule could be written first; another socket on the source holds it: run again for other ports)", err, ports[i])
	}
	return err
}
