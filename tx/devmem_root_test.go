// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package tx

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/internal/devmemsim"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
)

// TestRootDevmemSendPlainTCP sends with SCM_DEVMEM_DMABUF on a loopback socket that has no TX
// binding: the host kernel refuses it with EINVAL, the engine explains it, and the simulator
// without bind-tx answers the same errno.
func TestRootDevmemSendPlainTCP(t *testing.T) {
	testnet.Require(t)
	c, _ := testnet.Single(t).TCPPair(t, Control(nil, "lo")) // SO_BINDTODEVICE lo + SO_ZEROCOPY, for real
	h, _ := dmabuf.NewHost(1 << 20)
	e, err := NewDevmem(DevmemConfig{Buf: h, DmabufID: 1, WriteSize: 4096, Ifname: "lo"})
	if err != nil {
		t.Fatal(err)
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	var st Stats
	kerr := e.Send(testnet.RawConn(t, c), &st)
	t.Logf("kernel: %v", kerr)
	if !errors.Is(kerr, unix.EINVAL) || !strings.Contains(kerr.Error(), "not a TX binding") {
		t.Fatalf("Send on plain TCP: %v, want EINVAL with advice", kerr)
	}

	r := dmSend(t, 5*time.Second, devmemsim.Config{TXID: 7}, "lo", nil) // the engine names id 5
	if !errors.Is(r.err, unix.EINVAL) {
		t.Errorf("simulator without a matching TX binding: %v, want EINVAL like the kernel", r.err)
	}
}

// TestRootZerocopyOptionValues: SO_ZEROCOPY takes 0 or 1 and nothing else; the simulator answers
// as the host kernel does (fidelity row 12).
func TestRootZerocopyOptionValues(t *testing.T) {
	testnet.Require(t)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	sim, _ := devmemsim.New(devmemsim.Config{Size: 4096})
	defer sim.Close()
	for _, v := range []int32{0, 1, 2, -1} {
		b := []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
		kerr := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, int(v))
		_, serr := sim.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, b)
		t.Logf("kernel: SO_ZEROCOPY %d = %v (simulator %v)", v, kerr, serr)
		if !errors.Is(serr, kerr) && !(kerr == nil && serr == nil) {
			t.Errorf("SO_ZEROCOPY %d: kernel %v, simulator %v", v, kerr, serr)
		}
	}
}
