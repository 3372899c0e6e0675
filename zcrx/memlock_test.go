// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package zcrx

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestChargeCountsAreasRingsAndRegions(t *testing.T) {
	// A host area is charged whole, a dma-buf area not at all; each ifq adds its refill region and
	// its ring, which are the same for both.
	host, dmabuf := Charge(1, 256<<10, true), Charge(1, 256<<10, false)
	if host-dmabuf != 256<<10 {
		t.Errorf("host %d - dma-buf %d = %d, want the area (%d)", host, dmabuf, host-dmabuf, 256<<10)
	}
	// 256 KiB: 64 buffers, 256 refill entries (4 KiB) + the stats in one page after the ring's
	// page with the stats (12 KiB); the rings: 8192 CQE32 (256 KiB) and a header, charged as a 512 KiB block; the
	// 64 SQEs, one page.
	if dmabuf != 12<<10+512<<10+4<<10 {
		t.Errorf("rings and region of a 256 KiB ifq charged %d bytes", dmabuf)
	}
	if got := Charge(4, 1<<20, true); got != 4*Charge(1, 1<<20, true) {
		t.Errorf("four queues charged %d, want four times one (%d)", got, Charge(1, 1<<20, true))
	}
	if rqEntriesFor(MaxAreaSize) != 32768 || rqEntriesFor(MinAreaSize) != 64 || rqEntriesFor(0) != 1 {
		t.Errorf("refill entries %d %d %d", rqEntriesFor(MaxAreaSize), rqEntriesFor(MinAreaSize), rqEntriesFor(0))
	}
}

func TestCheckChargeRefusesOverTheLimit(t *testing.T) {
	need := Charge(1, DefaultAreaSize, true)
	for _, tc := range []struct {
		m    Memlock
		host bool
		ok   bool
	}{
		{Memlock{Limit: 8 << 20}, true, false},
		{Memlock{Limit: 8 << 20}, false, true},
		{Memlock{Limit: 8 << 20, IPCLock: true}, true, true},
		{Memlock{Limit: unix.RLIM_INFINITY}, true, true},
		{Memlock{Limit: uint64(need)}, true, true},
		{Memlock{Limit: uint64(need) - 1}, true, false},
	} {
		charge := need
		if !tc.host {
			charge = Charge(1, DefaultAreaSize, false)
		}
		err := tc.m.CheckCharge(charge, tc.host)
		if (err == nil) != tc.ok {
			t.Errorf("%+v host=%v: %v, want ok=%v", tc.m, tc.host, err, tc.ok)
		}
	}
	err := Memlock{Limit: 8 << 20}.CheckCharge(need, true)
	for _, w := range []string{"63.", "RLIMIT_MEMLOCK 8.0 MiB without CAP_IPC_LOCK", "ENOMEM", "ulimit -l", "CAP_IPC_LOCK", "--rx-mem udmabuf", "--zcrx-area-size", "up to about 7."} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal lacks %q: %v", w, err)
		}
	}
}

func TestMaxHostAreaFits(t *testing.T) {
	for _, limit := range []uint64{64 << 10, 1 << 20, 8 << 20, 64 << 20} {
		a := MaxHostArea(limit)
		if a > 0 && uint64(Charge(1, a, true)) > limit {
			t.Errorf("limit %d: area %d charges %d, over the limit", limit, a, Charge(1, a, true))
		}
		if limit >= 8<<20 && a < int64(limit)-int64(limit)/8 {
			t.Errorf("limit %d: area %d is far below it", limit, a)
		}
	}
	if MaxHostArea(unix.RLIM_INFINITY) != MaxAreaSize {
		t.Errorf("unlimited: %d", MaxHostArea(unix.RLIM_INFINITY))
	}
}

func TestReadMemlock(t *testing.T) {
	m, err := ReadMemlock()
	if err != nil {
		t.Fatal(err)
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		t.Fatal(err)
	}
	if m.Limit != rl.Cur {
		t.Errorf("limit %d, getrlimit says %d", m.Limit, rl.Cur)
	}
	if unix.Geteuid() == 0 && !m.IPCLock {
		t.Log("root without CAP_IPC_LOCK (a restricted container)")
	}
	t.Logf("%s", m)
}
