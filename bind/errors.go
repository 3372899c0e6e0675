// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Error is a netdev request the kernel refused. It keeps the kernel's errno and extended-ack words
// and adds advice. errors.Is(err, os.ErrPermission) holds for EPERM/EACCES, os.ErrNotExist for
// ENODEV/ENOENT, errors.ErrUnsupported for EOPNOTSUPP, and errors.Is(err, unix.EXXX) for the errno.
type Error struct {
	Op      string   // "bind-rx", "queue-get", ...
	Ifindex int      // 0 when the request was not about one device
	Ifname  string   // Ifindex's name when it could be found, else "ifindex N"
	Queues  []uint32 // bind-rx: the queues asked for
	Errno   syscall.Errno
	Message string // the kernel's extended-ack text, "" when it sent none
	Offset  int    // extended-ack byte offset into the request (from its nlmsghdr), 0 when none
	// Attr names the request attribute Offset points at, e.g. "ifindex" or "queues[1].id".
	Attr string
	// MissingAttr names the attribute the kernel said was missing (NLMSGERR_ATTR_MISS_TYPE, inside
	// the nest NLMSGERR_ATTR_MISS_NEST points at), e.g. "fd" or "queues[0].type"; "" when none.
	MissingAttr string
	Advice      string // what to do about it, naming the command that fixes it; "" when unknown
}

var _ error = (*Error)(nil)

// Error formats as "<op> <ifname> [queues <list>]: <kernel's words> (<advice>)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Ifname != "" {
		b.WriteString(" " + e.Ifname)
	}
	if len(e.Queues) > 0 {
		b.WriteString(" queues " + FormatQueues(e.Queues))
	}
	b.WriteString(": ")
	if e.Message != "" {
		b.WriteString(e.Message)
	} else {
		b.WriteString(e.Errno.Error())
	}
	if e.Attr != "" {
		b.WriteString(" [attribute " + e.Attr + "]")
	}
	if e.MissingAttr != "" {
		b.WriteString(" [missing attribute " + e.MissingAttr + "]")
	}
	if e.Advice != "" {
		b.WriteString(" (" + e.Advice + ")")
	}
	return b.String()
}

// Unwrap returns the errno.
func (e *Error) Unwrap() error { return e.Errno }

// Is maps errnos the Errno type itself does not to the os sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case os.ErrNotExist:
		return e.Errno == unix.ENODEV || e.Errno == unix.ENOENT
	case os.ErrPermission:
		return e.Errno == unix.EPERM || e.Errno == unix.EACCES
	}
	return false
}

// FormatQueues renders queue ids the way errors and reports show them: "14-15", "0,2,5-7".
func FormatQueues(qs []uint32) string {
	var b strings.Builder
	for i := 0; i < len(qs); {
		j := i
		for j+1 < len(qs) && qs[j+1] == qs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(qs[i]), 10))
		if j > i {
			b.WriteString("-" + strconv.FormatUint(uint64(qs[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}

// ifname names ifindex for messages, falling back to "ifindex N" when it is not (or no longer)
// visible from this thread's network namespace.
func ifname(ifindex int) string {
	if ifindex <= 0 {
		return ""
	}
	if ifi, err := net.InterfaceByIndex(ifindex); err == nil {
		return ifi.Name
	}
	return fmt.Sprintf("ifindex %d", ifindex)
}

func ifaceSuffix(ifindex int) string {
	if n := ifname(ifindex); n != "" {
		return " " + n
	}
	return ""
}

// hints are facts the translation can use beyond the ack itself; zero values mean unknown.
type hints struct {
	rxQueues int // real number of RX queues of the device, 0 when unknown
}

// attrStep is one level of a path to a request attribute: its type and, for multi-attrs such as
// bind-rx queues, which occurrence it is.
type attrStep struct {
	typ uint16
	nth int
}

// attrPath walks encoded request attributes to the one starting at byte off of the request
// (counted from the nlmsghdr, as the kernel counts), descending into nests that contain off.
func attrPath(attrs []byte, off int) []attrStep {
	rel := off - nlmsgHdrLen - genlHdrLen
	if rel < 0 {
		return nil
	}
	return walkAttrs(attrs, rel)
}

func walkAttrs(b []byte, rel int) []attrStep {
	seen := map[uint16]int{}
	pos := 0
	for pos+4 <= len(b) {
		l := int(binary.NativeEndian.Uint16(b[pos:]))
		typ := binary.NativeEndian.Uint16(b[pos+2:]) &^ (netlink.Nested | netlink.NetByteOrder)
		if l < 4 || pos+l > len(b) {
			return nil
		}
		step := attrStep{typ: typ, nth: seen[typ]}
		seen[typ]++
		switch {
		case rel == pos:
			return []attrStep{step}
		case rel >= pos+4 && rel < pos+l:
			inner := walkAttrs(b[pos+4:pos+l], rel-pos-4)
			if inner == nil {
				return []attrStep{step}
			}
			return append([]attrStep{step}, inner...)
		}
		pos += nlmsgAlign(l)
	}
	return nil
}

// attrName spells a path in the attribute set of cmd, e.g. "queues[1].id".
func attrName(cmd uint8, path []attrStep) string {
	if len(path) == 0 {
		return ""
	}
	var names map[uint16]string
	var nested map[uint16]string
	switch cmd {
	case uapi.NETDEV_CMD_BIND_RX, uapi.NETDEV_CMD_BIND_TX:
		names = map[uint16]string{
			uapi.NETDEV_A_DMABUF_IFINDEX:      "ifindex",
			uapi.NETDEV_A_DMABUF_QUEUES:       "queues",
			uapi.NETDEV_A_DMABUF_FD:           "fd",
			uapi.NETDEV_A_DMABUF_ID:           "id",
			uapi.NETDEV_A_DMABUF_RX_PAGE_SIZE: "rx-page-size",
		}
		nested = map[uint16]string{uapi.NETDEV_A_QUEUE_ID: "id", uapi.NETDEV_A_QUEUE_TYPE: "type"}
	case uapi.NETDEV_CMD_QUEUE_GET:
		names = map[uint16]string{uapi.NETDEV_A_QUEUE_IFINDEX: "ifindex", uapi.NETDEV_A_QUEUE_ID: "id", uapi.NETDEV_A_QUEUE_TYPE: "type"}
	case uapi.NETDEV_CMD_NAPI_GET:
		names = map[uint16]string{uapi.NETDEV_A_NAPI_IFINDEX: "ifindex", uapi.NETDEV_A_NAPI_ID: "id"}
	case uapi.NETDEV_CMD_QSTATS_GET:
		names = map[uint16]string{uapi.NETDEV_A_QSTATS_IFINDEX: "ifindex", uapi.NETDEV_A_QSTATS_SCOPE: "scope"}
	case uapi.NETDEV_CMD_DEV_GET:
		names = map[uint16]string{uapi.NETDEV_A_DEV_IFINDEX: "ifindex"}
	}
	name := func(m map[uint16]string, t uint16) string {
		if n, ok := m[t]; ok {
			return n
		}
		return fmt.Sprintf("attr%d", t)
	}
	s := name(names, path[0].typ)
	if cmd == uapi.NETDEV_CMD_BIND_RX && path[0].typ == uapi.NETDEV_A_DMABUF_QUEUES {
		s += fmt.Sprintf("[%d]", path[0].nth)
	}
	for _, st := range path[1:] {
		s += "." + name(nested, st.typ)
	}
	return s
}

// translate turns a kernel refusal of r into an *Error with advice. The rows follow the kernel's
// checks in net/core/netdev-genl.c, net/core/devmem.c and net/core/netdev_rx_queue.c (see
// devmem-uapi.md §5); where the same errno means different things the extack text or the attribute
// the kernel pointed at decides.
func translate(r *request, ae *ackError, h *hints) *Error {
	if h == nil {
		h = &hints{}
	}
	e := &Error{
		Op:      r.opName(),
		Ifindex: r.ifindex,
		Ifname:  ifname(r.ifindex),
		Queues:  r.queues,
		Errno:   ae.Errno,
		Message: ae.Message,
		Offset:  ae.Offset,
	}
	path := attrPath(r.attrs, ae.Offset)
	if ae.Offset != 0 {
		e.Attr = attrName(r.cmd, path)
	}
	if ae.HasMiss {
		var nestPath []attrStep
		if ae.MissNest != 0 {
			nestPath = attrPath(r.attrs, ae.MissNest)
		}
		e.MissingAttr = attrName(r.cmd, append(nestPath, attrStep{typ: ae.MissType}))
	}
	e.Advice = advise(r, e, path, h)
	return e
}

// The drivers whose devmem support advice names.
const (
	rxDrivers = "drivers with devmem RX: bnxt, bnge, gve, mlx5, fbnic"
	txDrivers = "drivers with devmem TX: bnxt, gve, mlx5, fbnic"
)

// advise returns the fix for a refused netdev request, or "" when it knows none.
func advise(r *request, e *Error, path []attrStep, h *hints) string {
	dev := e.Ifname
	if dev == "" {
		dev = "the device"
	}
	msg := strings.ToLower(e.Message)
	has := func(s string) bool { return strings.Contains(msg, s) }
	bind := r.cmd == uapi.NETDEV_CMD_BIND_RX || r.cmd == uapi.NETDEV_CMD_BIND_TX
	at := func(t uint16) bool { return len(path) > 0 && path[0].typ == t }
	atQueue := func(t uint16) (uint32, bool) {
		if len(path) == 2 && path[0].typ == uapi.NETDEV_A_DMABUF_QUEUES && path[1].typ == t && path[0].nth < len(r.queues) {
			return r.queues[path[0].nth], true
		}
		return 0, false
	}
	switch e.Errno {
	case unix.EPERM, unix.EACCES:
		return fmt.Sprintf("%s needs CAP_NET_ADMIN in the network namespace of %s: run as root or grant it (setcap cap_net_admin+ep ncdevmem)", e.Op, dev)
	case unix.ENODEV:
		return fmt.Sprintf("no device with ifindex %d in this network namespace: check -f and run in the namespace that holds the NIC", r.ifindex)
	}
	if !bind {
		switch {
		case e.Errno == unix.EOPNOTSUPP && r.cmd == uapi.NETDEV_CMD_QSTATS_GET:
			return fmt.Sprintf("the driver of %s keeps no queue statistics; counters come from ip -s link show %s instead", dev, dev)
		case e.Errno == unix.EOPNOTSUPP:
			return fmt.Sprintf("the kernel or the driver of %s does not implement %s", dev, e.Op)
		case e.MissingAttr != "" || has("unknown attribute"):
			return "the kernel's netdev family does not take this request's attributes: a bug in ncdevmem or a kernel older than the request assumes; please report it"
		}
		return ""
	}

	// A kernel older than an attribute refuses it under strict validation; the one optional
	// attribute ncdevmem sends is rx-page-size. Other missing or malformed attributes are ncdevmem's
	// fault.
	if at(uapi.NETDEV_A_DMABUF_RX_PAGE_SIZE) && has("unknown attribute") {
		return "this kernel's bind-rx takes no rx page size (it arrived in Linux 7.3): drop -b/--rx-page-size"
	}
	if e.MissingAttr != "" {
		return fmt.Sprintf("the kernel wants attribute %s, which ncdevmem did not send: a bug in ncdevmem, please report it", e.MissingAttr)
	}
	if q, ok := atQueue(uapi.NETDEV_A_QUEUE_ID); ok && e.Errno == unix.EINVAL {
		return queueRange(q, dev, h)
	}
	if _, ok := atQueue(uapi.NETDEV_A_QUEUE_TYPE); ok {
		return "the kernel refused the queue type (only rx queues can be bound): a bug in ncdevmem, please report it"
	}
	if advice := adviseExtack(r, e, h, dev, has, at); advice != "" {
		return advice
	}
	return adviseErrno(r, e, dev, at)
}

// adviseExtack is advise for a bind request whose extack message names the problem ("" if none
// does); has matches the lower-cased message, at the attribute the kernel pointed at.
func adviseExtack(r *request, e *Error, h *hints, dev string, has func(string) bool, at func(uint16) bool) string {
	switch {
	case has("rx queue index out of range"):
		return queueRange(firstQueue(r), dev, h)
	case has("tcp-data-split is disabled"):
		return fmt.Sprintf("drop --no-setup (or -n) so ncdevmem sets it, or: ethtool -G %s tcp-data-split on", dev)
	case has("hds-thresh is not zero"), has("hds_thresh"):
		return fmt.Sprintf("drop --no-setup (or -n) so ncdevmem sets it, or: ethtool -G %s hds-thresh 0", dev)
	case has("xdp program attached"), has("with xdp"):
		return fmt.Sprintf("detach the XDP program first: ip link set %s xdp off", dev)
	case has("already memory provider bound"):
		return fmt.Sprintf("another devmem or io_uring zero-copy user holds one of these queues; stop it or pick other queues: ncdevmem doctor -f %s shows which", dev)
	case has("in use by af_xdp"):
		return fmt.Sprintf("an AF_XDP socket uses one of these queues; close it or pick other queues: ncdevmem doctor -f %s shows which", dev)
	case has("leased to a virtual netdev"), has("peered to a virtual netdev"):
		return "the queue is leased to a virtual device (netkit): bind through that device, with -n"
	case has("belongs to a virtual netdev"), has("mapped to a virtual netdev"):
		return fmt.Sprintf("this queue of %s belongs to a virtual device: bind on the physical NIC that owns it", dev)
	case has("does not support: rx_page_size"):
		return fmt.Sprintf("the driver of %s cannot use a larger rx page size: drop -b/--rx-page-size", dev)
	case has("rx-page-size must be a power of 2"), e.Errno == unix.ERANGE && at(uapi.NETDEV_A_DMABUF_RX_PAGE_SIZE):
		return "fix -b/--rx-page-size: a power of two, at least the page size"
	case has("dma device mismatch"):
		return "these queues sit on different DMA devices (a multi-PF NIC?): bind queues of one PF only"
	case has("doesn't support dma"), has("no dma-capable device"):
		if r.cmd == uapi.NETDEV_CMD_BIND_TX {
			return fmt.Sprintf("%s has no DMA-capable device for TX: devmem TX needs a real NIC; %s", dev, txDrivers)
		}
		return fmt.Sprintf("%s has no DMA-capable parent device, as virtual devices do: devmem needs a real NIC; %s", dev, rxDrivers)
	case has("does not support netmem tx"):
		return fmt.Sprintf("the driver of %s cannot send from a dma-buf: use host-memory TX; %s", dev, txDrivers)
	case has("failed to bind dmabuf to device"), has("failed to map dmabuf attachment"):
		return fmt.Sprintf("the dma-buf cannot be attached to the DMA device of %s: IOMMU or PCIe peer-to-peer limits, or an exporter that refuses this device", dev)
	case has("not aligned to niov size"), has("sg length must be page_size aligned"):
		return "use a dma-buf size that is a multiple of the page (niov) size, or hugepage-backed memory for a large -b/--rx-page-size"
	case has("too many net_iovs"):
		return "use a smaller dma-buf or a larger -b/--rx-page-size"
	case has("cannot be represented"):
		return "this platform's DMA addresses are too wide for netmem; devmem cannot work here"
	}
	return ""
}

// adviseErrno is advise for a bind request by errno alone, when no extack message said more.
func adviseErrno(r *request, e *Error, dev string, at func(uint16) bool) string {
	switch e.Errno {
	case unix.EBADF:
		return fmt.Sprintf("fd %d is not a dma-buf: allocate one from udmabuf or a GPU; kernels up to 6.12 check the fd before the device, so this says nothing yet about %s", r.fd, dev)
	case unix.EOPNOTSUPP:
		if at(uapi.NETDEV_A_DMABUF_IFINDEX) {
			if r.cmd == uapi.NETDEV_CMD_BIND_TX {
				return fmt.Sprintf("the driver of %s does not support devmem TX; %s", dev, txDrivers)
			}
			return fmt.Sprintf("the driver of %s lacks the queue management API devmem RX needs; %s", dev, rxDrivers)
		}
		if r.cmd == uapi.NETDEV_CMD_BIND_TX {
			return fmt.Sprintf("the driver of %s does not support devmem TX; %s", dev, txDrivers)
		}
		return fmt.Sprintf("the driver of %s cannot restart queues with a memory provider; %s", dev, rxDrivers)
	case unix.ENODATA:
		return fmt.Sprintf("the driver of %s did not take the dma-buf for its new page pool: it lacks unreadable-netmem support, or header split is not really active; check ethtool -g %s", dev, dev)
	case unix.E2BIG:
		return fmt.Sprintf("the driver of %s ignores the rx page size: drop -b/--rx-page-size", dev)
	case unix.EEXIST, unix.EBUSY:
		return fmt.Sprintf("one of these queues is already in use: ncdevmem doctor -f %s shows which", dev)
	case unix.EINVAL:
		if at(uapi.NETDEV_A_DMABUF_FD) {
			return fmt.Sprintf("fd %d is not a dma-buf the kernel accepts: allocate one from udmabuf or a GPU", r.fd)
		}
		if e.Offset == 0 && e.Message == "" {
			// A bare EINVAL: the fd, or (kernels before 6.14 check no header split themselves) the
			// driver refusing to restart the queue with the memory provider, as softnic and NICs do
			// when header split is off.
			return fmt.Sprintf("fd %d is not a dma-buf the kernel accepts (allocate one from udmabuf or a GPU), or the driver of %s refused the queue: check that header split is on (ethtool -g %s; ethtool -G %s tcp-data-split on)", r.fd, dev, dev, dev)
		}
	}
	return ""
}

func queueRange(q uint32, dev string, h *hints) string {
	if h.rxQueues > 0 {
		return fmt.Sprintf("queue %d out of range: %s has %d RX queues; check ethtool -l %s", q, dev, h.rxQueues, dev)
	}
	return fmt.Sprintf("queue %d out of range: check ethtool -l %s", q, dev)
}

func firstQueue(r *request) uint32 {
	if len(r.queues) == 0 {
		return 0
	}
	return r.queues[0]
}

// needsQueueCount reports whether the advice for ae would name the device's RX queue count.
func needsQueueCount(r *request, ae *ackError) bool {
	if r.cmd != uapi.NETDEV_CMD_BIND_RX {
		return false
	}
	path := attrPath(r.attrs, ae.Offset)
	inQueue := len(path) == 2 && path[0].typ == uapi.NETDEV_A_DMABUF_QUEUES && path[1].typ == uapi.NETDEV_A_QUEUE_ID
	return inQueue && ae.Errno == unix.EINVAL || strings.Contains(ae.Message, "out of range")
}

// errorsAsAck extracts the kernel refusal from err.
func errorsAsAck(err error) (*ackError, bool) {
	var ae *ackError
	ok := errors.As(err, &ae)
	return ae, ok
}
