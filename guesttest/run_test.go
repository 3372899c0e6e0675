// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/report"
)

// nsimPair moves the two ports of a fresh netdevsim device into two new network namespaces, links
// them, and gives them 198.18.0.1/24 and 198.18.0.2/24. Everything is removed when t ends.
func nsimPair(t *testing.T, id int) (a, b *testnet.NS) {
	t.Helper()
	nsim := NewNetdevsim(t, id, 2, 2)
	var nss [2]*testnet.NS
	for i, port := range nsim.Ports {
		name := fmt.Sprintf("nsim%d-%d", id, i)
		run(t, "/usr/sbin/ip", "netns", "add", name)
		t.Cleanup(func() {
			if out, err := exec.Command("/usr/sbin/ip", "netns", "del", name).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v %s", name, err, out)
			}
		})
		addr := netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)})
		run(t, "/usr/sbin/ip", "link", "set", port, "netns", name)
		run(t, "/usr/sbin/ip", "-n", name, "addr", "add", addr.String()+"/24", "dev", port)
		run(t, "/usr/sbin/ip", "-n", name, "link", "set", port, "up")
		run(t, "/usr/sbin/ip", "-n", name, "link", "set", "lo", "up")
		nss[i] = &testnet.NS{Name: name, Link: port, Addr: addr}
	}
	a, b = nss[0], nss[1]
	if err := LinkNetdevsim(a.Name, a.Ifindex(t, a.Link), b.Name, b.Ifindex(t, b.Link)); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// startServer runs `ncdevmem server` in ns, kills it by PID when t ends, and waits until it listens.
func startServer(t *testing.T, bin string, ns *testnet.NS, key string) string {
	t.Helper()
	addr := net.JoinHostPort(ns.Addr.String(), "18400")
	cmd := ns.Command(bin, "server", "--listen", addr, "--key-file", key)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		// SIGTERM first: a server that is still restoring the NIC after the last run finishes
		// that and removes its journal (a SIGKILL there left a journal that refused the next
		// test's run, seen on 6.12). SIGKILL only if it does not stop.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("server %s log:\n%s", addr, logs.String())
		}
	})
	if err := listening(ns, addr, 30*time.Second); err != nil {
		t.Fatalf("server not listening on %s after 30 s: %v\n%s", addr, err, logs.String())
	}
	return addr
}

// TestGuestRunOverNetdevsim runs real `ncdevmem server`s in two namespaces joined by a netdevsim link
// (7.x) and a host-memory `ncdevmem run` between them with validation on, and checks the JSON.
// Throughput under software emulation means nothing, so only bytes are checked.
func TestGuestRunOverNetdevsim(t *testing.T) {
	Require(t)
	bin := ncdevmemBin(t)
	a, b := nsimPair(t, 31)
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("guest-test-key-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := startServer(t, bin, a, key)
	dst := startServer(t, bin, b, key)
	out := filepath.Join(t.TempDir(), "r.json")
	cmd := a.Command(bin, "run", "--src", src, "--dst", dst, "-n", "2", "--time", "2s", "--validate", "on",
		"--key-file", key, "--json", out)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ncdevmem run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("ncdevmem run over netdevsim:\n%s", stdout.String())
	if !strings.Contains(stdout.String(), "== Target") {
		t.Errorf("no target section in the report")
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := report.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.Config.Validate != "on" || len(r.Runs) != 1 {
		t.Fatalf("config %+v, %d runs", r.Config, len(r.Runs))
	}
	run := r.Runs[0]
	if len(run.Source.Flows) != 2 || len(run.Target.Flows) != 2 {
		t.Fatalf("%d source and %d target flows, want 2", len(run.Source.Flows), len(run.Target.Flows))
	}
	var tx, rx uint64
	for i := range run.Target.Flows {
		tx += run.Source.Flows[i].Bytes
		rx += run.Target.Flows[i].Bytes
	}
	t.Logf("sent %d bytes, received and validated %d", tx, rx)
	if rx == 0 || rx > tx {
		t.Errorf("sent %d, received %d", tx, rx)
	}
	// The payload crossed the netdevsim link, not some other path.
	out2, err := b.Command("cat", "/sys/class/net/"+b.Link+"/statistics/rx_bytes").Output()
	if err != nil {
		t.Fatal(err)
	}
	var linkRX uint64
	fmt.Sscan(string(out2), &linkRX)
	if linkRX < rx {
		t.Errorf("%s in %s received %d bytes, fewer than the %d the target validated", b.Link, b.Name, linkRX, rx)
	}
}
