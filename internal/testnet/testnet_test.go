// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package testnet

import (
	"io"
	"os/exec"
	"strings"
	"testing"
)

func TestRootPairConnects(t *testing.T) {
	Require(t)
	a, b := Pair(t)
	c, s := Connect(t, a, b)
	if _, err := s.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "hi" {
		t.Fatalf("read %q, want hi", got)
	}
	// The listener lives in b only: the root namespace has no 198.18 address to reach it from.
	if out, _ := exec.Command("ip", "-o", "addr").Output(); strings.Contains(string(out), b.Addr.String()) {
		t.Fatalf("address %s leaked into the root namespace", b.Addr)
	}
	if a.Ifindex(t, "veth0") <= 0 {
		t.Fatal("no ifindex for veth0")
	}
	if out, err := a.Command("ip", "-o", "link", "show", "veth0").CombinedOutput(); err != nil || !strings.Contains(string(out), "veth0") {
		t.Fatalf("Command in namespace: %v: %s", err, out)
	}
}
