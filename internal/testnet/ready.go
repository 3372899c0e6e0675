// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package testnet

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// WaitInq waits until at least n bytes are queued for reading on the socket fd (SIOCINQ), so a
// test reads only once the data it expects has arrived. It fails t after 10 s.
func WaitInq(t testing.TB, fd, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
		if err != nil {
			t.Fatalf("ioctl SIOCINQ: %v", err)
		}
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes queued after 10 s, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// WaitDelivered waits until every byte the socket fd has sent is acknowledged by the peer
// (SIOCOUTQ equals SIOCOUTQNSD, the bytes not yet sent): whatever the sender could send has
// reached the peer's socket. Bytes held back by a closed window stay unsent and do not count. It
// fails t after 10 s.
func WaitDelivered(t testing.TB, fd int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
		if err != nil {
			t.Fatalf("ioctl SIOCOUTQ: %v", err)
		}
		unsent, err := unix.IoctlGetInt(fd, unix.SIOCOUTQNSD)
		if err != nil {
			t.Fatalf("ioctl SIOCOUTQNSD: %v", err)
		}
		if out == unsent {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still in flight after 10 s", out-unsent)
		}
		time.Sleep(time.Millisecond)
	}
}
