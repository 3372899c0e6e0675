package devmemsim

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

func tokens(pairs ...uint32) []byte {
	b := make([]byte, 4*len(pairs))
	for i, v := range pairs {
		binary.NativeEndian.PutUint32(b[4*i:], v)
	}
	return b
}

// socket returns the fd of the receiving end of a loopback TCP connection whose sender has
// written n bytes and closed.
func socket(t *testing.T, n int) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	go func() {
		c.Write(make([]byte, n))
		c.(*net.TCPConn).CloseWrite()
	}()
	f, err := s.(*net.TCPConn).File() // a blocking dup, simple to drive by hand
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
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
	s, err := New(Config{Size: 16 * NiovSize, RXID: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fd := socket(t, 64*NiovSize)
	c := newCall(8*NiovSize, 8*cmsgSpace)
	var got []fr
	for len(got) < 16 { // fill the whole buffer without returning a token
		n, err := s.Recvmsg(fd, &c.msg, uapi.MSG_SOCK_DEVMEM)
		if err != nil || n == 0 {
			t.Fatalf("recvmsg: %d, %v", n, err)
		}
		c.msg.SetControllen(len(c.oob))
		got = append(got, c.frags(t)...)
	}
	for i, f := range got {
		if f.typ != uapi.SCM_DEVMEM_DMABUF || f.id != 3 || f.token != uint32(i) || f.off != uint64(i)*NiovSize || f.size == 0 || f.size > NiovSize {
			t.Fatalf("frag %d = %+v", i, f)
		}
	}
	// The freelist is empty: the NIC has nowhere to put data.
	if _, err := s.Recvmsg(fd, &c.msg, uapi.MSG_SOCK_DEVMEM); !errors.Is(err, unix.EAGAIN) || s.Counters().Stalls != 1 {
		t.Fatalf("drained freelist: %v, stalls %d", err, s.Counters().Stalls)
	}
	// DONTNEED: the kernel's length rules, unknown tokens skipped, the count of freed frags.
	for _, bad := range [][]byte{make([]byte, 7), make([]byte, 129*8)} {
		if _, err := s.Setsockopt(fd, uapi.SOL_SOCKET, uapi.SO_DEVMEM_DONTNEED, bad); !errors.Is(err, unix.EINVAL) {
			t.Errorf("optlen %d: %v, want EINVAL", len(bad), err)
		}
	}
	if n, err := s.Setsockopt(fd, uapi.SOL_SOCKET, uapi.SO_DEVMEM_DONTNEED, tokens(2, 3, 1000, 5)); n != 3 || err != nil {
		t.Errorf("free 2..4 and unknown 1000..1004: %d, %v; want 3", n, err)
	}
	if n, _ := s.Setsockopt(fd, uapi.SOL_SOCKET, uapi.SO_DEVMEM_DONTNEED, tokens(2, 3)); n != 0 {
		t.Errorf("double free returned %d", n)
	}
	// The lowest free token is handed out first, as the kernel's xarray does.
	c.msg.SetControllen(len(c.oob))
	if _, err := s.Recvmsg(fd, &c.msg, uapi.MSG_SOCK_DEVMEM); err != nil {
		t.Fatal(err)
	}
	if f := c.frags(t); len(f) != 3 || f[0].token != 2 || f[2].token != 4 {
		t.Errorf("after freeing 2..4 got %+v", f)
	}
	// One call inspects at most 1024 frags, however the ranges are split.
	if n, _ := s.Setsockopt(fd, uapi.SOL_SOCKET, uapi.SO_DEVMEM_DONTNEED, tokens(100, 1024, 0, 16)); n != 0 {
		t.Errorf("the 1025th inspected frag was freed (%d)", n)
	}
	if n, _ := s.Setsockopt(fd, uapi.SOL_SOCKET, uapi.SO_DEVMEM_DONTNEED, tokens(0, 16)); n != 16 {
		t.Errorf("freed %d, want 16", n)
	}
	if c := s.Counters(); c.Held != 0 || c.FreeNiovs != 16 {
		t.Errorf("counters %+v", c)
	}
}

func TestSimRecvErrors(t *testing.T) {
	s, _ := New(Config{Size: 4 * NiovSize})
	defer s.Close()
	fd := socket(t, 10)
	for _, tc := range []struct {
		oob, flags int
		want       unix.Errno
	}{
		{oob: 0, flags: uapi.MSG_SOCK_DEVMEM, want: uapi.ETOOSMALL},
		{oob: cmsgSpace - 1, flags: uapi.MSG_SOCK_DEVMEM, want: uapi.ETOOSMALL},
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
}

func TestSimFaults(t *testing.T) {
	s, _ := New(Config{Size: 16 * NiovSize, LinearEvery: 2, WrongIDAt: 3, FragSize: 1000, FragOffset: 96, CorruptAt: 2})
	defer s.Close()
	fd := socket(t, 4000)
	time.Sleep(100 * time.Millisecond) // let all 4000 bytes arrive, so one read sees them
	c := newCall(8*NiovSize, 8*cmsgSpace)
	n, err := s.Recvmsg(fd, &c.msg, uapi.MSG_SOCK_DEVMEM)
	if err != nil {
		t.Fatal(err)
	}
	f := c.frags(t)
	if len(f) != (n+999)/1000 || f[1].typ != uapi.SCM_DEVMEM_LINEAR || f[2].id != 2 || f[0].off != 96 || f[0].size != 1000 {
		t.Fatalf("n %d frags %+v", n, f)
	}
	if s.Buffer().Bytes()[96+1] != 0xff {
		t.Error("stream byte 1 not corrupted")
	}
}

func TestSimSendAndCompletions(t *testing.T) {
	s, _ := New(Config{Size: 4 * NiovSize, TXID: 4, CopiedEvery: 3})
	defer s.Close()
	for i := range s.Buffer().Bytes() {
		s.Buffer().Bytes()[i] = byte(i)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	conn, _ := net.Dial("tcp", ln.Addr().String())
	defer conn.Close()
	peer, _ := ln.Accept()
	defer peer.Close()
	f, _ := conn.(*net.TCPConn).File()
	defer f.Close()
	fd := int(f.Fd())

	ctl := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
	h.Level, h.Type = uapi.SOL_SOCKET, uapi.SCM_DEVMEM_DMABUF
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(ctl[unix.CmsgLen(0):], 4)
	iov := []rawIovec{{Base: 10, Len: 20}, {Base: 100, Len: 5}}
	var msg unix.Msghdr
	msg.Iov = (*unix.Iovec)(unsafe.Pointer(&iov[0]))
	msg.SetIovlen(2)
	msg.Control = &ctl[0]
	msg.SetControllen(len(ctl))

	if _, err := s.Sendmsg(fd, &msg, uapi.MSG_ZEROCOPY); !errors.Is(err, unix.EINVAL) {
		t.Errorf("without SO_ZEROCOPY: %v, want EINVAL", err)
	}
	s.Setsockopt(fd, uapi.SOL_SOCKET, uapi.SO_ZEROCOPY, []byte{1, 0, 0, 0})
	if _, err := s.Sendmsg(fd, &msg, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("without MSG_ZEROCOPY: %v, want EINVAL", err)
	}
	for i := 0; i < 4; i++ {
		if n, err := s.Sendmsg(fd, &msg, uapi.MSG_ZEROCOPY); n != 25 || err != nil {
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
	// Completions: sends 0-1 plain, 2 copied, 3 plain, merged where they agree.
	var ranges [][3]uint32
	for {
		oob := make([]byte, 64)
		em := unix.Msghdr{Control: &oob[0]}
		em.SetControllen(len(oob))
		if _, err := s.Recvmsg(fd, &em, uapi.MSG_ERRQUEUE); errors.Is(err, unix.EAGAIN) {
			break
		} else if err != nil || em.Flags&uapi.MSG_ERRQUEUE == 0 {
			t.Fatal(err, em.Flags)
		}
		ee := (*uapi.SockExtendedErr)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
		if ee.Origin != uapi.SO_EE_ORIGIN_ZEROCOPY {
			t.Fatalf("origin %d", ee.Origin)
		}
		ranges = append(ranges, [3]uint32{ee.Info, ee.Data, uint32(ee.Code)})
	}
	if len(ranges) != 3 || ranges[0] != [3]uint32{0, 1, 0} || ranges[1] != [3]uint32{2, 2, 1} || ranges[2] != [3]uint32{3, 3, 0} {
		t.Errorf("completions %v", ranges)
	}
	iov[1] = rawIovec{Base: 4*NiovSize - 2, Len: 5}
	if _, err := s.Sendmsg(fd, &msg, uapi.MSG_ZEROCOPY); !errors.Is(err, unix.EFAULT) {
		t.Errorf("past the end: %v, want EFAULT", err)
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
