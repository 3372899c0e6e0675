package rx

import (
	"net"
	"syscall"
	"testing"

	"github.com/devmemtcp/ncdevmem/pattern"
)

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
