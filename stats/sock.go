// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package stats

import (
	"fmt"
	"syscall"

	"github.com/devmemtcp/ncdevmem/report"
	"golang.org/x/sys/unix"
)

// TCPInfo reads TCP_INFO from the socket behind rc and returns the fields the report shows.
func TCPInfo(rc syscall.RawConn) (*report.TCP, error) {
	var (
		info *unix.TCPInfo
		serr error
	)
	if err := rc.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return nil, fmt.Errorf("read TCP_INFO: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("read TCP_INFO: %w", serr)
	}
	return TCPFromInfo(info), nil
}

// TCPFromInfo picks the report's fields out of a TCP_INFO.
func TCPFromInfo(info *unix.TCPInfo) *report.TCP {
	return &report.TCP{
		Retrans:       info.Total_retrans,
		Reord:         info.Reordering,
		RTTus:         info.Rtt,
		RTTVarUs:      info.Rttvar,
		DeliveredCE:   info.Delivered_ce,
		SndWnd:        info.Snd_wnd,
		Cwnd:          info.Snd_cwnd,
		DeliveryRateB: info.Delivery_rate,
	}
}

// IncomingCPU returns the socket's SO_INCOMING_CPU (the CPU whose softirq last processed its
// packets), or -1 when the kernel does not know yet or the call failed.
func IncomingCPU(rc syscall.RawConn) int {
	cpu, serr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) {
		cpu, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_INCOMING_CPU)
	}); err != nil || serr != nil || cpu < 0 {
		return -1
	}
	return cpu
}
