// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package devmemsim

import (
	"sync"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
)

// StreamConn is a loopback TCP connection whose sender writes until Quiet: the Conn the
// conformance cases need, for the simulator backend.
func streamConn(t *testing.T, sys Sys, id uint32) *Conn {
	t.Helper()
	c, s := testnet.TCPPair(t)
	rc, err := s.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	rc.Control(func(f uintptr) { fd = int(f) })
	crc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 16<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			c.Write(buf)
		}
	}()
	var once sync.Once
	quiet := func() error {
		once.Do(func() { close(stop); wg.Wait() })
		// Every byte the peer sent has reached the socket once none is in flight.
		return crc.Control(func(fd uintptr) { testnet.WaitDelivered(t, int(fd)) })
	}
	t.Cleanup(func() { quiet() })
	return &Conn{Sys: sys, Fd: fd, DmabufID: id, Quiet: quiet}
}

// TestConformance runs the conformance table on the simulator; the guest tier runs the same table
// against a real devmem socket on softnic (guesttest TestGuestSoftnicConformance).
func TestConformance(t *testing.T) {
	sim, err := New(Config{Size: 64 * NiovSize, RXID: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	c := streamConn(t, sim, 9)
	var st State
	for _, tc := range Cases {
		if err := tc.Run(c, &st); err != nil {
			t.Errorf("%s (row %d): %v", tc.Name, tc.Row, err)
		}
	}
}
