// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package stats

import (
	"io"
	"net"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
)

// loopPair returns both ends of a TCP connection on loopback, after some bytes crossed it.
func loopPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	c, s := testnet.TCPPair(t)
	out, in := make([]byte, 1<<20), make([]byte, 1<<20)
	go func() { _, _ = c.Write(out) }()
	if _, err := io.ReadFull(s, in); err != nil {
		t.Fatal(err)
	}
	return c, s
}

func TestTCPInfo(t *testing.T) {
	c, s := loopPair(t)
	ti, err := TCPInfo(testnet.RawConn(t, c))
	if err != nil {
		t.Fatal(err)
	}
	// A connection that just moved 1 MiB has a congestion window, an RTT sample and a send window.
	if ti.Cwnd == 0 || ti.RTTus == 0 || ti.SndWnd == 0 {
		t.Fatalf("TCP_INFO of a live sender looks empty: %+v", ti)
	}
	if _, err := TCPInfo(testnet.RawConn(t, s)); err != nil {
		t.Fatal(err)
	}
	// A closed socket's RawConn refuses Control: the error says what was being done.
	c.Close()
	if _, err := TCPInfo(testnet.RawConn(t, c)); err == nil {
		t.Fatal("TCPInfo on a closed socket succeeded")
	}
}

func TestIncomingCPU(t *testing.T) {
	c, s := loopPair(t)
	cpu := IncomingCPU(testnet.RawConn(t, s))
	if cpu < -1 {
		t.Fatalf("IncomingCPU = %d", cpu)
	}
	// The receiver has had packets processed by some CPU of this machine.
	if cpu == -1 {
		t.Fatal("IncomingCPU of a socket that received 1 MiB is unknown")
	}
	ct, err := ReadCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if cpu >= len(ct) {
		t.Fatalf("IncomingCPU = %d, but /proc/stat lists %d CPUs", cpu, len(ct))
	}
	c.Close()
	s.Close()
	if got := IncomingCPU(testnet.RawConn(t, s)); got != -1 {
		t.Fatalf("IncomingCPU on a closed socket = %d, want -1", got)
	}
}
