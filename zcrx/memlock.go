// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package zcrx

import (
	"fmt"
	"math/bits"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// Memlock is what the kernel charges a zcrx run against. Without CAP_IPC_LOCK every page it pins
// for io_uring (a host area, the refill region, the SQ and CQ rings) counts towards the user's
// RLIMIT_MEMLOCK (io_uring/rsrc.c __io_account_mem), and a registration over the limit fails with a
// bare ENOMEM. A dma-buf area is not charged.
type Memlock struct {
	Limit   uint64 // RLIMIT_MEMLOCK soft limit in bytes; unix.RLIM_INFINITY when unlimited
	IPCLock bool   // CAP_IPC_LOCK is effective: io_uring charges nothing
}

// ReadMemlock reads this process's RLIMIT_MEMLOCK and whether it has CAP_IPC_LOCK.
func ReadMemlock() (Memlock, error) {
	var m Memlock
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		return m, fmt.Errorf("getrlimit(RLIMIT_MEMLOCK): %w", err)
	}
	m.Limit = rl.Cur
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return m, fmt.Errorf("capget: %w", err)
	}
	m.IPCLock = data[unix.CAP_IPC_LOCK/32].Effective&(1<<(unix.CAP_IPC_LOCK%32)) != 0
	return m, nil
}

// Unlimited reports whether nothing the kernel pins for zcrx can exceed the limit.
func (m Memlock) Unlimited() bool { return m.IPCLock || m.Limit == unix.RLIM_INFINITY }

// String is the doctor's and the refusals' wording of the limit.
func (m Memlock) String() string {
	switch {
	case m.IPCLock:
		return "CAP_IPC_LOCK: io_uring memory is not charged to RLIMIT_MEMLOCK"
	case m.Limit == unix.RLIM_INFINITY:
		return "RLIMIT_MEMLOCK unlimited"
	}
	return "RLIMIT_MEMLOCK " + mib(int64(m.Limit)) + " without CAP_IPC_LOCK"
}

// Ring sizes the bench uses; Charge counts their memory.
const (
	RingEntries   = 64
	RingCQEntries = 8192
)

// DefaultAreaSize is the area when --zcrx-area-size is not given: the size of devmem's default
// dma-buf (the C ncdevmem's 16000 pages), so the two paths are compared with the same memory.
const DefaultAreaSize = 16000 * pageSize

// rqEntriesFor is the refill ring size RegisterIfq picks for an area of size bytes.
func rqEntriesFor(size int64) uint32 {
	n := uint32(max(min(4*size/pageSize, uapi.IO_RQ_MAX_ENTRIES), 1))
	return 1 << bits.Len32(n-1)
}

// regionBytes is the refill region RegisterIfq maps for rqEntries entries.
func regionBytes(rqEntries uint32) int64 {
	n := int64(pageSize) + int64(rqEntries)*uapi.SizeofIoUringZcrxRqe + uapi.SizeofZcrxStats
	return (n + pageSize - 1) &^ (pageSize - 1)
}

// ringBytes is an upper bound of what the kernel pins for one ring of RingEntries SQEs and
// RingCQEntries 32-byte CQEs: the SQ and CQ rings (their header, the CQEs and the SQ array), which
// 7.x allocates as one compound block and charges whole (a power of two of pages), and the SQEs.
func ringBytes() int64 {
	rings := int64(pageSize) + RingCQEntries*uapi.SizeofIoUringCqe32 + RingEntries*4
	block := int64(pageSize)
	for block < rings {
		block <<= 1
	}
	sqes := (int64(RingEntries*uapi.SizeofIoUringSqe) + pageSize - 1) &^ (pageSize - 1)
	return block + sqes
}

// Charge is what the kernel charges to RLIMIT_MEMLOCK for queues ifqs of perArea bytes each, one
// ring per ifq: the areas when host is true (a dma-buf area is not charged), the refill regions
// and the rings.
func Charge(queues int, perArea int64, host bool) int64 {
	per := regionBytes(rqEntriesFor(perArea)) + ringBytes()
	if host {
		per += perArea
	}
	return int64(queues) * per
}

// MaxHostArea is about the largest single host area (one queue) whose charge fits limit bytes.
func MaxHostArea(limit uint64) int64 {
	if limit > MaxAreaSize*2 {
		return MaxAreaSize
	}
	a := int64(limit) - ringBytes() - regionBytes(rqEntriesFor(int64(limit)))
	return max(a&^(pageSize-1), 0)
}

// CheckCharge refuses, before the kernel's bare ENOMEM, a run whose pinned memory is over the limit:
// the figures and what to do. charge is from Charge; host says whether the areas are host memory.
func (m Memlock) CheckCharge(charge int64, host bool) error {
	if m.Unlimited() || uint64(charge) <= m.Limit {
		return nil
	}
	fix := "raise the limit of the server that registers the area (ulimit -l unlimited before it starts; LimitMEMLOCK=infinity for a systemd service), or run it with CAP_IPC_LOCK (as root)"
	if host {
		fix += fmt.Sprintf(", or use --rx-mem udmabuf (a dma-buf area is not charged), or lower --zcrx-area-size (one queue's host area fits up to about %s)", mib(MaxHostArea(m.Limit)))
	}
	return fmt.Errorf("zcrx needs %s of locked memory (areas, refill rings and io_uring rings) and this process has %s: the kernel would refuse the area with ENOMEM; %s (ncdevmem doctor shows the limit; memory other processes of this user pinned counts too)",
		mib(charge), m, fix)
}

// mib prints a byte count in MiB with one decimal, or in KiB below 1 MiB.
func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
