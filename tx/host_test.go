// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package tx

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/sockcall"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/devmemtcp/ncdevmem/pattern"
)

// checkStream reads r to EOF and returns the stream offset of the first byte that breaks the
// pattern (-1 for none) and the bytes read.
func checkStream(r io.Reader) (bad int64, total uint64) {
	buf := make([]byte, 10007)
	bad = -1
	for {
		n, err := r.Read(buf)
		if i := pattern.Verify(buf[:n], total); i >= 0 && bad < 0 {
			bad = int64(total) + int64(i)
		}
		total += uint64(n)
		if err != nil {
			return bad, total
		}
	}
}

func runSender(t *testing.T, h *Host, src *net.TCPConn, d time.Duration) *Stats {
	t.Helper()
	var st Stats
	src.SetWriteDeadline(time.Now().Add(d))
	if err := h.Send(testnet.RawConn(t, src), &st); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send = %v, want a deadline error", err)
	}
	src.CloseWrite()
	return &st
}

// sent is what sendFlow saw: the sender and its counters, and what the receiving end read.
type sent struct {
	h     *Host
	src   *net.TCPConn
	st    *Stats
	bad   int64 // stream offset of the first byte off the pattern, -1 for none
	total uint64
}

// sendFlow sends one flow of 10000-byte writes over loopback, with MSG_ZEROCOPY or not, through
// the netpoller for 200 ms (Send) or on a blocking socket until 1.1 MB are out (SendBlocking),
// flipping the byte at corrupt when corrupt >= 0; the receiving end checks the pattern.
func sendFlow(t *testing.T, zc, blocking bool, corrupt int64) sent {
	t.Helper()
	src, dst := testnet.TCPPair(t)
	done := make(chan sent, 1)
	go func() { b, n := checkStream(dst); done <- sent{bad: b, total: n} }()
	if zc {
		if err := EnableZerocopy(testnet.RawConn(t, src)); err != nil {
			t.Fatal(err)
		}
	}
	h, err := NewHost(0, 10000, zc)
	if err != nil {
		t.Fatal(err)
	}
	if corrupt >= 0 {
		h.CorruptAt(uint64(corrupt))
	}
	var st *Stats
	if blocking {
		st = sendBlocking(t, h, src, 1_100_000)
	} else {
		st = runSender(t, h, src, 200*time.Millisecond)
	}
	r := <-done
	r.h, r.src, r.st = h, src, st
	return r
}

func TestHostSend(t *testing.T) {
	for _, zc := range []bool{false, true} {
		r := sendFlow(t, zc, false, -1)
		h, st := r.h, r.st
		if r.bad >= 0 || r.total != st.Bytes.Load() || r.total == 0 {
			t.Errorf("zerocopy %v: first bad byte %d, received %d, sent %d", zc, r.bad, r.total, st.Bytes.Load())
		}
		if !zc {
			continue
		}
		// Completions trail the sends: wait for the error queue to hold some (POLLERR), then reap.
		rc := testnet.RawConn(t, r.src)
		for deadline := time.Now().Add(5 * time.Second); h.Pending() > 0 && time.Now().Before(deadline); {
			rc.Control(func(fd uintptr) {
				unix.Poll([]unix.PollFd{{Fd: int32(fd)}}, 100) // POLLERR is always reported
			})
			if err := h.Reap(rc, st); err != nil {
				t.Fatal(err)
			}
		}
		if st.ZCSends.Load() == 0 || st.ZCCompleted.Load() != st.ZCSends.Load() {
			t.Errorf("zerocopy: %d sends, %d completed", st.ZCSends.Load(), st.ZCCompleted.Load())
		}
		// Loopback cannot send from user pages, so the kernel copies and says so.
		if st.ZCCopied.Load() != st.ZCCompleted.Load() {
			t.Errorf("zerocopy over loopback: %d completed, %d flagged copied", st.ZCCompleted.Load(), st.ZCCopied.Load())
		}
	}
}

func TestHostSendCorruptHook(t *testing.T) {
	src, dst := testnet.TCPPair(t)
	done := make(chan int64, 1)
	go func() { b, _ := checkStream(dst); done <- b }()
	h, _ := NewHost(0, 4096, false)
	h.CorruptAt(123_457)
	runSender(t, h, src, 100*time.Millisecond)
	if bad := <-done; bad != 123_457 {
		t.Errorf("first bad byte at %d, want 123457", bad)
	}
}

func TestParseZCCompletions(t *testing.T) {
	cm := func(level, typ int32, errno uint32, origin, code uint8, lo, hi uint32) []byte {
		b := make([]byte, unix.CmsgSpace(uapi.SizeofSockExtendedErr))
		binary.NativeEndian.PutUint64(b[0:], uint64(unix.CmsgLen(uapi.SizeofSockExtendedErr)))
		binary.NativeEndian.PutUint32(b[8:], uint32(level))
		binary.NativeEndian.PutUint32(b[12:], uint32(typ))
		d := b[unix.CmsgLen(0):]
		binary.NativeEndian.PutUint32(d[0:], errno)
		d[4], d[6] = origin, code
		binary.NativeEndian.PutUint32(d[8:], lo)
		binary.NativeEndian.PutUint32(d[12:], hi)
		return b
	}
	oob := append(cm(unix.SOL_IP, unix.IP_RECVERR, 0, unix.SO_EE_ORIGIN_ZEROCOPY, 0, 0, 9),
		cm(unix.SOL_IPV6, unix.IPV6_RECVERR, 0, unix.SO_EE_ORIGIN_ZEROCOPY, unix.SO_EE_CODE_ZEROCOPY_COPIED, 0xffffffff, 1)...)
	n, copied, err := parseZCCompletions(oob)
	if err != nil || n != 13 || copied != 3 {
		t.Errorf("got %d completed, %d copied, %v; want 13, 3 (the second range wraps)", n, copied, err)
	}
	_, _, err = parseZCCompletions(cm(unix.SOL_IP, unix.IP_RECVERR, uint32(unix.EHOSTUNREACH), unix.SO_EE_ORIGIN_ICMP, 0, 0, 0))
	if !errors.Is(err, errNotZerocopy) || !errors.Is(err, unix.EHOSTUNREACH) {
		t.Errorf("ICMP error: %v", err)
	}
	if _, _, err := parseZCCompletions(oob[:20]); err == nil {
		t.Error("truncated cmsg parsed")
	}
}

func FuzzParseZCCompletions(f *testing.F) {
	f.Add([]byte{})
	b := make([]byte, unix.CmsgSpace(uapi.SizeofSockExtendedErr))
	binary.NativeEndian.PutUint64(b, uint64(unix.CmsgLen(uapi.SizeofSockExtendedErr)))
	binary.NativeEndian.PutUint32(b[12:], unix.IP_RECVERR)
	b[unix.CmsgLen(0)+4] = unix.SO_EE_ORIGIN_ZEROCOPY
	f.Add(b)
	f.Fuzz(func(t *testing.T, oob []byte) {
		n, copied, _ := parseZCCompletions(oob)
		if copied > n {
			t.Fatalf("%d copied of %d completed", copied, n)
		}
	})
}

// BenchmarkHostSend reports allocations per write (the target is zero) and the send rate over
// loopback, with and without MSG_ZEROCOPY, through the netpoller.
func BenchmarkHostSend(b *testing.B) { benchSend(b, false) }

// benchSend times b.N writes through the netpoller or, blocking, from a locked thread.
func benchSend(b *testing.B, blocking bool) {
	for _, zc := range []bool{false, true} {
		name := "write"
		if zc {
			name = "msg_zerocopy"
		}
		b.Run(name, func(b *testing.B) {
			const size = 64 << 10
			src, dst := testnet.TCPPair(b)
			go io.Copy(io.Discard, dst)
			rc := testnet.RawConn(b, src)
			if zc {
				if err := EnableZerocopy(rc); err != nil {
					b.Fatal(err)
				}
			}
			h, err := NewHost(0, size, zc)
			if err != nil {
				b.Fatal(err)
			}
			var st Stats
			// The netpoller sender stops at its deadline; limitConn makes it run b.N writes.
			run := func() { h.Send(&limitConn{RawConn: rc, n: b.N}, &st) }
			if blocking {
				fd := testnet.BlockingFd(b, src, sockcall.StopPoll)
				var stop sockcall.Stop
				run = func() {
					for i := 0; i < b.N; i++ {
						if err := h.step(fd, &st, &stop); err != nil {
							b.Fatal(err)
						}
					}
				}
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
			}
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			run()
			b.StopTimer()
		})
	}
}

// limitConn fails the n+1-th Write, so a benchmark can run exactly n sends.
type limitConn struct {
	syscall.RawConn
	n int
}

var errEnough = errors.New("enough")

func (l *limitConn) Write(f func(uintptr) bool) error {
	if l.n == 0 {
		return errEnough
	}
	l.n--
	return l.RawConn.Write(f)
}
