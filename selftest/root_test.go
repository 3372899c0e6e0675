// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package selftest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/bench"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/proto"
)

func TestRootSelftestOnVeth(t *testing.T) {
	testnet.Require(t)
	bin := testnet.Binary(t)
	peer, dut := testnet.Pair(t)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("selftest-root-test-key-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := proto.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := peer.StartServer(t, bin, proto.DefaultPort, nil, "--key-file", keyFile).Addr

	// The peer role of the real server works across the veth: what check_tx would see.
	err = dut.Do(func() error {
		p, err := bench.DialPeer(context.Background(), addr, key, "test")
		if err != nil {
			return err
		}
		defer p.Close()
		if p.LocalAddr() != dut.Addr || p.RemoteAddr() != peer.Addr {
			return fmt.Errorf("control connection %s -> %s, want %s -> %s", p.LocalAddr(), p.RemoteAddr(), dut.Addr, peer.Addr)
		}
		l, err := p.Listen(context.Background(), bench.PeerRequest{Port: 5201})
		if err != nil {
			return err
		}
		c, err := net.Dial("tcp", net.JoinHostPort(peer.Addr.String(), "5201"))
		if err != nil {
			return err
		}
		c.Write([]byte(txInput))
		c.Close()
		res, err := l.Wait()
		if err != nil {
			return err
		}
		if string(res.Data) != txInput {
			return fmt.Errorf("peer received %q", res.Data)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("peer role across the veth: %v", err)
	}

	before := dut.LinkState(t, "veth0")
	var stdout, stderr bytes.Buffer
	cmd := dut.Command(bin, "selftest", "-f", "veth0", "--peer", peer.Addr.String(), "--key-file", keyFile)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitSkip {
		t.Fatalf("selftest: %v (want exit %d)\nstdout:\n%s\nstderr:\n%s", err, ExitSkip, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if !strings.HasPrefix(out, "TAP version 13\n1..6\n") || stderr.Len() != 0 ||
		!strings.HasSuffix(out, "# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:6 error:0\n") {
		t.Errorf("KTAP:\n%s\nstderr:\n%s", out, stderr.String())
	}
	for i, name := range []string{"require_devmem", "check_rx", "check_tx", "check_tx_chunks", "check_rx_hds", "check_rx_large_niov"} {
		line := fmt.Sprintf("ok %d devmem.%s # SKIP Test requires devmem support\n", i+1, name)
		if !strings.Contains(out, line) {
			t.Errorf("KTAP lacks %q:\n%s", line, out)
		}
	}
	// The probe's reason: veth has one RX queue.
	if !strings.Contains(out, "# ncdevmem -f veth0: exit 1\n") || !strings.Contains(out, "number of device queues is too low") {
		t.Errorf("KTAP lacks the probe's diagnosis:\n%s", out)
	}
	if after := dut.LinkState(t, "veth0"); after != before {
		t.Errorf("veth changed by the selftest:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
