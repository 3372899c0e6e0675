// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package doctor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/zcrx"
)

// ZcrxSystem is what the zcrx lines read. A System that does not implement it (the devmem-only
// fakes) gets no zcrx lines and no zcrx verdict.
type ZcrxSystem interface {
	// ZcrxSupport is zcrx.Probe: the kernel's io_uring zcrx support, no NIC involved.
	ZcrxSupport() (zcrx.Support, error)
	// IoUringDisabled is the kernel.io_uring_disabled sysctl (0, 1 or 2); an error wrapping
	// os.ErrNotExist on kernels before 6.6, which have no such sysctl.
	IoUringDisabled() (int, error)
	// ProbeZcrx asks the kernel to register a zcrx ifq on queue with an area that cannot be
	// imported (a memfd passed as a dma-buf): it reaches the area only when the device has a DMA
	// device for its queues, and never touches the queue. It returns the kernel's refusal.
	ProbeZcrx(ifindex int, queue uint32) error
	// ZcrxMemlock is zcrx.ReadMemlock: RLIMIT_MEMLOCK and CAP_IPC_LOCK.
	ZcrxMemlock() (zcrx.Memlock, error)
}

// zcrxShared are the devmem lines whose findings hold for zcrx too: both need CAP_NET_ADMIN, an RX
// queue the memory provider can take (queue API, header split, hds-thresh 0, no XDP), and flow
// steering with RSS kept off that queue.
var zcrxShared = []string{"cap-net-admin", "queues", "channels", "tcp-data-split", "hds-thresh", "ntuple", "rss", "link", "xdp"}

// zcrx adds the io_uring zcrx lines and marks the shared ones; Run calls it before the verdicts.
func (d *run) zcrx() {
	zs, ok := d.sys.(ZcrxSystem)
	if !ok {
		return
	}
	d.rep.ZCRX = &Verdict{}
	for i := range d.rep.Checks {
		for _, id := range zcrxShared {
			if d.rep.Checks[i].ID == id {
				d.rep.Checks[i].ZC = true
			}
		}
	}
	kc, usable := d.zcrxKernel(zs)
	d.add(kc)
	d.add(d.zcrxSysctl(zs))
	d.add(zcrxMemlock(zs))
	d.add(d.zcrxProbe(zs, usable))
}

// zcrxKernel is the kernel-support line; usable is false when the kernel has no zcrx at all.
func (d *run) zcrxKernel(zs ZcrxSystem) (kc Check, usable bool) {
	kc = Check{ID: "zcrx-kernel", Title: "io_uring zcrx in the kernel", ZC: true}
	sup, err := zs.ZcrxSupport()
	switch {
	case err != nil:
		kc.Status, kc.Detail = StatusFail, err.Error()
		kc.Fix = []string{"zcrx needs io_uring: Linux 6.15 or newer with CONFIG_IO_URING and CONFIG_IO_URING_ZCRX"}
	case errors.Is(sup.Usable(), zcrx.ErrNoZcrx):
		kc.Status, kc.Detail = StatusFail, "kernel "+d.release+": "+sup.Usable().Error()
		kc.Fix = []string{"boot Linux 6.15 or newer built with CONFIG_IO_URING_ZCRX=y (Debian 7.x kernels have it)"}
	case sup.Usable() != nil:
		// EPERM and the like: the kernel has zcrx, this process cannot tell more.
		kc.Status, kc.Detail = StatusWarn, sup.Usable().Error()
		usable = true
	default:
		usable = true
		kc.Status = StatusOK
		kc.Detail = "RECV_ZC and IORING_REGISTER_ZCRX_IFQ"
		kc.Detail += fmt.Sprintf("; dma-buf areas (--rx-mem udmabuf) %s, copy-fallback counters %s", yesNo(sup.DmabufAreas()), yesNo(sup.CopyStats()))
		if !sup.CopyStats() {
			kc.Detail += " (this kernel keeps no zcrx_stats: absent from 6.18, present in 7.3; copy fallbacks are reported as unknown)"
		}
	}
	return kc, usable
}

// zcrxSysctl is the kernel.io_uring_disabled line.
func (d *run) zcrxSysctl(zs ZcrxSystem) Check {
	sc := Check{ID: "zcrx-sysctl", Title: "io_uring allowed (kernel.io_uring_disabled)", ZC: true}
	v, err := zs.IoUringDisabled()
	switch {
	case errors.Is(err, os.ErrNotExist):
		sc.Status, sc.Detail = StatusOK, "no such sysctl on this kernel: io_uring is not restricted"
	case err != nil:
		sc.Status, sc.Detail = StatusWarn, "cannot read: "+err.Error()
	case v == 0:
		sc.Status, sc.Detail = StatusOK, "0: io_uring enabled for all processes"
	case v == 1 && d.cap:
		// 1 lets processes in kernel.io_uring_group or with CAP_SYS_ADMIN create rings.
		sc.Status, sc.Detail = StatusWarn, "1: only members of kernel.io_uring_group and CAP_SYS_ADMIN may create rings"
		sc.Fix = []string{"sysctl -w kernel.io_uring_disabled=0, or run as root"}
	default:
		sc.Status, sc.Detail = StatusFail, fmt.Sprintf("%d: io_uring_setup is refused", v)
		sc.Fix = []string{"sysctl -w kernel.io_uring_disabled=0"}
	}
	return sc
}

// zcrxMemlock is the locked-memory line: without CAP_IPC_LOCK the kernel charges a host area (and
// the rings) to RLIMIT_MEMLOCK, and refuses one over it with a bare ENOMEM. A warning, not a
// failure: a dma-buf area or a smaller host area still runs.
func zcrxMemlock(zs ZcrxSystem) Check {
	mc := Check{ID: "zcrx-memlock", Title: "locked memory for a zcrx host area", ZC: true}
	m, err := zs.ZcrxMemlock()
	need := zcrx.Charge(1, zcrx.DefaultAreaSize, true)
	switch {
	case err != nil:
		mc.Status, mc.Detail = StatusWarn, "cannot read: "+err.Error()
	case m.CheckCharge(need, true) == nil:
		mc.Status, mc.Detail = StatusOK, m.String()+": the default host area fits"
	default:
		mc.Status = StatusWarn
		mc.Detail = fmt.Sprintf("%s: the default %d MiB host area (--rx-mem host) would be refused; a host area fits up to about %d KiB",
			m, zcrx.DefaultAreaSize>>20, zcrx.MaxHostArea(m.Limit)>>10)
		mc.Fix = []string{"ulimit -l unlimited before starting the server (LimitMEMLOCK=infinity for a systemd service), or run it as root (CAP_IPC_LOCK)",
			"or use --rx-mem udmabuf (a dma-buf area is not charged), or a smaller --zcrx-area-size"}
	}
	return mc
}

// zcrxProbe is the register-probe line: does the driver of the interface take a zcrx area at all.
func (d *run) zcrxProbe(zs ZcrxSystem, usable bool) Check {
	pc := Check{ID: "zcrx-probe", Title: "zcrx register probe", ZC: true}
	q, haveQ := d.probeQueue()
	switch {
	case !usable:
		pc.Status, pc.Detail = StatusSkip, "the kernel has no zcrx"
		return pc
	case !d.cap:
		pc.Status, pc.Detail = StatusSkip, "needs CAP_NET_ADMIN"
		return pc
	case !haveQ:
		pc.Status, pc.Detail = StatusSkip, "no free RX queue to probe"
		return pc
	}
	err := zs.ProbeZcrx(d.ifindex, q)
	var re *zcrx.RegisterError
	switch {
	case err == nil:
		pc.Status, pc.Detail = StatusWarn, fmt.Sprintf("queue %d: the kernel took a memfd as a dma-buf area; unexpected, the ring was closed at once", q)
	case errors.As(err, &re) && (re.Errno == unix.EBADF || re.Errno == unix.EINVAL):
		pc.Status = StatusOK
		pc.Detail = fmt.Sprintf("queue %d: the driver has a DMA device for zcrx: the kernel got as far as the (deliberately invalid) area", q)
	case errors.Is(err, unix.EOPNOTSUPP):
		pc.Status = StatusFail
		pc.Detail = fmt.Sprintf("queue %d: the driver of %s gives no DMA device for its RX queues, so zcrx cannot use it", q, d.ifname)
		pc.Fix = []string{"use a NIC whose driver supports memory providers (bnxt, gve, mlx5, fbnic, or softnic in the guest tier)"}
	default:
		pc.Status, pc.Detail = StatusFail, fmt.Sprintf("queue %d: %v", q, err)
	}
	return pc
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// ZcrxSupport is zcrx.Probe.
func (l *LiveSystem) ZcrxSupport() (zcrx.Support, error) { return zcrx.Probe() }

// ZcrxMemlock is zcrx.ReadMemlock.
func (l *LiveSystem) ZcrxMemlock() (zcrx.Memlock, error) { return zcrx.ReadMemlock() }

// IoUringDisabled reads /proc/sys/kernel/io_uring_disabled.
func (l *LiveSystem) IoUringDisabled() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// ProbeZcrx registers an ifq whose area is a memfd flagged as a dma-buf: the kernel looks up the
// device and its DMA device first, then fails to import the area, before the queue is opened.
func (l *LiveSystem) ProbeZcrx(ifindex int, queue uint32) error {
	fd, err := probeFD()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	r, err := zcrx.NewRing(2, 4, true)
	if err != nil {
		return err
	}
	defer r.Close()
	area := make([]byte, zcrx.MinAreaSize)
	q, err := r.RegisterIfq(zcrx.IfqConfig{Ifname: fmt.Sprintf("ifindex %d", ifindex), Ifindex: ifindex, Queue: queue, Area: area, DmabufFD: fd})
	if err == nil {
		q.Close()
	}
	return err
}

var _ ZcrxSystem = (*LiveSystem)(nil)
