// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
)

// The C-compatible command line over softnic: RX with -l -f -s -p -c -v 7 against a sender, TX
// with -z from stdin, probe mode, and `ncdevmem selftest` with all six checks.

// yes7 is what devmem.py's check_rx sends: `yes $(echo -e \x01\x02\x03\x04\x05\x06) | head -c N`.
func yes7(n int) []byte {
	line := []byte{1, 2, 3, 4, 5, 6, '\n'}
	out := make([]byte, 0, n+len(line))
	for len(out) < n {
		out = append(out, line...)
	}
	return out[:n]
}

// legacyProc is one running `ncdevmem` (C-compatible mode) in a namespace.
type legacyProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan error
}

func startLegacy(t *testing.T, ns *testnet.NS, stdin []byte, args ...string) *legacyProc {
	t.Helper()
	p := &legacyProc{done: make(chan error, 1)}
	p.cmd = ns.Command(ncdevmemBin(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if stdin != nil {
		p.cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.cmd.Process.Kill() })
	return p
}

// wait returns the exit code, failing t after limit.
func (p *legacyProc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case err := <-p.done:
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatalf("ncdevmem %v: %v", p.cmd.Args[1:], err)
	case <-time.After(limit):
		p.cmd.Process.Kill()
		t.Fatalf("ncdevmem %v still running after %v; stderr:\n%s", p.cmd.Args[1:], limit, tailLines(p.stderr.String(), 30))
	}
	return -1
}

// waitListening waits for the RX side's "Waiting or connection" line (the C tool's spelling).
func (p *legacyProc) waitListening(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.stderr.String(), "Waiting or connection") {
		select {
		case err := <-p.done:
			t.Fatalf("ncdevmem RX exited before listening (%v):\n%s", err, tailLines(p.stderr.String(), 30))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ncdevmem RX not listening after 60 s:\n%s", tailLines(p.stderr.String(), 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// sendFrom connects from src:port (the C tool's client binds its source port to -p, and the RX
// side's 5-tuple rule names it) to dst:port and writes p.
func sendFrom(t *testing.T, ns *testnet.NS, src, dst string, port int, p []byte) {
	t.Helper()
	err := ns.Do(func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src), Port: port}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", net.JoinHostPort(dst, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetWriteDeadline(time.Now().Add(60 * time.Second))
		_, err = c.Write(p)
		return err
	})
	if err != nil {
		t.Fatalf("sending %d bytes to %s:%d: %v", len(p), dst, port, err)
	}
}

// TestGuestSoftnicLegacyRX: `ncdevmem -l -f snic1 -s B -p P -c A -v 7` receives devmem.py's
// pattern from a sender bound to A:P, validates it and restores the NIC. With softnic refusing
// 5-tuple rules it falls back to the 3-tuple, as the C tool does, and says so (fidelity row 2).
func TestGuestSoftnicLegacyRX(t *testing.T) {
	CheckKernelLog(t)
	lab := SoftnicLab(t, false)
	for i, refuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("refuse_5tuple=%v", refuse), func(t *testing.T) {
			if refuse {
				SoftnicParam(t, "refuse_5tuple", "1")
			}
			before := snicState(t, lab.B, lab.B.Link)
			port := 5401 + i
			rxp := startLegacy(t, lab.B, nil, "-l", "-f", lab.B.Link, "-s", lab.B.Addr.String(), "-p", strconv.Itoa(port),
				"-c", lab.A.Addr.String(), "-v", "7")
			rxp.waitListening(t)
			q0 := queueRX(t, lab.B, lab.B.Link)
			sendFrom(t, lab.A, lab.A.Addr.String(), lab.B.Addr.String(), port, yes7(1<<20))
			code := rxp.wait(t, 2*time.Minute)
			q1 := queueRX(t, lab.B, lab.B.Link)
			errOut := rxp.stderr.String()
			if code != 0 || !strings.Contains(rxp.stdout.String(), "Validated buffer") || strings.Contains(errOut, "Failed validation") {
				t.Fatalf("ncdevmem RX: exit %d\nstderr:\n%s", code, tailLines(errOut, 40))
			}
			if !strings.Contains(errOut, "ncdevmem: ok") || !strings.Contains(errOut, "page_aligned_frags=") {
				t.Errorf("no C-tool summary lines:\n%s", tailLines(errOut, 10))
			}
			if refuse {
				for _, w := range []string{"retrying as the 3-tuple", "rule (3-tuple fallback)"} {
					if !strings.Contains(errOut, w) {
						t.Errorf("a refused 5-tuple rule: stderr lacks %q:\n%s", w, tailLines(errOut, 40))
					}
				}
			} else if strings.Contains(errOut, "3-tuple") {
				t.Errorf("a 3-tuple fallback although softnic takes 5-tuple rules:\n%s", tailLines(errOut, 40))
			}
			checkQueues(t, q0, q1, lastQueues(t, lab.B, lab.B.Link, 1))
			checkSame(t, "after ncdevmem RX", before, snicState(t, lab.B, lab.B.Link))
		})
	}
}

// TestGuestSoftnicLegacyTX: `ncdevmem -f snic0 -s B -p P -c A -z 4096` sends its stdin from a
// dma-buf (bind-tx, 7.x) to the C-compatible RX on the other end, which validates it.
func TestGuestSoftnicLegacyTX(t *testing.T) {
	if !KernelRelease(t).AtLeast(6, 15) {
		t.Skipf("kernel %s has no bind-tx (6.15+): devmem TX cannot run here", KernelRelease(t))
	}
	CheckKernelLog(t)
	lab := SoftnicLab(t, false)
	beforeA, beforeB := snicState(t, lab.A, lab.A.Link), snicState(t, lab.B, lab.B.Link)
	const port = 5411
	rxp := startLegacy(t, lab.B, nil, "-l", "-f", lab.B.Link, "-s", lab.B.Addr.String(), "-p", strconv.Itoa(port),
		"-c", lab.A.Addr.String(), "-v", "7")
	rxp.waitListening(t)
	// The C tool sends stdin line by line, one sendmsg and completion per 7-byte line: keep it
	// short under TCG: 8 KiB, two -z 4096 chunks.
	txp := startLegacy(t, lab.A, yes7(8<<10), "-f", lab.A.Link, "-s", lab.B.Addr.String(), "-p", strconv.Itoa(port),
		"-c", lab.A.Addr.String(), "-z", "4096")
	if code := txp.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("ncdevmem TX: exit %d\nstderr:\n%s", code, tailLines(txp.stderr.String(), 40))
	}
	if code := rxp.wait(t, 2*time.Minute); code != 0 || strings.Contains(rxp.stderr.String(), "Failed validation") {
		t.Fatalf("ncdevmem RX of the TX side: exit %d\nstderr:\n%s", code, tailLines(rxp.stderr.String(), 40))
	}
	checkSame(t, "sender after TX", beforeA, snicState(t, lab.A, lab.A.Link))
	checkSame(t, "receiver after RX", beforeB, snicState(t, lab.B, lab.B.Link))
}

// TestGuestSoftnicLegacyProbe: probe mode `ncdevmem -f snic1` passes on softnic (exit 0) and puts
// the NIC back.
func TestGuestSoftnicLegacyProbe(t *testing.T) {
	RequireSoftnic(t)
	CheckKernelLog(t)
	before := snicState(t, nil, "snic1")
	out, err := exec.Command(ncdevmemBin(t), "-f", "snic1").CombinedOutput()
	if err != nil {
		t.Fatalf("ncdevmem -f snic1: %v\n%s", err, out)
	}
	checkSame(t, "after the probe", before, snicState(t, nil, "snic1"))
}

// TestGuestSoftnicSelftest: `ncdevmem selftest -f snic1 --peer A` runs devmem.py's six checks over
// the lab, and every one passes (none skipped).
func TestGuestSoftnicSelftest(t *testing.T) {
	if !KernelRelease(t).AtLeast(6, 15) {
		t.Skipf("kernel %s has no bind-tx: the tx checks of the selftest need 6.15+", KernelRelease(t))
	}
	CheckKernelLog(t)
	lab := SoftnicLab(t, false)
	bin := ncdevmemBin(t)
	key := writeKey(t)
	peer := startServer(t, bin, lab.A, key)
	before := snicState(t, lab.B, lab.B.Link)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", lab.B.Name, bin, "selftest", "-f", lab.B.Link,
		"--peer", peer, "--key-file", key, "--peer-addr", lab.A.Addr.String(), "--addr", lab.B.Addr.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("selftest KTAP:\n%s", stdout.String())
	if err != nil {
		t.Errorf("ncdevmem selftest: %v\nstderr:\n%s", err, tailLines(stderr.String(), 40))
	}
	var ok int
	for _, l := range strings.Split(stdout.String(), "\n") {
		if strings.HasPrefix(l, "ok ") && !strings.Contains(l, "# SKIP") {
			ok++
		}
		if strings.Contains(l, "SKIP") || strings.HasPrefix(l, "not ok") {
			t.Errorf("selftest line %q: want every check to pass", l)
		}
	}
	if ok != 6 {
		t.Errorf("%d checks passed, want 6", ok)
	}
	checkSame(t, "after the selftest", before, snicState(t, lab.B, lab.B.Link))
}

// TestGuestSoftnicUnsplitOnBoundQueue (fidelity row 1): small segments reach the bound queue as
// plain bytes with no devmem cmsg, and the C-compatible RX validates them as linear payload and
// finishes (before the fix it called them a steering error). On 6.12, where bind-rx does not
// require hds-thresh 0, softnic keeps payloads up to its threshold (256 bytes) linear; on 7.x,
// where it does, softnic's unsplit_every switch delivers every 3rd segment whole, as a NIC does
// with a packet it cannot parse.
func TestGuestSoftnicUnsplitOnBoundQueue(t *testing.T) {
	CheckKernelLog(t)
	lab := SoftnicLab(t, false)
	if KernelRelease(t).AtLeast(6, 14) {
		SoftnicParam(t, "unsplit_every", "3")
	}
	before := snicState(t, lab.B, lab.B.Link)
	const port = 5421
	rxp := startLegacy(t, lab.B, nil, "-l", "-f", lab.B.Link, "-s", lab.B.Addr.String(), "-p", strconv.Itoa(port),
		"-c", lab.A.Addr.String(), "-v", "7")
	rxp.waitListening(t)
	data := yes7(64 << 10)
	err := lab.A.Do(func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(lab.A.Addr.String()), Port: port}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", net.JoinHostPort(lab.B.Addr.String(), strconv.Itoa(port)))
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetWriteDeadline(time.Now().Add(60 * time.Second))
		// 100-byte segments, one at a time (TCP_NODELAY is Go's default), then the rest in bulk.
		for off := 0; off < 20000; off += 100 {
			if _, err := c.Write(data[off : off+100]); err != nil {
				return err
			}
			time.Sleep(2 * time.Millisecond)
		}
		_, err = c.Write(data[20000:])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	code := rxp.wait(t, 2*time.Minute)
	errOut := rxp.stderr.String()
	if code != 0 || strings.Contains(errOut, "Failed validation") || !strings.Contains(errOut, "ncdevmem: ok") {
		t.Fatalf("ncdevmem RX with small segments: exit %d\nstderr:\n%s", code, tailLines(errOut, 40))
	}
	if !strings.Contains(errOut, "unsplit packet: ") {
		t.Errorf("no unsplit packet seen: softnic split every segment, so this run did not test row 1:\n%s", tailLines(errOut, 20))
	}
	checkSame(t, "after ncdevmem RX", before, snicState(t, lab.B, lab.B.Link))
}
