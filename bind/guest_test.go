// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind_test

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/guesttest"
	"github.com/devmemtcp/ncdevmem/udmabuf"
)

// Guest-kernel tier (scripts/vm/run-tests.sh with "bind" in GUEST_PKGS): dumps on multi-queue
// devices with NAPI instances, page pools and (7.x) page-pool statistics, which no host device here
// has, and the queue count that out-of-range advice names.

func TestGuestDumps(t *testing.T) {
	guesttest.Require(t)
	c, err := bind.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	devices := guesttest.VirtioNICs(t)
	if guesttest.KernelRelease(t).AtLeast(7, 0) {
		nsim := guesttest.NewNetdevsim(t, 12, 1, 4)
		devices = append(devices, nsim.Ports...)
	}
	for _, dev := range devices {
		idx := guesttest.Ifindex(t, dev)
		// The kernel lists no queues or NAPIs of a device that is down.
		if qs, err := c.Queues(idx); err != nil || len(qs) != 0 {
			t.Errorf("%s down: queues %+v, %v; want none", dev, qs, err)
		}
		if out, err := exec.Command("/usr/sbin/ip", "link", "set", dev, "up").CombinedOutput(); err != nil {
			t.Fatalf("ip link set %s up: %v: %s", dev, err, out)
		}
		qs, err := c.Queues(idx)
		if err != nil {
			t.Fatal(err)
		}
		napis, err := c.Napis(idx)
		if err != nil {
			t.Fatal(err)
		}
		var rx int
		for _, q := range qs {
			if q.Type == bind.QueueRX {
				rx++
				if q.NapiID != 0 {
					if id, ok := bind.QueueOfNapi(qs, q.NapiID); !ok || id != q.ID {
						t.Errorf("%s: QueueOfNapi(%d) = %d, %v; want rx queue %d", dev, q.NapiID, id, ok, q.ID)
					}
				}
			}
			if q.Held() {
				t.Errorf("%s: queue %+v held in a fresh guest", dev, q)
			}
		}
		if rx == 0 {
			t.Errorf("%s: no RX queues in %+v", dev, qs)
		}
		for _, n := range napis {
			if n.Ifindex != idx || n.ID == 0 {
				t.Errorf("%s: napi %+v", dev, n)
			}
		}
		pools, err := c.PagePools(idx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pools {
			if p.Ifindex != idx || p.ID == 0 || p.Dmabuf != 0 {
				t.Errorf("%s: page pool %+v", dev, p)
			}
		}
		t.Logf("%s (ifindex %d): %d rx queues, %d queues, %d napis %+v, %d page pools %+v", dev, idx, rx, len(qs), len(napis), napis, len(pools), pools)
		if c.Has("page-pool-stats-get") {
			st, err := c.PagePoolStats(idx)
			if err != nil {
				t.Fatal(err)
			}
			if len(st) != len(pools) {
				t.Errorf("%s: %d pool stats for %d pools", dev, len(st), len(pools))
			}
			for _, s := range st {
				t.Logf("%s: pool %d stats %v", dev, s.PoolID, s.Map())
			}
		} else if _, err := c.PagePoolStats(idx); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("page-pool-stats-get without the op: %v", err)
		}
		if q, err := c.QstatsQueues(idx); err == nil {
			for _, s := range q {
				t.Logf("%s: qstats %v %d: %v", dev, s.QueueType, s.QueueID, s.Map())
			}
		} else if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("%s: qstats: %v", dev, err)
		}

		// A queue past the end, with a real dma-buf so 6.12 gets as far as the queues: where the
		// kernel names the queue, the advice names the device's RX queue count.
		buf, err := udmabuf.New(1<<20, udmabuf.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := bind.BindRX(idx, []uint32{uint32(rx + 3)}, buf.FD())
		buf.Close()
		if err == nil {
			b.Close()
			t.Fatalf("%s: bind-rx of queue %d succeeded", dev, rx+3)
		}
		var e *bind.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %v", dev, err)
		}
		t.Logf("%s: %v", dev, err)
		if strings.HasPrefix(e.Attr, "queues") || strings.Contains(e.Message, "out of range") {
			if want := fmt.Sprintf("has %d RX queues", rx); !strings.Contains(e.Advice, want) {
				t.Errorf("%s: advice %q does not say %q", dev, e.Advice, want)
			}
		}
	}
}
