// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/nic"
)

func cleanupCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), append([]string{"cleanup"}, args...), strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

// journalLine writes one journal record the way package nic does (CRC-32C, then the body).
func journalLine(body string) string {
	return fmt.Sprintf("%08x %s\n", crc32.Checksum([]byte(body), crc32.MakeTable(crc32.Castagnoli)), body)
}

func TestCleanupNothingToDo(t *testing.T) {
	code, out, errs := cleanupCLI("-f", "lo", "--state-dir", t.TempDir())
	if code != 0 || out != "nothing to clean up for lo\n" || errs != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestCleanupPointsAtOtherNamespaces(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "lo@netns-1.journal")
	if err := os.WriteFile(other, []byte(journalLine("begin ifname=lo ifindex=1 pid=1")), 0o600); err != nil {
		t.Fatal(err)
	}
	if nic.JournalPath(dir, "lo") == other {
		t.Skip("this test runs in the namespace the fake journal names")
	}
	code, out, errs := cleanupCLI("-f", "lo", "--state-dir", dir)
	if code != 0 || out != "nothing to clean up for lo\n" || !strings.Contains(errs, other+" is the journal of lo in another network namespace") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestCleanupUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--state-dir", dir}, 2, "-f IF is required"},
		{[]string{"-f", "nosuchif9", "--state-dir", dir}, 2, `no interface "nosuchif9" in this network namespace and no journal for it`},
		{[]string{"-f", "../../etc", "--state-dir", dir}, 2, "not a valid interface name"},
		{[]string{"-f", "lo", "eth0"}, 2, `unexpected argument "eth0"`},
		{[]string{"-f", "lo", "--bogus"}, 2, "unknown flag: --bogus"},
	} {
		code, out, errs := cleanupCLI(tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tt.args, code, out, errs, tt.code, tt.want)
		}
		if strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: stderr is not one line: %q", tt.args, errs)
		}
	}
}

// A journal whose begin record is all that reached the disk: nothing was changed, and cleanup
// removes it. It runs on lo, which every namespace has, so it needs no root.
func TestCleanupReplaysJournal(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no lo here: %v", err)
	}
	dir := t.TempDir()
	path := nic.JournalPath(dir, "lo")
	if err := os.WriteFile(path, []byte(journalLine(fmt.Sprintf("begin ifname=lo ifindex=%d pid=1", lo.Index))), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cleanupCLI("-f", "lo", "--state-dir", dir)
	if code != 0 || out != "lo restored; journal removed\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("journal still there: %v", err)
	}
}

func TestCleanupRefusesBadJournals(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no lo here: %v", err)
	}
	for _, tt := range []struct {
		name, journal, want string
	}{
		{"other device", journalLine(fmt.Sprintf("begin ifname=lo ifindex=%d pid=1", lo.Index+1000)) + journalLine("indir table=default"),
			"the device was recreated"},
		{"damaged", "00000000 begin ifname=lo ifindex=1 pid=1\n" + journalLine("indir table=default"), "is damaged"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := nic.JournalPath(dir, "lo")
			if err := os.WriteFile(path, []byte(tt.journal), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errs := cleanupCLI("-f", "lo", "--state-dir", dir)
			if code != 1 || out != "" || !strings.Contains(errs, tt.want) || strings.Count(errs, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errs, tt.want)
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != tt.journal {
				t.Fatalf("journal changed: %q, %v", b, err)
			}
		})
	}
}

// While the run that wrote the journal lives (it holds an exclusive flock on it), cleanup refuses.
func TestCleanupRefusesWhileOwnerRuns(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no lo here: %v", err)
	}
	dir := t.TempDir()
	path := nic.JournalPath(dir, "lo")
	journal := journalLine(fmt.Sprintf("begin ifname=lo ifindex=%d pid=4242", lo.Index))
	if err := os.WriteFile(path, []byte(journal), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cleanupCLI("-f", "lo", "--state-dir", dir)
	if code != 1 || out != "" || !strings.Contains(errs, "ncdevmem pid 4242 is still running") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != journal {
		t.Fatalf("journal changed: %q, %v", b, err)
	}
}
