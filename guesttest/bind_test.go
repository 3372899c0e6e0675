// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"errors"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/udmabuf"
	"golang.org/x/sys/unix"
)

// refusal checks that err is a translated *bind.Error (never a bare errno) and returns it.
func refusal(t *testing.T, what string, b *bind.Binding, err error) *bind.Error {
	t.Helper()
	if err == nil {
		b.Close()
		t.Fatalf("%s succeeded: no driver in this guest supports devmem", what)
	}
	var e *bind.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: %T %v, want *bind.Error", what, err, err)
	}
	t.Logf("%s: errno %d (%v), extack %q, offset %d, attr %q\n\t%v", what, int(e.Errno), e.Errno, e.Message, e.Offset, e.Attr, err)
	if e.Advice == "" {
		t.Errorf("%s: no advice: %v", what, err)
	}
	return e
}

// refusalRX is refusal for bind.BindRX(ifindex, queues, fd).
func refusalRX(t *testing.T, what string, ifindex int, queues []uint32, fd int) *bind.Error {
	t.Helper()
	b, err := bind.BindRX(ifindex, queues, fd)
	return refusal(t, what, b, err)
}

func newUdmabuf(t *testing.T, size int64) *udmabuf.Buffer {
	t.Helper()
	b, err := udmabuf.New(size, udmabuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// unusedFD is a descriptor number far above anything the test process opens (the bind package opens
// sockets of its own, which would reuse a freshly closed number): the "bogus fd" of a wrong --fd.
const unusedFD = 99999

// memfd returns an open descriptor that is not a dma-buf.
func memfd(t *testing.T) int {
	t.Helper()
	fd, err := unix.MemfdCreate("not-a-dmabuf", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// checkUnbound fails when a refused bind left a memory provider on any queue of ifindex.
func checkUnbound(t *testing.T, c *bind.Client, ifindex int) {
	t.Helper()
	qs, err := c.Queues(ifindex)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Held() {
			t.Errorf("queue %v %d is held after a refused bind: %+v", q.Type, q.ID, q)
		}
	}
}

// TestGuestBindVirtio binds a real udmabuf to virtio-net, which has no devmem support, and checks each
// kernel's refusal and its advice: 6.12 checks the fd before the device (EBADF for a closed fd,
// EINVAL for a file that is no dma-buf), attaches the dma-buf and only then refuses the queue
// (ERANGE out of range, EOPNOTSUPP at the restart), and has no bind-tx; 7.x refuses at the device (EOPNOTSUPP pointing at the ifindex attribute) and
// refuses bind-tx with "Driver does not support netmem TX".
func TestGuestBindVirtio(t *testing.T) {
	Require(t)
	rel := KernelRelease(t)
	nics := VirtioNICs(t)
	if len(nics) == 0 {
		t.Fatal("no virtio-net NIC in the guest")
	}
	dev := nics[0]
	idx := Ifindex(t, dev)
	buf := newUdmabuf(t, 4*mib)
	c, err := bind.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	e := refusalRX(t, "bind-rx "+dev+" queue 0, real udmabuf", idx, []uint32{0}, buf.FD())
	if e.Errno != unix.EOPNOTSUPP || !errors.Is(e, errors.ErrUnsupported) {
		t.Errorf("virtio-net with a real dma-buf: errno %v, want EOPNOTSUPP", e.Errno)
	}
	if !strings.Contains(e.Advice, "bnxt") {
		t.Errorf("advice %q does not name the drivers that support devmem RX", e.Advice)
	}
	if rel.AtLeast(7, 0) && (e.Attr != "ifindex" || e.Offset == 0) {
		t.Errorf("7.x refuses at the device: attr %q at offset %d, want ifindex", e.Attr, e.Offset)
	}

	if _, err := unix.FcntlInt(unusedFD, unix.F_GETFD, 0); err == nil {
		t.Fatalf("fd %d is open in the test process", unusedFD)
	}
	e = refusalRX(t, "bind-rx "+dev+" queue 0, fd not open", idx, []uint32{0}, unusedFD)
	e2 := refusalRX(t, "bind-rx "+dev+" queue 0, memfd", idx, []uint32{0}, memfd(t))
	if rel.AtLeast(7, 0) {
		for _, e := range []*bind.Error{e, e2} {
			if e.Errno != unix.EOPNOTSUPP || e.Attr != "ifindex" {
				t.Errorf("7.x checks the device before the fd: got %v at %q, want EOPNOTSUPP at ifindex", e.Errno, e.Attr)
			}
		}
	} else {
		if e.Errno != unix.EBADF {
			t.Errorf("6.12 checks the fd first: errno %v for a closed fd, want EBADF", e.Errno)
		}
		if !strings.Contains(e.Advice, "not a dma-buf") || !strings.Contains(e.Advice, "6.12") {
			t.Errorf("EBADF advice %q does not say the fd is checked first on 6.12", e.Advice)
		}
		if e2.Errno != unix.EINVAL || !strings.Contains(e2.Advice, "not a dma-buf") {
			t.Errorf("6.12, a memfd: %v %q, want EINVAL with advice that it is not a dma-buf", e2.Errno, e2.Advice)
		}
	}

	e = refusalRX(t, "bind-rx "+dev+" queue 7, real udmabuf", idx, []uint32{7}, buf.FD())
	if rel.AtLeast(7, 0) {
		if e.Errno != unix.EOPNOTSUPP || e.Attr != "ifindex" {
			t.Errorf("7.x refuses virtio-net before looking at queues: got %v at %q", e.Errno, e.Attr)
		}
	} else if e.Errno != unix.ERANGE || e.Message != "rx queue index out of range" || !strings.Contains(e.Advice, "queue 7 out of range") {
		t.Errorf("6.12 binds before restarting queues, so queue 7 of 1 must be out of range: %v %q, advice %q", e.Errno, e.Message, e.Advice)
	}

	b, err := bind.BindTX(idx, buf.FD())
	if !c.Has("bind-tx") {
		if rel.AtLeast(6, 15) {
			t.Errorf("kernel %s lacks bind-tx", rel)
		}
		e = refusal(t, "bind-tx "+dev+" (no such op)", b, err)
		if !strings.Contains(e.Advice, "6.15") {
			t.Errorf("bind-tx without the op: advice %q does not name Linux 6.15", e.Advice)
		}
	} else {
		e = refusal(t, "bind-tx "+dev, b, err)
		if e.Errno != unix.EOPNOTSUPP || e.Message != "Driver does not support netmem TX" {
			t.Errorf("bind-tx on virtio-net: %v %q, want EOPNOTSUPP \"Driver does not support netmem TX\"", e.Errno, e.Message)
		}
		if !strings.Contains(e.Advice, "host-memory TX") {
			t.Errorf("bind-tx advice %q does not point at host-memory TX", e.Advice)
		}
	}
	checkUnbound(t, c, idx)
	// The refused binds leave the dma-buf usable.
	if _, err := buf.WriteAt([]byte("still mine"), 0); err != nil {
		t.Error(err)
	}
}

// TestGuestBindNetdevsim binds a real udmabuf to netdevsim (7.x): it has the queue API and header
// split but no DMA device, so bind-rx is refused with "Device doesn't support DMA" before and after
// header split is on; a queue out of range is refused at the queue-id attribute; bind-tx with
// "Driver does not support netmem TX".
func TestGuestBindNetdevsim(t *testing.T) {
	Require(t)
	nsim := NewNetdevsim(t, 11, 1, 4)
	dev := nsim.Ports[0]
	idx := Ifindex(t, dev)
	ipLink(t, "set", dev, "up")
	buf := newUdmabuf(t, 4*mib)
	c, err := bind.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	noDMA := func(what string) {
		t.Helper()
		e := refusalRX(t, what, idx, []uint32{0, 1}, buf.FD())
		if e.Errno != unix.EOPNOTSUPP || e.Message != "Device doesn't support DMA" {
			t.Errorf("%s: %v %q, want EOPNOTSUPP \"Device doesn't support DMA\"", what, e.Errno, e.Message)
		}
		if !strings.Contains(e.Advice, "no DMA-capable parent device") {
			t.Errorf("%s: advice %q", what, e.Advice)
		}
	}
	noDMA("bind-rx " + dev + " queues 0-1, header split as created")

	old, err := nic.GetRings(dev)
	if err != nil {
		t.Fatal(err)
	}
	on, zero := nic.TCPDataSplitEnabled, uint32(0)
	if err := nic.SetRings(dev, nic.RingsUpdate{TCPDataSplit: &on, HDSThresh: &zero}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ts := old.TCPDataSplit
		u := nic.RingsUpdate{HDSThresh: old.HDSThresh}
		if ts != nic.TCPDataSplitUnknown {
			u.TCPDataSplit = &ts
		}
		if err := nic.SetRings(dev, u); err != nil {
			t.Errorf("restore rings of %s: %v", dev, err)
		}
	})
	noDMA("bind-rx " + dev + " queues 0-1, tcp-data-split on, hds-thresh 0")

	e := refusalRX(t, "bind-rx "+dev+" queue 7", idx, []uint32{7}, buf.FD())
	if e.Errno != unix.EINVAL || e.Attr != "queues[0].id" || e.Offset == 0 {
		t.Errorf("queue 7 of 4: %v at %q (offset %d), want EINVAL at queues[0].id", e.Errno, e.Attr, e.Offset)
	}
	if !strings.Contains(e.Advice, "queue 7 out of range") || !strings.Contains(e.Advice, "4 RX queues") {
		t.Errorf("queue 7 of 4: advice %q", e.Advice)
	}

	b, err := bind.BindTX(idx, buf.FD())
	e = refusal(t, "bind-tx "+dev, b, err)
	if e.Errno != unix.EOPNOTSUPP || e.Message != "Driver does not support netmem TX" {
		t.Errorf("bind-tx on netdevsim: %v %q, want EOPNOTSUPP \"Driver does not support netmem TX\"", e.Errno, e.Message)
	}
	checkUnbound(t, c, idx)
}

// ipLink runs the real ip (not busybox's) with "link" and args.
func ipLink(t testing.TB, args ...string) {
	t.Helper()
	run(t, "/usr/sbin/ip", append([]string{"link"}, args...)...)
}
