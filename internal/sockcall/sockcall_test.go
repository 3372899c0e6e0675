// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package sockcall

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRoundTripAndErrors(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	out, in := []byte("devmem"), make([]byte, 16)
	var msg unix.Msghdr
	var iov unix.Iovec
	iov.Base, msg.Iov = &out[0], &iov
	iov.SetLen(len(out))
	msg.SetIovlen(1)
	if n, err := Sendmsg(fds[0], &msg, 0); err != nil || n != len(out) {
		t.Fatalf("Sendmsg = %d, %v", n, err)
	}
	iov.Base = &in[0]
	iov.SetLen(len(in))
	if n, err := Recvmsg(fds[1], &msg, 0); err != nil || string(in[:n]) != "devmem" {
		t.Fatalf("Recvmsg = %q, %v", in[:n], err)
	}
	// Nothing left: EAGAIN, boxed statically, without allocating.
	allocs := testing.AllocsPerRun(100, func() { Recvmsg(fds[1], &msg, 0) })
	if _, err := Recvmsg(fds[1], &msg, 0); err != unix.EAGAIN || allocs != 0 {
		t.Fatalf("empty socket: %v (%v allocs)", err, allocs)
	}
	// setsockopt returns the kernel's result; a bad level is the kernel's errno.
	one := []byte{1, 0, 0, 0}
	if r, err := Setsockopt(fds[0], unix.SOL_SOCKET, unix.SO_KEEPALIVE, one); err != nil || r != 0 {
		t.Fatalf("Setsockopt = %d, %v", r, err)
	}
	if _, err := Setsockopt(fds[0], 9999, 1, one); !errors.Is(err, unix.ENOPROTOOPT) && !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("bad level: %v", err)
	}
}

func TestCall(t *testing.T) {
	answers := []error{unix.EINTR, unix.EINTR, nil}
	calls := 0
	f := func() (int, error) {
		err := answers[calls]
		calls++
		return 7, err
	}
	if n, wait, err := Call(f); n != 7 || wait || err != nil || calls != 3 {
		t.Errorf("EINTR twice, then 7: got %d, wait %v, %v after %d calls", n, wait, err, calls)
	}
	answers, calls = []error{unix.EAGAIN}, 0
	if n, wait, err := Call(f); n != 0 || !wait || err != nil {
		t.Errorf("EAGAIN: got %d, wait %v, %v", n, wait, err)
	}
	answers, calls = []error{unix.ECONNRESET}, 0
	if _, wait, err := Call(f); wait || err != unix.ECONNRESET {
		t.Errorf("ECONNRESET: wait %v, %v", wait, err)
	}
	answers, calls = []error{nil}, 0
	if a := testing.AllocsPerRun(100, func() { calls = 0; Call(f) }); a != 0 {
		t.Errorf("Call allocates %v times", a)
	}
}
