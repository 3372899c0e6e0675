// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"golang.org/x/sys/unix"
)

// Every row of the kernel's bind-rx/bind-tx refusals (devmem-uapi.md §5, newest wording and the
// older ones) must reach the user as the kernel's words plus advice, never a bare errno.
func TestTranslate(t *testing.T) {
	// ifindex 1 is lo in every namespace, so names in the advice are stable.
	rx := func(pageSize uint32) *request {
		req := RXRequest{Ifindex: 1, Queues: []uint32{14, 15}, DmabufFD: 7, RxPageSize: pageSize}
		attrs, err := encodeBindRX(req)
		if err != nil {
			t.Fatal(err)
		}
		return &request{cmd: uapi.NETDEV_CMD_BIND_RX, ifindex: 1, queues: req.Queues, fd: 7, attrs: attrs}
	}
	txAttrs, _ := encodeBindTX(1, 7)
	tx := &request{cmd: uapi.NETDEV_CMD_BIND_TX, ifindex: 1, fd: 7, attrs: txAttrs}
	// Offsets from the nlmsghdr: ifindex 20, fd 28, queues[0] 36 (id 40, type 48), queues[1] 56
	// (id 60, type 68), rx-page-size 76.
	for _, tc := range []struct {
		name        string
		r           *request
		ae          ackError
		h           hints
		attr, miss  string
		wantAdvice  string
		wantIs      error
		wantMessage string
	}{
		{name: "missing fd", r: rx(0), ae: ackError{Errno: unix.EINVAL, HasMiss: true, MissType: uapi.NETDEV_A_DMABUF_FD}, miss: "fd", wantAdvice: "bug in ncdevmem"},
		{name: "missing queue id", r: rx(0), ae: ackError{Errno: unix.EINVAL, HasMiss: true, MissType: uapi.NETDEV_A_QUEUE_ID, MissNest: 56}, miss: "queues[1].id", wantAdvice: "bug in ncdevmem"},
		{name: "queue type", r: rx(0), ae: ackError{Errno: unix.EINVAL, Offset: 68}, attr: "queues[1].type", wantAdvice: "only rx queues"},
		{name: "queue id out of range", r: rx(0), ae: ackError{Errno: unix.EINVAL, Offset: 60}, h: hints{rxQueues: 8}, attr: "queues[1].id", wantAdvice: "queue 15 out of range: lo has 8 RX queues; check ethtool -l lo"},
		{name: "queue id out of range, count unknown", r: rx(0), ae: ackError{Errno: unix.EINVAL, Offset: 40}, attr: "queues[0].id", wantAdvice: "queue 14 out of range: check ethtool -l lo"},
		{name: "page size not a power of 2", r: rx(12288), ae: ackError{Errno: unix.EINVAL, Message: "rx-page-size must be a power of 2", Offset: 76}, attr: "rx-page-size", wantAdvice: "-b/--rx-page-size"},
		{name: "page size on a kernel without it", r: rx(16384), ae: ackError{Errno: unix.EINVAL, Message: "Unknown attribute type", Offset: 76}, attr: "rx-page-size", wantAdvice: "arrived in Linux 7.3"},
		{name: "page size below PAGE_SIZE", r: rx(1024), ae: ackError{Errno: unix.ERANGE, Message: "integer out of range", Offset: 76}, attr: "rx-page-size", wantAdvice: "at least the page size"},
		{name: "no such device", r: rx(0), ae: ackError{Errno: unix.ENODEV}, wantAdvice: "network namespace", wantIs: os.ErrNotExist},
		{name: "driver without queue API", r: rx(0), ae: ackError{Errno: unix.EOPNOTSUPP, Offset: 20}, attr: "ifindex", wantAdvice: "queue management API", wantIs: errors.ErrUnsupported},
		{name: "multi-PF", r: rx(0), ae: ackError{Errno: unix.EOPNOTSUPP, Message: "DMA device mismatch between queue 14 and 15 (multi-PF device?)"}, wantAdvice: "one PF"},
		{name: "no DMA", r: rx(0), ae: ackError{Errno: unix.EOPNOTSUPP, Message: "Device doesn't support DMA"}, wantAdvice: "no DMA-capable parent device"},
		{name: "6.12 bad fd first", r: rx(0), ae: ackError{Errno: unix.EBADF}, wantAdvice: "fd 7 is not a dma-buf"},
		{name: "not a dma-buf", r: rx(0), ae: ackError{Errno: unix.EINVAL}, wantAdvice: "fd 7 is not a dma-buf"},
		{name: "attach", r: rx(0), ae: ackError{Errno: unix.EINVAL, Message: "Failed to bind dmabuf to device"}, wantAdvice: "cannot be attached"},
		{name: "map", r: rx(0), ae: ackError{Errno: unix.ENOMEM, Message: "Failed to map dmabuf attachment"}, wantAdvice: "cannot be attached"},
		{name: "size alignment", r: rx(0), ae: ackError{Errno: unix.EINVAL, Message: "dmabuf size 1000 not aligned to niov size 4096"}, wantAdvice: "multiple of the page"},
		{name: "sg alignment", r: rx(0), ae: ackError{Errno: unix.EINVAL, Message: "dmabuf sg entry (addr=0x1000, len=100) not aligned to niov size 16384"}, wantAdvice: "multiple of the page"},
		{name: "sg alignment, older", r: rx(0), ae: ackError{Errno: unix.EINVAL, Message: "dma-buf SG length must be PAGE_SIZE aligned"}, wantAdvice: "multiple of the page"},
		{name: "too many niovs", r: rx(0), ae: ackError{Errno: unix.E2BIG, Message: "dmabuf contains too many net_iovs"}, wantAdvice: "smaller dma-buf"},
		{name: "DMA address", r: rx(0), ae: ackError{Errno: unix.EFAULT, Message: "dmabuf DMA address cannot be represented"}, wantAdvice: "too wide"},
		{name: "no netmem TX", r: tx, ae: ackError{Errno: unix.EOPNOTSUPP, Message: "Driver does not support netmem TX"}, wantAdvice: "host-memory TX"},
		{name: "no TX DMA device", r: tx, ae: ackError{Errno: unix.EOPNOTSUPP, Message: "No DMA-capable device found for netmem TX"}, wantAdvice: "DMA-capable device for TX"},
		{name: "bind-tx driver refusal without text", r: tx, ae: ackError{Errno: unix.EOPNOTSUPP, Offset: 20}, attr: "ifindex", wantAdvice: "devmem TX"},
		{name: "no capability", r: rx(0), ae: ackError{Errno: unix.EPERM}, wantAdvice: "CAP_NET_ADMIN", wantIs: os.ErrPermission},
		{name: "rx queue index", r: rx(0), ae: ackError{Errno: unix.ERANGE, Message: "rx queue index out of range"}, wantAdvice: "queue 14 out of range"},
		{name: "leased", r: rx(0), ae: ackError{Errno: unix.EBUSY, Message: "rx queue leased to a virtual netdev"}, wantAdvice: "netkit"},
		{name: "peered, older", r: rx(0), ae: ackError{Errno: unix.EBUSY, Message: "rx queue peered to a virtual netdev"}, wantAdvice: "netkit"},
		{name: "belongs to virtual", r: rx(0), ae: ackError{Errno: unix.EOPNOTSUPP, Message: "rx queue belongs to a virtual netdev"}, wantAdvice: "physical NIC"},
		{name: "mapped to virtual, older", r: rx(0), ae: ackError{Errno: unix.EBUSY, Message: "rx queue is mapped to a virtual netdev"}, wantAdvice: "physical NIC"},
		{name: "header split off", r: rx(0), ae: ackError{Errno: unix.EINVAL, Message: "tcp-data-split is disabled"}, wantAdvice: "drop --no-setup (or -n) so ncdevmem sets it, or: ethtool -G lo tcp-data-split on"},
		{name: "hds-thresh", r: rx(0), ae: ackError{Errno: unix.EINVAL, Message: "hds-thresh is not zero"}, wantAdvice: "ethtool -G lo hds-thresh 0"},
		{name: "XDP", r: rx(0), ae: ackError{Errno: unix.EEXIST, Message: "unable to custom memory provider to device with XDP program attached"}, wantAdvice: "ip link set lo xdp off"},
		{name: "rx page size unsupported", r: rx(16384), ae: ackError{Errno: unix.EOPNOTSUPP, Message: "device does not support: rx_page_size"}, wantAdvice: "drop -b"},
		{name: "queue already bound", r: rx(0), ae: ackError{Errno: unix.EEXIST, Message: "designated queue already memory provider bound"}, wantAdvice: "io_uring"},
		{name: "AF_XDP", r: rx(0), ae: ackError{Errno: unix.EBUSY, Message: "designated queue already in use by AF_XDP"}, wantAdvice: "AF_XDP socket"},
		{name: "no queue restart", r: rx(0), ae: ackError{Errno: unix.EOPNOTSUPP}, wantAdvice: "cannot restart queues"},
		{name: "provider not taken", r: rx(0), ae: ackError{Errno: unix.ENODATA}, wantAdvice: "unreadable-netmem"},
		{name: "page order", r: rx(16384), ae: ackError{Errno: unix.E2BIG}, wantAdvice: "ignores the rx page size"},
		{name: "driver-specific validation keeps its words", r: rx(16384), ae: ackError{Errno: unix.EINVAL, Message: "rx-buf-len not supported"}, wantMessage: "rx-buf-len not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ae := tc.ae
			e := translate(tc.r, &ae, &tc.h)
			if e.Attr != tc.attr {
				t.Errorf("Attr = %q, want %q", e.Attr, tc.attr)
			}
			if e.MissingAttr != tc.miss {
				t.Errorf("MissingAttr = %q, want %q", e.MissingAttr, tc.miss)
			}
			if !strings.Contains(e.Advice, tc.wantAdvice) {
				t.Errorf("Advice = %q, want it to contain %q", e.Advice, tc.wantAdvice)
			}
			if tc.wantAdvice == "" && tc.wantMessage == "" {
				t.Fatal("row checks nothing")
			}
			s := e.Error()
			if !strings.HasPrefix(s, e.Op+" lo") || !strings.Contains(s, tc.wantMessage) {
				t.Errorf("Error() = %q", s)
			}
			if tc.ae.Message != "" && !strings.Contains(s, tc.ae.Message) {
				t.Errorf("Error() = %q lost the kernel's words %q", s, tc.ae.Message)
			}
			if !errors.Is(e, tc.ae.Errno) {
				t.Errorf("errors.Is(err, %v) = false", tc.ae.Errno)
			}
			if tc.wantIs != nil && !errors.Is(e, tc.wantIs) {
				t.Errorf("errors.Is(err, %v) = false", tc.wantIs)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	attrs, _ := encodeBindRX(RXRequest{Ifindex: 1, Queues: []uint32{14, 15}, DmabufFD: 7})
	r := &request{cmd: uapi.NETDEV_CMD_BIND_RX, ifindex: 1, queues: []uint32{14, 15}, fd: 7, attrs: attrs}
	got := translate(r, &ackError{Errno: unix.EINVAL, Message: "tcp-data-split is disabled"}, nil).Error()
	want := "bind-rx lo queues 14-15: tcp-data-split is disabled (drop --no-setup (or -n) so ncdevmem sets it, or: ethtool -G lo tcp-data-split on)"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = translate(r, &ackError{Errno: unix.EOPNOTSUPP, Offset: 20}, nil).Error()
	want = "bind-rx lo queues 14-15: operation not supported [attribute ifindex] (the driver of lo lacks the queue management API devmem RX needs; drivers with devmem RX: bnxt, bnge, gve, mlx5, fbnic)"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestAttrPath(t *testing.T) {
	attrs, _ := encodeBindRX(RXRequest{Ifindex: 1, Queues: []uint32{14, 15}, DmabufFD: 7, RxPageSize: 16384})
	for off, want := range map[int]string{
		0: "", 19: "", 20: "ifindex", 24: "ifindex", 28: "fd", 36: "queues[0]", 40: "queues[0].id",
		48: "queues[0].type", 56: "queues[1]", 60: "queues[1].id", 68: "queues[1].type", 76: "rx-page-size", 84: "",
	} {
		if got := attrName(uapi.NETDEV_CMD_BIND_RX, attrPath(attrs, off)); got != want {
			t.Errorf("offset %d: %q, want %q", off, got, want)
		}
	}
}
