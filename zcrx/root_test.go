// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package zcrx

import (
	"bufio"
	"compress/gzip"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/pattern"
)

// kernelAtLeast reports whether the running kernel is major.minor or newer.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var a, b int
	for i, s := range strings.SplitN(unix.ByteSliceToString(u.Release[:]), ".", 3)[:2] {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		if i == 0 {
			a = n
		} else {
			b = n
		}
	}
	return a > major || a == major && b >= minor
}

// kconfig returns the value of CONFIG_name from /proc/config.gz, "" when unknown.
func kconfig(name string) string {
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		return ""
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return ""
	}
	s := bufio.NewScanner(z)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "CONFIG_"+name+"="); ok {
			return v
		}
	}
	return "n"
}

func TestRootRingNop(t *testing.T) {
	testnet.Require(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, err := NewRing(8, 64, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Enable(); err != nil {
		t.Fatal(err)
	}
	for i := range uint64(3) {
		if !r.nop(0xabc0 + i) {
			t.Fatal("no free SQE in an empty ring")
		}
	}
	got := 0
	deadline := time.Now().Add(5 * time.Second)
	for got < 3 && time.Now().Before(deadline) {
		if err := r.Enter(time.Second); err != nil {
			t.Fatal(err)
		}
		for c := r.peek(); c != nil; c = r.peek() {
			if c.UserData != 0xabc0+uint64(got) || c.Res != 0 {
				t.Fatalf("CQE %d: user_data %#x res %d", got, c.UserData, c.Res)
			}
			r.advance()
			got++
		}
	}
	if got != 3 {
		t.Fatalf("%d of 3 NOP completions through the 32-byte CQ ring", got)
	}
}

func TestRootProbe(t *testing.T) {
	testnet.Require(t)
	s, err := Probe()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("support: RecvZC %v Register %v query %+v", s.RecvZC, s.Register, s.Query)
	if kernelAtLeast(t, 6, 15) && !s.RecvZC {
		t.Fatal("kernel 6.15 or later without IORING_OP_RECV_ZC in the probe")
	}
	switch kconfig("IO_URING_ZCRX") {
	case "y":
		if s.Register != nil {
			t.Fatalf("CONFIG_IO_URING_ZCRX=y but the probe says %v", s.Register)
		}
	case "n":
		if !errors.Is(s.Register, ErrNoZcrx) {
			t.Fatalf("CONFIG_IO_URING_ZCRX off but the probe says %v", s.Register)
		}
	}
}

// TestRootRegisterRefusedWithoutDriver: veth and loopback have no DMA device, so the kernel
// refuses the ifq; the refusal names the cause and leaves no memory provider on the queue.
func TestRootRegisterRefusedWithoutDriver(t *testing.T) {
	testnet.Require(t)
	if s, err := Probe(); err != nil || s.Usable() != nil {
		t.Skipf("kernel without zcrx (%v %v): the refusal under test is the driver's", err, s.Usable())
	}
	ns := testnet.Single(t)
	for _, link := range []string{ns.Link, "lo"} {
		ifindex := ns.Ifindex(t, link)
		err := ns.Do(func() error {
			area, err := HostArea(MinAreaSize)
			if err != nil {
				return err
			}
			defer FreeHostArea(area)
			r, err := NewRing(8, 64, true)
			if err != nil {
				return err
			}
			defer r.Close()
			q, err := r.RegisterIfq(IfqConfig{Ifname: link, Ifindex: ifindex, Queue: 0, Area: area, DmabufFD: -1})
			if err == nil {
				q.Close()
				return errors.New("registered")
			}
			return err
		})
		var re *RegisterError
		if !errors.As(err, &re) || !errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(err.Error(), "no DMA device") {
			t.Fatalf("%s: got %v, want EOPNOTSUPP naming the missing DMA device", link, err)
		}
		t.Logf("%s: %v", link, err)
		err = ns.Do(func() error {
			c, err := bind.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			qs, err := c.Queues(ifindex)
			if err != nil {
				return err
			}
			for _, q := range qs {
				if q.Held() {
					return errors.New("queue left with a memory provider")
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
			t.Fatalf("%s after the refusal: %v", link, err)
		}
	}
}

// TestRootNoDevDataPath runs the whole receive path (RECV_ZC, 32-byte completions, in-place
// validation, refill batches, copy counters) on a loopback TCP connection with an ifq registered
// without a device (ZCRX_REG_NODEV, Linux 7.x), where the kernel copies every byte into the area.
func TestRootNoDevDataPath(t *testing.T) {
	testnet.Require(t)
	s, err := Probe()
	if err != nil {
		t.Fatal(err)
	}
	if !kernelAtLeast(t, 7, 0) {
		// ZCRX_REG_NODEV is a 7.x flag: older kernels refuse the flag (EINVAL) or zcrx altogether.
		r, err := NewRing(4, 8, true)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, err = r.RegisterIfq(IfqConfig{NoDev: true, Area: make([]byte, MinAreaSize), DmabufFD: -1})
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EOPNOTSUPP) {
			t.Fatalf("kernel before 7.0: no-device registration gave %v, want EINVAL or EOPNOTSUPP", err)
		}
		t.Logf("kernel before 7.0: %v (the 7.x guest runs the data path: make test-vm)", err)
		return
	}
	if s.Usable() != nil {
		t.Fatalf("Linux 7.x without zcrx: %v", s.Usable())
	}
	for _, flows := range []int{1, 4} {
		area, err := HostArea(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRing(16, 1024, true)
		if err != nil {
			t.Fatal(err)
		}
		q, err := r.RegisterIfq(IfqConfig{NoDev: true, Area: area, DmabufFD: -1, CopyStats: s.CopyStats()})
		if err != nil {
			r.Close()
			t.Fatal(err)
		}
		rc, err := NewReceiver(r, q, 8)
		if err != nil {
			t.Fatal(err)
		}
		const size = 8 << 20
		fs := make([]*Flow, flows)
		for i := range flows {
			c, srv := testnet.TCPPair(t)
			raw, _ := srv.SyscallConn()
			var fd int
			raw.Control(func(u uintptr) { fd = int(u) })
			if fs[i], err = rc.Arm(i, fd, func(p []byte, off uint64) error { return pattern.Check(i, p, off) }, 1, nil); err != nil {
				t.Fatal(err)
			}
			go func(c net.Conn) {
				b := make([]byte, 64<<10)
				for off := 0; off < size; off += len(b) {
					pattern.Fill(b, uint64(off))
					if _, err := c.Write(b); err != nil {
						return
					}
				}
				c.Close()
			}(c)
		}
		for i, f := range fs {
			select {
			case <-f.Done():
			case <-time.After(60 * time.Second):
				t.Fatalf("flows=%d: flow %d hung at offset %d", flows, i, f.Offset())
			}
			if f.Err() != nil || f.Offset() != size {
				t.Fatalf("flows=%d: flow %d ended at %d of %d: %v", flows, i, f.Offset(), size, f.Err())
			}
		}
		snap := rc.Snapshot()
		t.Logf("flows=%d: %+v", flows, snap)
		if snap.Bytes != uint64(flows*size) || snap.RefillEntries != snap.Completions || snap.RefillBatches == 0 {
			t.Fatalf("counters %+v", snap)
		}
		// Everything is copied without a device, but 7.3 counts copied frags (not CQEs) and leaves
		// out bytes copied from an skb's linear part.
		if snap.CopyKnown && (snap.CopyBytes == 0 || snap.CopyBytes > snap.Bytes || snap.CopyCount == 0 || snap.CopyCount > snap.Completions) {
			t.Fatalf("no-device ifq: copy counters %+v", snap)
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
		FreeHostArea(area)
	}
}
