package rx

import (
	"net"
	"syscall"
	"testing"

	"github.com/devmemtcp/ncdevmem/pattern"
)

// dmTCPPair returns both ends of a loopback TCP connection, closed when the test ends.
func dmTCPPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
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
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func dmRawConn(t testing.TB, c syscall.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// dmSendPattern writes n stream bytes in odd-sized chunks (so reads never line up with writes),
// flipping the byte at corrupt when corrupt >= 0, then closes for writing.
func dmSendPattern(c *net.TCPConn, n, corrupt int) error {
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
