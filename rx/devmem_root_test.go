// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/devmemsim"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/devmemtcp/ncdevmem/pattern"
)

func control(t *testing.T, c syscall.Conn, f func(fd int)) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Control(func(fd uintptr) { f(int(fd)) }); err != nil {
		t.Fatal(err)
	}
}

// TestRootDevmemPlainTCP records what the host kernel answers to devmem RX calls on a TCP socket
// whose data sits in ordinary memory, and checks that the simulator (in Plain mode, or with
// unknown tokens) answers the same.
func TestRootDevmemPlainTCP(t *testing.T) {
	testnet.Require(t)
	c, s := testnet.Single(t).TCPPair(t, nil)
	b := make([]byte, 5000)
	pattern.Fill(b, 0)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	control(t, s, func(fd int) { testnet.WaitInq(t, fd, len(b)) })
	sim, err := devmemsim.New(devmemsim.Config{Size: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	control(t, s, func(fd int) {
		// recvmsg(MSG_SOCK_DEVMEM) on readable data: the bytes, in the iov, with no cmsg.
		p, oob := make([]byte, 8192), make([]byte, 4*cmsgSpace)
		var msg unix.Msghdr
		var iov unix.Iovec
		setIov(&msg, &iov, p, oob)
		n, err := Kernel{}.Recvmsg(fd, &msg, unix.MSG_SOCK_DEVMEM)
		t.Logf("kernel: recvmsg(MSG_SOCK_DEVMEM) on plain TCP = %d, %v, controllen %d, flags %#x", n, err, msg.Controllen, msg.Flags)
		if err != nil || n != len(b) || msg.Controllen != 0 {
			t.Errorf("kernel recvmsg(MSG_SOCK_DEVMEM) = %d, %v, controllen %d; want %d bytes and no cmsg", n, err, msg.Controllen, len(b))
		}

		// The simulator in Plain mode (a flow on an unbound queue) answers the same way.
		if _, err := c.Write(b); err != nil {
			t.Error(err)
		}
		testnet.WaitInq(t, fd, len(b))
		plain, _ := devmemsim.New(devmemsim.Config{Size: 64 << 10, Plain: true})
		defer plain.Close()
		setIov(&msg, &iov, p, oob)
		sn, serr := plain.Recvmsg(fd, &msg, unix.MSG_SOCK_DEVMEM)
		if serr != nil || sn != n || msg.Controllen != 0 || msg.Flags != 0 {
			t.Errorf("simulator (Plain) recvmsg = %d, %v, controllen %d, flags %#x; the kernel gave %d bytes, no cmsg", sn, serr, msg.Controllen, msg.Flags, n)
		}

		// SO_DEVMEM_DONTNEED: unknown tokens free nothing; a bad length or too many ranges is EINVAL.
		for _, tc := range []struct {
			name string
			val  []byte
		}{
			{"one unknown token", tokenBytes([]uapi.DmabufToken{{TokenStart: 1, TokenCount: 1}})},
			{"optlen 7", make([]byte, 7)},
			{"optlen 0", []byte{}},
			{"optlen 4", make([]byte, 4)},
			{"129 ranges", make([]byte, 129*uapi.SizeofDmabufToken)},
			{"128 ranges of 1024", tokenBytes(func() []uapi.DmabufToken {
				r := make([]uapi.DmabufToken, 128)
				for i := range r {
					r[i] = uapi.DmabufToken{TokenStart: uint32(i) * 1024, TokenCount: 1024}
				}
				return r
			}())},
		} {
			kn, kerr := Kernel{}.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, tc.val)
			sn, serr := sim.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, tc.val)
			t.Logf("kernel: SO_DEVMEM_DONTNEED %s = %d, %v (simulator: %d, %v)", tc.name, kn, kerr, sn, serr)
			if kn != sn || !errors.Is(serr, kerr) && !(kerr == nil && serr == nil) {
				t.Errorf("SO_DEVMEM_DONTNEED %s: kernel %d, %v; simulator %d, %v", tc.name, kn, kerr, sn, serr)
			}
		}
	})

	// A UDP socket: DONTNEED is TCP-only.
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	control(t, u.(*net.UDPConn), func(fd int) {
		_, err := Kernel{}.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, make([]byte, 8))
		t.Logf("kernel: SO_DEVMEM_DONTNEED on UDP = %v", err)
		if !errors.Is(err, unix.EBADF) {
			t.Errorf("DONTNEED on UDP: %v, want EBADF", err)
		}
	})
}

// TestRootDevmemEnginePlainTCP runs the devmem engine on the real kernel over plain TCP: the data
// has no devmem cmsg, which the engine must diagnose as a steering error, exactly as it does on
// the simulator in Plain mode.
func TestRootDevmemEnginePlainTCP(t *testing.T) {
	testnet.Require(t)
	c, s := testnet.Single(t).TCPPair(t, nil)
	go sendPattern(c, 1<<20, -1)
	h, _ := devmemsim.New(devmemsim.Config{Size: 64 << 10})
	defer h.Close()
	e, err := NewDevmem(DevmemConfig{Buf: h.Buffer(), DmabufID: 1, ReadSize: 64 << 10, Verify: dmVerify, Ifname: "lo", Queues: []uint32{0}})
	if err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	var st Stats
	err = e.Receive(testnet.RawConn(t, s), &st)
	var se *SteeringError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "without a devmem cmsg") {
		t.Fatalf("Receive on plain TCP: %v, want a steering error", err)
	}
	t.Logf("engine on plain TCP: %v", err)
}

// TestRootDevmemSimOverVeth streams for several seconds between two namespaces over veth, with the
// simulator in the RX path presenting the real bytes as devmem frags and validation on.
func TestRootDevmemSimOverVeth(t *testing.T) {
	testnet.Require(t)
	a, b := testnet.Pair(t)
	c, s := testnet.Connect(t, a, b)

	stop := make(chan struct{})
	sent := make(chan uint64, 1)
	go func() {
		buf := make([]byte, 128<<10)
		var off uint64
		defer func() { sent <- off }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			pattern.Fill(buf, off)
			c.SetWriteDeadline(time.Now().Add(time.Second))
			n, err := c.Write(buf)
			off += uint64(n)
			if err != nil {
				return
			}
		}
	}()
	sim, err := devmemsim.New(devmemsim.Config{Size: 2 << 20, LinearEvery: 1000, NapiID: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	e, err := NewDevmem(DevmemConfig{Buf: sim.Buffer(), DmabufID: 1, ReadSize: 256 << 10, Verify: dmVerify, Sys: sim})
	if err != nil {
		t.Fatal(err)
	}
	const d = 3 * time.Second
	s.SetReadDeadline(time.Now().Add(d))
	var st Stats
	err = e.Receive(testnet.RawConn(t, s), &st)
	close(stop)
	<-sent
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Receive: %v, want the deadline after %v", err, d)
	}
	ds := &e.Stats
	gbps := float64(st.Bytes.Load()) * 8 / d.Seconds() / 1e9
	t.Logf("%.2f Gbit/s through the simulator, %d frags (%d validated), %d linear, %d DONTNEED calls, %d stalls",
		gbps, ds.Frags.Load(), ds.Validated.Load(), ds.LinearFrags.Load(), ds.DontneedCalls.Load(), sim.Counters().Stalls)
	if st.Bytes.Load() < 1<<20 || ds.Validated.Load() != ds.Frags.Load()+ds.LinearFrags.Load() || ds.LinearFrags.Load() == 0 {
		t.Errorf("bytes %d, validated %d of %d frags", st.Bytes.Load(), ds.Validated.Load(), ds.Frags.Load()+ds.LinearFrags.Load())
	}
	if c := sim.Counters(); c.Held != 0 {
		t.Errorf("%d tokens still held", c.Held)
	}
}
