// SPDX-License-Identifier: MIT

package testnet

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestRootPairConnects(t *testing.T) {
	Require(t)
	a, b := Pair(t)
	var ln net.Listener
	if err := b.Do(func() (err error) {
		ln, err = net.Listen("tcp", b.Addr.String()+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	var got []byte
	if err := a.Do(func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 2)
		_, err = c.Read(buf)
		got = buf
		return err
	}); err != nil {
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
