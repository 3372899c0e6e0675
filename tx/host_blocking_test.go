// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package tx

import (
	"errors"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/sockcall"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"golang.org/x/sys/unix"
)

// sendBlocking runs SendBlocking on a locked thread until it has sent at least goal bytes, then
// stops it and closes for writing.
func sendBlocking(t *testing.T, h *Host, src *net.TCPConn, goal uint64) *Stats {
	t.Helper()
	var st Stats
	var stop sockcall.Stop
	fd := testnet.BlockingFd(t, src, sockcall.StopPoll)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- h.SendBlocking(fd, &st, &stop)
	}()
	for deadline := time.Now().Add(30 * time.Second); st.Bytes.Load() < goal; {
		select {
		case err := <-done:
			t.Fatalf("SendBlocking = %v after %d bytes, before stop", err, st.Bytes.Load())
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes sent in 30 s, want %d", st.Bytes.Load(), goal)
		}
	}
	stop.Set()
	if err := <-done; !errors.Is(err, sockcall.ErrStopped) {
		t.Fatalf("SendBlocking = %v, want sockcall.ErrStopped", err)
	}
	src.CloseWrite()
	return &st
}

func TestHostSendBlocking(t *testing.T) {
	for _, zc := range []bool{false, true} {
		r := sendFlow(t, zc, true, 777_777)
		if r.bad != 777_777 || r.total != r.st.Bytes.Load() || r.total < 1_000_000 {
			t.Errorf("zerocopy %v: first bad byte %d (want 777777), received %d, sent %d", zc, r.bad, r.total, r.st.Bytes.Load())
		}
		if zc && r.st.ZCSends.Load() == 0 {
			t.Errorf("zerocopy: no MSG_ZEROCOPY sends counted")
		}
	}
}

// A peer that never reads: the socket buffer fills, write(2) sleeps, and only SO_SNDTIMEO brings
// the engine back to see stop.
func TestHostSendBlockingStop(t *testing.T) {
	src, _ := testnet.TCPPair(t)
	h, _ := NewHost(0, 64<<10, false)
	var st Stats
	var stop sockcall.Stop
	fd := testnet.BlockingFd(t, src, 50*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- h.SendBlocking(fd, &st, &stop)
	}()
	// Wait until the buffers are full: the socket no longer polls writable, so write(2) sleeps.
	for deadline := time.Now().Add(10 * time.Second); ; {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if n, err := unix.Poll(pfd, 0); err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still writable after 10 s (%d bytes sent)", st.Bytes.Load())
		}
		time.Sleep(time.Millisecond)
	}
	t0 := time.Now()
	stop.Set()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("got %v, want sockcall.ErrStopped", err)
		}
		t.Logf("stopped %v after Set, %d bytes in the buffers", time.Since(t0), st.Bytes.Load())
	case <-time.After(time.Second):
		t.Fatal("still writing 1 s after stop (SO_SNDTIMEO not in effect?)")
	}
}

// TestHostSendAllocs: one write, on a blocking socket (SendBlocking's step) or through the
// netpoller (Send's sendOne), plain and with MSG_ZEROCOPY (whose completions are reaped every
// reapEvery writes), allocates nothing.
func TestHostSendAllocs(t *testing.T) {
	for _, zc := range []bool{false, true} {
		for _, blocking := range []bool{true, false} {
			const size = 16 << 10
			src, dst := testnet.TCPPair(t)
			rc := testnet.RawConn(t, src)
			if zc {
				if err := EnableZerocopy(rc); err != nil {
					t.Fatal(err)
				}
			}
			h, _ := NewHost(0, size, zc)
			var st Stats
			var stop sockcall.Stop
			one := func() error { return h.sendOne(rc, &st) }
			if blocking {
				sfd := testnet.BlockingFd(t, src, sockcall.StopPoll)
				one = func() error { return h.step(sfd, &st, &stop) }
			}
			rfd := testnet.BlockingFd(t, dst, sockcall.StopPoll)
			sink := make([]byte, 1<<20)
			var got uint64
			allocs := testing.AllocsPerRun(200, func() {
				if err := one(); err != nil {
					panic(err)
				}
				for got < h.Offset() {
					n, err := unix.Read(rfd, sink)
					if err != nil || n == 0 {
						panic("drain failed")
					}
					got += uint64(n)
				}
			})
			if allocs != 0 {
				t.Errorf("zerocopy %v blocking=%v: %v allocations per write, want 0", zc, blocking, allocs)
			}
			if zc && st.ZCCompleted.Load() == 0 {
				t.Errorf("zerocopy blocking=%v: no completion reaped in 201 writes", blocking)
			}
		}
	}
}

// BenchmarkHostSendBlocking is BenchmarkHostSend on a blocking socket from a locked thread.
func BenchmarkHostSendBlocking(b *testing.B) { benchSend(b, true) }
