// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package devmemsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

func tokens(pairs ...uint32) []byte {
	b := make([]byte, 4*len(pairs))
	for i, v := range pairs {
		binary.NativeEndian.PutUint32(b[4*i:], v)
	}
	return b
}

// socket returns the fd of the receiving end of a loopback TCP connection whose sender writes n
// bytes and closes; ready > 0 waits until that many bytes are queued (SIOCINQ) before returning.
func socket(t *testing.T, n, ready int) int {
	t.Helper()
	c, s := testnet.TCPPair(t)
	go func() {
		c.Write(make([]byte, n))
		c.CloseWrite()
	}()
	f, err := s.File() // a blocking dup, simple to drive by hand
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if ready > 0 {
		testnet.WaitInq(t, int(f.Fd()), ready)
	}
	return int(f.Fd())
}

type rxCall struct {
	msg unix.Msghdr
	iov unix.Iovec
	p   []byte
	oob []byte
}

func newCall(iov, oob int) *rxCall {
	c := &rxCall{p: make([]byte, iov), oob: make([]byte, oob)}
	c.iov.Base = &c.p[0]
	c.iov.SetLen(iov)
	c.msg.Iov = &c.iov
	c.msg.SetIovlen(1)
	if oob > 0 {
		c.msg.Control = &c.oob[0]
	}
	c.msg.SetControllen(oob)
	return c
}

type fr struct {
	typ             int32
	off             uint64
	size, token, id uint32
}

func (c *rxCall) frags(t *testing.T) []fr {
	var out []fr
	rem := c.oob[:c.msg.Controllen]
	for len(rem) >= unix.SizeofCmsghdr {
		h, d, r, err := unix.ParseOneSocketControlMessage(rem)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fr{h.Type, binary.NativeEndian.Uint64(d), binary.NativeEndian.Uint32(d[8:]),
			binary.NativeEndian.Uint32(d[12:]), binary.NativeEndian.Uint32(d[16:])})
		rem = r
	}
	return out
}

func TestSimRecvAndDontneed(t *testing.T) {
	s, err := New(Config{Size: 16 * NiovSize, RXID: 3, RTO: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fd := socket(t, 64*NiovSize, 0)
	c := newCall(8*NiovSize, 8*cmsgSpace)
	var got []fr
	for len(got) < 16 { // fill the whole buffer without returning a token
		c.msg.SetControllen(len(c.oob))
		n, err := s.Recvmsg(fd, &c.msg, unix.MSG_SOCK_DEVMEM)
		if err != nil || n == 0 {
			t.Fatalf("recvmsg: %d, %v", n, err)
		}
		got = append(got, c.frags(t)...)
	}
	for i, f := range got {
		// Tokens start at 1 (XA_FLAGS_ALLOC1), the lowest free first.
		if f.typ != unix.SCM_DEVMEM_DMABUF || f.id != 3 || f.token != uint32(i+1) || f.off != uint64(i)*NiovSize || f.size == 0 || f.size > NiovSize {
			t.Fatalf("frag %d = %+v", i, f)
		}
	}
	// The freelist is empty and nothing is queued: the NIC drops what arrives, recvmsg has
	// nothing to give.
	c.msg.SetControllen(len(c.oob))
	if _, err := s.Recvmsg(fd, &c.msg, unix.MSG_SOCK_DEVMEM); !errors.Is(err, unix.EAGAIN) || s.Counters().Drops != 1 || s.Counters().Stalls != 1 {
		t.Fatalf("drained freelist: %v, %+v", err, s.Counters())
	}
	// DONTNEED: the kernel's length rules, unknown tokens skipped, the count of freed frags.
	for _, bad := range [][]byte{nil, make([]byte, 4), make([]byte, 7), make([]byte, 129*8)} {
		if _, err := s.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, bad); !errors.Is(err, unix.EINVAL) {
			t.Errorf("optlen %d: %v, want EINVAL", len(bad), err)
		}
	}
	if n, err := s.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, tokens(3, 3, 1000, 5, 0, 1)); n != 3 || err != nil {
		t.Errorf("free 3..5, unknown 1000..1004 and never-used 0: %d, %v; want 3", n, err)
	}
	if n, _ := s.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, tokens(3, 3)); n != 0 {
		t.Errorf("double free returned %d", n)
	}
	// Buffers are free again, but the dropped packets come back only with the retransmit: the
	// next read waits out the RTO.
	c.msg.SetControllen(len(c.oob))
	t0 := time.Now()
	if _, err := s.Recvmsg(fd, &c.msg, unix.MSG_SOCK_DEVMEM|unix.MSG_DONTWAIT); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 40*time.Millisecond {
		t.Errorf("data came back %v after the drop, before the 50 ms RTO", d)
	}
	if f := c.frags(t); len(f) != 3 || f[0].token != 3 || f[2].token != 5 {
		t.Errorf("after freeing 3..5 got %+v", f)
	}
	// One call inspects at most 1024 frags, however the ranges are split.
	if n, _ := s.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, tokens(100, 1024, 1, 16)); n != 0 {
		t.Errorf("the 1025th inspected frag was freed (%d)", n)
	}
	if n, _ := s.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, tokens(1, 16)); n != 16 {
		t.Errorf("freed %d, want 16", n)
	}
	if c := s.Counters(); c.Held != 0 || c.FreeNiovs != 16 {
		t.Errorf("counters %+v", c)
	}
}

// TestSimQueuedDataReadable: data the NIC took in before its buffers ran out stays readable; only
// new packets are dropped (fidelity row 6).
func TestSimQueuedDataReadable(t *testing.T) {
	s, _ := New(Config{Size: 8 * NiovSize, RTO: time.Hour, Window: 8 * NiovSize})
	defer s.Close()
	fd := socket(t, 64*NiovSize, 8*NiovSize) // the NIC's window is in
	one := newCall(8*NiovSize, cmsgSpace)    // room for one frag per call: the rest stays queued
	if _, err := s.Recvmsg(fd, &one.msg, unix.MSG_SOCK_DEVMEM); err != nil {
		t.Fatal(err)
	}
	if c := s.Counters(); c.FreeNiovs != 0 || c.Queued != 7*NiovSize {
		t.Fatalf("after one read: %+v; want all 8 niovs taken, 7 frags queued", c)
	}
	for i := 2; i <= 8; i++ {
		one.msg.SetControllen(len(one.oob))
		if n, err := s.Recvmsg(fd, &one.msg, unix.MSG_SOCK_DEVMEM|unix.MSG_DONTWAIT); n != NiovSize || err != nil {
			t.Fatalf("queued frag %d with an empty freelist: %d, %v", i, n, err)
		}
	}
	one.msg.SetControllen(len(one.oob))
	if _, err := s.Recvmsg(fd, &one.msg, unix.MSG_SOCK_DEVMEM|unix.MSG_DONTWAIT); !errors.Is(err, unix.EAGAIN) || s.Counters().Drops != 1 {
		t.Fatalf("queue drained, no buffers: %v, %+v; want EAGAIN and a drop", err, s.Counters())
	}
}

// TestSimUnsplitPackets: a packet the NIC did not split comes as plain bytes with no cmsg, and one
// recvmsg never mixes it with devmem frags (fidelity row 1).
func TestSimUnsplitPackets(t *testing.T) {
	s, _ := New(Config{Size: 16 * NiovSize, FragSize: 1000, UnsplitEvery: 3})
	defer s.Close()
	fd := socket(t, 6000, 6000)
	c := newCall(8*NiovSize, 8*cmsgSpace)
	var kinds []string
	total := 0
	for total < 6000 {
		c.msg.SetControllen(len(c.oob))
		n, err := s.Recvmsg(fd, &c.msg, unix.MSG_SOCK_DEVMEM)
		if err != nil || n == 0 {
			t.Fatalf("recvmsg after %d bytes: %d, %v", total, n, err)
		}
		if c.msg.Controllen == 0 {
			kinds = append(kinds, fmt.Sprintf("plain %d", n))
		} else {
			kinds = append(kinds, fmt.Sprintf("%d frags %d", len(c.frags(t)), n))
		}
		total += n
	}
	want := "2 frags 2000,plain 1000,2 frags 2000,plain 1000"
	if got := strings.Join(kinds, ","); got != want {
		t.Errorf("calls %s, want %s", got, want)
	}
}

// TestSimSharedNiovs: with frags packed into a larger niov (rx-page-size), each frag has its own
// token and the niov returns to the pool only when every frag in it is returned (fidelity rows 5, 15).
func TestSimSharedNiovs(t *testing.T) {
	s, err := New(Config{Size: 4 * 16384, Niov: 16384, FragSize: 4096, PackFrags: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fd := socket(t, 8*4096, 8*4096)
	c := newCall(64<<10, 16*cmsgSpace)
	if n, err := s.Recvmsg(fd, &c.msg, unix.MSG_SOCK_DEVMEM); n != 8*4096 || err != nil {
		t.Fatalf("recvmsg %d, %v", n, err)
	}
	f := c.frags(t)
	if len(f) != 8 || f[1].off != 4096 || f[4].off != 16384 || f[7].token != 8 {
		t.Fatalf("frags %+v", f)
	}
	if fr := s.Counters().FreeNiovs; fr != 2 {
		t.Fatalf("free niovs %d, want 2 of 4", fr)
	}
	// Three of the first niov's four frags back: the niov stays out.
	s.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, tokens(1, 3))
	if fr := s.Counters().FreeNiovs; fr != 2 {
		t.Errorf("after 3 of 4 frags: %d free niovs, want 2", fr)
	}
	s.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, tokens(4, 1))
	if fr := s.Counters().FreeNiovs; fr != 3 {
		t.Errorf("after all 4 frags: %d free niovs, want 3", fr)
	}
	if _, err := New(Config{Size: 6000 * 4, Niov: 6000}); err == nil {
		t.Error("niov 6000 accepted")
	}
}

func TestSimRecvErrors(t *testing.T) {
	s, _ := New(Config{Size: 4 * NiovSize})
	defer s.Close()
	fd := socket(t, 10, 10)
	for _, tc := range []struct {
		oob, flags int
		want       unix.Errno
	}{
		{oob: 0, flags: unix.MSG_SOCK_DEVMEM, want: uapi.ETOOSMALL},
		{oob: cmsgSpace - 1, flags: unix.MSG_SOCK_DEVMEM, want: uapi.ETOOSMALL},
		{oob: cmsgSpace, flags: 0, want: unix.EFAULT},
	} {
		c := newCall(100, tc.oob)
		if _, err := s.Recvmsg(fd, &c.msg, tc.flags); !errors.Is(err, tc.want) {
			t.Errorf("oob %d flags %#x: %v, want %v", tc.oob, tc.flags, err, tc.want)
		}
	}
	if _, err := s.Setsockopt(fd, unix.SOL_TCP, 1, nil); !errors.Is(err, unix.ENOPROTOOPT) {
		t.Errorf("unknown option: %v", err)
	}
	// No data at all: EAGAIN, not ETOOSMALL, whatever the control buffer (fidelity row 9).
	empty, _ := New(Config{Size: 4 * NiovSize})
	defer empty.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	cl, _ := net.Dial("tcp", ln.Addr().String())
	defer cl.Close()
	sv, _ := ln.Accept()
	defer sv.Close()
	f, _ := sv.(*net.TCPConn).File()
	defer f.Close()
	c := newCall(100, 0)
	if _, err := empty.Recvmsg(int(f.Fd()), &c.msg, unix.MSG_SOCK_DEVMEM|unix.MSG_DONTWAIT); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("no data, no control buffer: %v, want EAGAIN", err)
	}
}

func TestSimFaults(t *testing.T) {
	s, _ := New(Config{Size: 16 * NiovSize, LinearEvery: 2, WrongIDAt: 3, FragSize: 1000, FragOffset: 96, CorruptAt: 2})
	defer s.Close()
	fd := socket(t, 4000, 4000) // all 4000 bytes in, so one read sees them
	c := newCall(8*NiovSize, 8*cmsgSpace)
	n, err := s.Recvmsg(fd, &c.msg, unix.MSG_SOCK_DEVMEM)
	if err != nil {
		t.Fatal(err)
	}
	f := c.frags(t)
	if len(f) != (n+999)/1000 || f[1].typ != unix.SCM_DEVMEM_LINEAR || f[2].id != 2 || f[0].off != 96 || f[0].size != 1000 || f[0].token != 1 {
		t.Fatalf("n %d frags %+v", n, f)
	}
	if s.Buffer().Bytes()[96+1] != 0xff {
		t.Error("stream byte 1 not corrupted")
	}
}

// txSocket returns the fd of the sending end of a loopback TCP connection, and the receiving end.
func txSocket(t *testing.T) (int, *net.TCPConn) {
	t.Helper()
	c, peer := testnet.TCPPair(t)
	f, err := c.File() // a blocking dup, simple to drive by hand
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd()), peer
}

// txMsg is a devmem TX msghdr over iov (dma-buf offsets) with an SCM_DEVMEM_DMABUF cmsg naming
// binding id.
func txMsg(iov []rawIovec, id uint32) *unix.Msghdr {
	ctl := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
	h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_DEVMEM_DMABUF
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(ctl[unix.CmsgLen(0):], id)
	msg := &unix.Msghdr{Iov: (*unix.Iovec)(unsafe.Pointer(&iov[0])), Control: &ctl[0]}
	msg.SetIovlen(len(iov))
	msg.SetControllen(len(ctl))
	return msg
}

func TestSimSendAndCompletions(t *testing.T) {
	s, _ := New(Config{Size: 4 * NiovSize, TXID: 4, CopiedEvery: 3})
	defer s.Close()
	for i := range s.Buffer().Bytes() {
		s.Buffer().Bytes()[i] = byte(i)
	}
	fd, peer := txSocket(t)
	iov := []rawIovec{{Base: 10, Len: 20}, {Base: 100, Len: 5}}
	msg := txMsg(iov, 4)

	if _, err := s.Sendmsg(fd, msg, unix.MSG_ZEROCOPY); !errors.Is(err, unix.EINVAL) {
		t.Errorf("without SO_ZEROCOPY: %v, want EINVAL", err)
	}
	s.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, []byte{1, 0, 0, 0})
	if _, err := s.Sendmsg(fd, msg, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("without MSG_ZEROCOPY: %v, want EINVAL", err)
	}
	for i := 0; i < 4; i++ {
		if n, err := s.Sendmsg(fd, msg, unix.MSG_ZEROCOPY); n != 25 || err != nil {
			t.Fatalf("send %d: %d, %v", i, n, err)
		}
	}
	got := make([]byte, 100)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io_ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if got[i] != byte(10+i) || got[25+i] != byte(10+i) {
			t.Fatalf("payload %v", got[:25])
		}
	}
	if got[20] != 100 || got[24] != 104 {
		t.Fatalf("second iovec: %v", got[20:25])
	}
	// Completions: sends 0-1 plain, 2 copied, 3 plain. The kernel extends the last notification
	// without comparing codes, so all four merge and the COPIED flag is lost (fidelity row 3).
	var ranges [][3]uint32
	for {
		oob := make([]byte, 64)
		em := unix.Msghdr{Control: &oob[0]}
		em.SetControllen(len(oob))
		if _, err := s.Recvmsg(fd, &em, unix.MSG_ERRQUEUE); errors.Is(err, unix.EAGAIN) {
			break
		} else if err != nil || em.Flags&unix.MSG_ERRQUEUE == 0 {
			t.Fatal(err, em.Flags)
		}
		ee := (*unix.SockExtendedErr)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
		if ee.Origin != unix.SO_EE_ORIGIN_ZEROCOPY {
			t.Fatalf("origin %d", ee.Origin)
		}
		ranges = append(ranges, [3]uint32{ee.Info, ee.Data, uint32(ee.Code)})
	}
	if len(ranges) != 1 || ranges[0] != [3]uint32{0, 3, 0} {
		t.Errorf("completions %v, want one range 0..3", ranges)
	}
	if c := s.Counters(); c.Completed != 4 || c.Copied != 0 {
		t.Errorf("counted %d completed, %d copied; want 4 and 0 (the flag merged away)", c.Completed, c.Copied)
	}
	// An iovec past the end: the bytes before it go (a short count); EFAULT only with none.
	iov[1] = rawIovec{Base: 4*NiovSize - 2, Len: 5}
	if n, err := s.Sendmsg(fd, msg, unix.MSG_ZEROCOPY); n != 20 || err != nil {
		t.Errorf("second iovec past the end: %d, %v; want 20", n, err)
	}
	iov[0] = rawIovec{Base: 4 * NiovSize, Len: 1}
	if _, err := s.Sendmsg(fd, msg, unix.MSG_ZEROCOPY); !errors.Is(err, unix.EFAULT) {
		t.Errorf("first iovec past the end: %v, want EFAULT", err)
	}
	iov[0] = rawIovec{Base: 10, Len: 20}
	// SO_ZEROCOPY takes 0 or 1; an SCM_DEVMEM_DMABUF cmsg must be exactly CMSG_LEN(4) (row 12).
	if _, err := s.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, []byte{2, 0, 0, 0}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("SO_ZEROCOPY 2: %v, want EINVAL", err)
	}
	long := make([]byte, unix.CmsgSpace(8))
	lh := (*unix.Cmsghdr)(unsafe.Pointer(&long[0]))
	lh.Level, lh.Type = unix.SOL_SOCKET, unix.SCM_DEVMEM_DMABUF
	lh.SetLen(unix.CmsgLen(8))
	binary.NativeEndian.PutUint32(long[unix.CmsgLen(0):], 4)
	msg.Control = &long[0]
	msg.SetControllen(len(long))
	if _, err := s.Sendmsg(fd, msg, unix.MSG_ZEROCOPY); !errors.Is(err, unix.EINVAL) {
		t.Errorf("8-byte dma-buf id cmsg: %v, want EINVAL", err)
	}
}

// TestSimSendRouteAndErrqueue: the route's device is compared with the binding's device (not
// SO_BINDTODEVICE); AF_INET6 completions come as SOL_IPV6; a truncated error-queue read loses
// the entry, which the kernel dequeued first (rows 10, 13).
func TestSimSendRouteAndErrqueue(t *testing.T) {
	fd, _ := txSocket(t)
	iov := []rawIovec{{Base: 0, Len: 10}}
	msg := txMsg(iov, 4)

	other, _ := New(Config{Size: NiovSize, TXID: 4, RouteDev: "eth0", BindDev: "eth1"})
	defer other.Close()
	other.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, []byte{1, 0, 0, 0})
	other.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, []byte("eth1"))
	if _, err := other.Sendmsg(fd, msg, unix.MSG_ZEROCOPY); !errors.Is(err, unix.ENODEV) {
		t.Errorf("route via eth0, binding on eth1 (SO_BINDTODEVICE eth1): %v, want ENODEV", err)
	}
	same, _ := New(Config{Size: NiovSize, TXID: 4, RouteDev: "eth1", BindDev: "eth1", IPv6: true})
	defer same.Close()
	same.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, []byte{1, 0, 0, 0})
	for range 2 {
		if _, err := same.Sendmsg(fd, msg, unix.MSG_ZEROCOPY); err != nil {
			t.Fatalf("route and binding on eth1, no SO_BINDTODEVICE: %v", err)
		}
	}
	small := make([]byte, 8)
	em := unix.Msghdr{Control: &small[0]}
	em.SetControllen(len(small))
	if _, err := same.Recvmsg(fd, &em, unix.MSG_ERRQUEUE); err != nil || em.Flags&unix.MSG_CTRUNC == 0 {
		t.Fatalf("truncated errqueue read: %v, flags %#x", err, em.Flags)
	}
	oob := make([]byte, 64)
	em = unix.Msghdr{Control: &oob[0]}
	em.SetControllen(len(oob))
	if _, err := same.Recvmsg(fd, &em, unix.MSG_ERRQUEUE); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("after a truncated read: %v, want EAGAIN (the entry was dequeued)", err)
	}
	same.Sendmsg(fd, msg, unix.MSG_ZEROCOPY)
	em.SetControllen(len(oob))
	if _, err := same.Recvmsg(fd, &em, unix.MSG_ERRQUEUE); err != nil {
		t.Fatal(err)
	}
	if ch := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0])); ch.Level != unix.SOL_IPV6 || ch.Type != unix.IPV6_RECVERR {
		t.Errorf("AF_INET6 completion: level %d type %d, want SOL_IPV6/IPV6_RECVERR", ch.Level, ch.Type)
	}
}

func io_ReadFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestNewChecks(t *testing.T) {
	for _, c := range []Config{{}, {Size: 100}, {Size: NiovSize, FragSize: NiovSize, FragOffset: 1}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
