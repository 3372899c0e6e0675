// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/sockcall"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/pattern"
)

// sendPattern writes n stream bytes in odd-sized chunks (so reads never line up with writes),
// flipping the byte at corrupt when corrupt >= 0, then closes for writing.
func sendPattern(c *net.TCPConn, n, corrupt int) error {
	buf := make([]byte, 7777)
	for off := 0; off < n; {
		b := buf[:min(len(buf), n-off)]
		pattern.Fill(b, uint64(off))
		if corrupt >= off && corrupt < off+len(b) {
			b[corrupt-off] ^= 0x5a
		}
		if _, err := c.Write(b); err != nil {
			return err
		}
		off += len(b)
	}
	return c.CloseWrite()
}

// receiveAll runs h to the end of the flow through the netpoller (Receive) or on a blocking
// socket (ReceiveBlocking).
func receiveAll(t testing.TB, h *Host, dst *net.TCPConn, blocking bool, st *Stats) error {
	if !blocking {
		return h.Receive(testnet.RawConn(t, dst), st)
	}
	var stop sockcall.Stop
	return h.ReceiveBlocking(testnet.BlockingFd(t, dst, sockcall.StopPoll), st, &stop)
}

func TestHostReceiveValidates(t *testing.T) {
	for _, blocking := range []bool{false, true} {
		for _, every := range []int{0, 1, 3} {
			src, dst := testnet.TCPPair(t)
			go sendPattern(src, 1<<20+13, -1)
			h, err := NewHost(0, 4096, false, every)
			if err != nil {
				t.Fatal(err)
			}
			var st Stats
			if err := receiveAll(t, h, dst, blocking, &st); err != nil {
				t.Fatalf("blocking=%v every %d: %v", blocking, every, err)
			}
			if st.Bytes.Load() != 1<<20+13 || h.Offset() != 1<<20+13 {
				t.Errorf("blocking=%v every %d: got %d bytes, offset %d", blocking, every, st.Bytes.Load(), h.Offset())
			}
		}
	}
}

func TestHostReceiveMismatch(t *testing.T) {
	for _, blocking := range []bool{false, true} {
		src, dst := testnet.TCPPair(t)
		const bad = 300_001
		go sendPattern(src, 1<<20, bad)
		h, _ := NewHost(3, 65536, false, 1)
		var st Stats
		err := receiveAll(t, h, dst, blocking, &st)
		var me *pattern.MismatchError
		if !errors.As(err, &me) {
			t.Fatalf("blocking=%v: got %v, want a *pattern.MismatchError", blocking, err)
		}
		if me.Flow != 3 || me.Offset != bad || me.Expected != pattern.At(bad) || me.Actual != pattern.At(bad)^0x5a {
			t.Errorf("blocking=%v: got %+v", blocking, me)
		}
	}
}

func TestHostReceiveTrunc(t *testing.T) {
	if _, err := NewHost(0, 4096, true, 1); err == nil {
		t.Error("MSG_TRUNC with validation accepted")
	}
	src, dst := testnet.TCPPair(t)
	go sendPattern(src, 500_000, 10)
	h, err := NewHost(0, 65536, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	if err := h.Receive(testnet.RawConn(t, dst), &st); err != nil {
		t.Fatal(err)
	}
	if st.Bytes.Load() != 500_000 {
		t.Errorf("got %d bytes", st.Bytes.Load())
	}
}

func TestHostReceiveDeadline(t *testing.T) {
	_, dst := testnet.TCPPair(t)
	dst.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	h, _ := NewHost(0, 4096, false, 1)
	var st Stats
	if err := h.Receive(testnet.RawConn(t, dst), &st); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("got %v, want a deadline error", err)
	}
}

// BenchmarkHostReceive reports allocations per read (the target is zero) and the receive rate over
// loopback with validation on and off, through the netpoller.
func BenchmarkHostReceive(b *testing.B) { benchReceive(b, false) }

// benchReceive feeds b.N reads' worth of the pattern and times the receiver through the netpoller
// or, blocking, from a locked thread.
func benchReceive(b *testing.B, blocking bool) {
	for _, tc := range []struct {
		name  string
		every int
		trunc bool
	}{{"validate", 1, false}, {"novalidate", 0, false}, {"trunc", 0, true}} {
		b.Run(tc.name, func(b *testing.B) {
			const size = 64 << 10
			src, dst := testnet.TCPPair(b)
			h, err := NewHost(0, size, tc.trunc, tc.every)
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				blk := make([]byte, size+pattern.Period)
				pattern.Fill(blk, 0)
				var off uint64
				for i := 0; i < b.N; i++ {
					ph := off % pattern.Period
					n, err := src.Write(blk[ph : ph+size])
					if err != nil {
						return
					}
					off += uint64(n)
				}
				src.CloseWrite()
			}()
			var st Stats
			rc := testnet.RawConn(b, dst)
			run := func() error { return h.Receive(rc, &st) }
			if blocking {
				fd := testnet.BlockingFd(b, dst, sockcall.StopPoll)
				var stop sockcall.Stop
				run = func() error { return h.ReceiveBlocking(fd, &st, &stop) }
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
			}
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			if err := run(); err != nil && !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
		})
	}
}
