// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal pair: the master to read, the slave to give a child as stderr.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx (a terminal is what this test is about): %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pty's slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

var liveRE = regexp.MustCompile(`\rrun (\d)/2  \d+\.\d s elapsed, \d+\.\d s left  \d+\.\d\d Gbps  app CPU idle source (\d+%|\?) target (\d+%|\?)\x1b\[K`)

// TestLiveProgressOnTerminal: with stderr on a terminal, `run` rewrites one progress line in place
// during each window (run k/N, elapsed and remaining time, Gbps, app-CPU idle) and erases it
// before the report.
func TestLiveProgressOnTerminal(t *testing.T) {
	m, s := openPTY(t)
	cmd := exec.Command(testnet.Binary(t), "run", "--time", "1.5s", "--runs", "2")
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, s
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var term bytes.Buffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			term.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%q", err, term.String())
	}
	select {
	case <-readDone:
	case <-time.After(5 * time.Second):
		t.Fatal("terminal output did not end")
	}
	got := term.String()
	// Each run shows at least one line with traffic and both sides' idle known (the very first
	// line of a run may precede one side's first sample).
	seen := map[string]bool{}
	for _, mm := range liveRE.FindAllStringSubmatch(got, -1) {
		if mm[2] != "?" && mm[3] != "?" && !strings.Contains(mm[0], " 0.00 Gbps") {
			seen[mm[1]] = true
		}
	}
	if !seen["1"] || !seen["2"] {
		t.Errorf("want complete live lines for runs 1/2 and 2/2 on the terminal, got %q", got)
	}
	if !strings.HasSuffix(got, "\r\x1b[K") || strings.Contains(stdout.String(), "\r") {
		t.Errorf("the line is not erased at the end, or leaked to stdout: %q / %q", got[max(0, len(got)-80):], stdout.String())
	}
}

// TestNoLiveProgressOffTerminal: stderr to a pipe or file gets no progress line at all.
func TestNoLiveProgressOffTerminal(t *testing.T) {
	cmd := exec.Command(testnet.Binary(t), "run", "--time", "1.5s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "\r") || strings.Contains(stderr.String(), "elapsed") {
		t.Errorf("progress line on a non-terminal stderr: %q", stderr.String())
	}
	if !strings.Contains(stdout.String(), "== Target") {
		t.Errorf("no report: %q", stdout.String())
	}
}
