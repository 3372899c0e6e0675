// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package tx

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/devmemsim"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
)

func TestChunkSender(t *testing.T) {
	sim, err := devmemsim.New(devmemsim.Config{Size: 1 << 20, TXID: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	a, b := testnet.TCPPair(t)
	f, err := a.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	if _, err := sim.Setsockopt(fd, 1, 60, []byte{1, 0, 0, 0}); err != nil { // SO_ZEROCOPY
		t.Fatal(err)
	}
	buf := sim.Buffer()
	line := "hello, devmem world\n"
	if _, err := buf.WriteAt([]byte(line), 0); err != nil {
		t.Fatal(err)
	}
	s := NewChunkSender(sim, fd, 3)
	for i, chunk := range []int{0, 3, 1} {
		n, err := s.Send(0, len(line), chunk)
		if err != nil || n != len(line) {
			t.Fatalf("chunk %d: Send = %d, %v", chunk, n, err)
		}
		lo, hi, err := s.WaitCompletion(time.Second)
		if err != nil || lo != uint32(i) || hi != uint32(i) {
			t.Fatalf("chunk %d: completion [%d,%d], %v; want [%d,%d]", chunk, lo, hi, err, i, i)
		}
	}
	f.Close()
	a.Close()
	got, err := io.ReadAll(b)
	if err != nil || string(got) != strings.Repeat(line, 3) {
		t.Fatalf("peer read %q, %v", got, err)
	}
	if s.Sends != 3 || s.Completions != 3 {
		t.Errorf("counted %d sends, %d completions", s.Sends, s.Completions)
	}
	if _, err := s.Send(0, MaxChunks+1, 1); err == nil || !strings.Contains(err.Error(), "maximum of 1024 chunks") {
		t.Errorf("over-long split: %v", err)
	}
}

func TestChunkSenderErrors(t *testing.T) {
	sim, err := devmemsim.New(devmemsim.Config{Size: 1 << 20, TXID: 3, HoldCompletions: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	a, _ := testnet.TCPPair(t)
	f, err := a.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	// Without SO_ZEROCOPY the kernel (and the simulator) refuse the dma-buf cmsg with EINVAL.
	s := NewChunkSender(sim, fd, 3)
	if _, err := s.Send(0, 10, 0); err == nil || !strings.Contains(err.Error(), "SO_ZEROCOPY is off") {
		t.Errorf("send without SO_ZEROCOPY: %v", err)
	}
	sim.Setsockopt(fd, 1, 60, []byte{1, 0, 0, 0})
	if _, err := s.Send(0, 10, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.WaitCompletion(20 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not receive tx completion") {
		t.Errorf("held completion: %v", err)
	}
}
