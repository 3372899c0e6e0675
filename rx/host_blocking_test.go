// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/sockcall"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/pattern"
	"golang.org/x/sys/unix"
)

// A silent peer: the read sleeps in the kernel, and only SO_RCVTIMEO brings it back to see stop.
func TestHostReceiveBlockingStop(t *testing.T) {
	_, dst := testnet.TCPPair(t)
	h, _ := NewHost(0, 4096, false, 1)
	var st Stats
	var stop sockcall.Stop
	fd := testnet.BlockingFd(t, dst, 50*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- h.ReceiveBlocking(fd, &st, &stop)
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("returned before stop: %v", err)
	default:
	}
	t0 := time.Now()
	stop.Set()
	select {
	case err := <-done:
		if !errors.Is(err, sockcall.ErrStopped) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("got %v, want sockcall.ErrStopped", err)
		}
		t.Logf("stopped %v after Set", time.Since(t0))
	case <-time.After(time.Second):
		t.Fatal("still reading 1 s after stop (SO_RCVTIMEO not in effect?)")
	}
}

// TestHostReceiveAllocs: one read, from a blocking socket (ReceiveBlocking's step) or through the
// netpoller (Receive's receiveOne), with and without validation and with MSG_TRUNC, allocates
// nothing.
func TestHostReceiveAllocs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		every int
		trunc bool
	}{{"validate", 1, false}, {"novalidate", 0, false}, {"trunc", 0, true}} {
		for _, blocking := range []bool{true, false} {
			const size = 16 << 10
			src, dst := testnet.TCPPair(t)
			h, err := NewHost(0, size, tc.trunc, tc.every)
			if err != nil {
				t.Fatal(err)
			}
			var st Stats
			var stop sockcall.Stop
			rc := testnet.RawConn(t, dst)
			one := func() (bool, error) { return h.receiveOne(rc, &st) }
			if blocking {
				rfd := testnet.BlockingFd(t, dst, sockcall.StopPoll)
				one = func() (bool, error) { return h.step(rfd, &st, &stop) }
			}
			sfd := testnet.BlockingFd(t, src, sockcall.StopPoll)
			blk := make([]byte, size+pattern.Period)
			pattern.Fill(blk, 0)
			var off uint64
			allocs := testing.AllocsPerRun(200, func() {
				// Exactly one read's worth in the socket (a synchronous write on loopback), then
				// the reads that take it.
				ph := off % pattern.Period
				n, err := unix.Write(sfd, blk[ph:ph+size])
				if err != nil || n != size {
					panic("short write")
				}
				off += uint64(n)
				for h.Offset() < off {
					if end, err := one(); end {
						panic(err)
					}
				}
			})
			if allocs != 0 {
				t.Errorf("%s blocking=%v: %v allocations per read, want 0", tc.name, blocking, allocs)
			}
		}
	}
}

// BenchmarkHostReceiveBlocking is BenchmarkHostReceive on a blocking socket from a locked thread.
func BenchmarkHostReceiveBlocking(b *testing.B) { benchReceive(b, true) }
