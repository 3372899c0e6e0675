// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// A Binding is a dma-buf bound to a device for devmem RX (to some of its RX queues) or TX. It owns
// the netlink socket that created it: the kernel keeps the binding exactly as long as that socket is
// open, and unbinds (restarting the queues without the dma-buf) when it closes, also when the
// process dies. Keep the *Binding reachable for as long as the binding is needed: like any
// *os.File, its socket is closed when the garbage collector finds it unreachable.
type Binding struct {
	mu      sync.Mutex
	t       transport
	op      string
	id      uint32
	ifindex int
	queues  []uint32
}

// ID returns the binding id the kernel assigned; devmem cmsgs (dmabuf_cmsg.dmabuf_id) and the TX
// cmsg carry it.
func (b *Binding) ID() uint32 { return b.id }

// Ifindex returns the bound device.
func (b *Binding) Ifindex() int { return b.ifindex }

// Queues returns the bound RX queues (nil for a TX binding).
func (b *Binding) Queues() []uint32 { return slices.Clone(b.queues) }

// Close unbinds by closing the binding's netlink socket. It is safe to call more than once.
func (b *Binding) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.t == nil {
		return nil
	}
	err := b.t.Close()
	b.t = nil
	if err != nil {
		return fmt.Errorf("%s%s: unbind dma-buf %d: %w", b.op, ifaceSuffix(b.ifindex), b.id, err)
	}
	return nil
}

// RXRequest is a bind-rx request.
type RXRequest struct {
	Ifindex  int
	Queues   []uint32 // RX queue ids, each bound to the dma-buf
	DmabufFD int
	// RxPageSize asks for net_iov buffers of this many bytes (a power of two, at least the page
	// size; needs a kernel whose bind-rx takes NETDEV_A_DMABUF_RX_PAGE_SIZE and a driver that
	// supports it). 0 leaves the kernel's default, the page size.
	RxPageSize uint32
}

// BindRX binds the dma-buf behind dmabufFD to RX queues of device ifindex over a netlink socket of
// its own, in the calling thread's network namespace. It needs CAP_NET_ADMIN (else the error answers
// errors.Is(err, os.ErrPermission)); every refusal is an *Error with advice.
func BindRX(ifindex int, queues []uint32, dmabufFD int) (*Binding, error) {
	return BindRXWith(RXRequest{Ifindex: ifindex, Queues: queues, DmabufFD: dmabufFD})
}

// BindRXWith is BindRX with every option of the request.
func BindRXWith(req RXRequest) (*Binding, error) {
	return bindRX(dialTransport, req)
}

// BindTX binds the dma-buf behind dmabufFD to device ifindex for devmem TX (Linux 6.15+), over a
// netlink socket of its own. Unlike bind-rx, the kernel's bind-tx op carries no admin-perm flag
// (netdev.yaml; the op list Dial reads says so per kernel), so it does not need CAP_NET_ADMIN;
// other refusals are *Error values with advice, as for BindRX.
func BindTX(ifindex int, dmabufFD int) (*Binding, error) {
	return bindTX(dialTransport, ifindex, dmabufFD)
}

func dialTransport() (transport, error) { return dialKernel() }

func encodeBindRX(req RXRequest) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(uapi.NETDEV_A_DMABUF_IFINDEX, uint32(req.Ifindex))
	ae.Uint32(uapi.NETDEV_A_DMABUF_FD, uint32(req.DmabufFD))
	for _, q := range req.Queues {
		// Nested sets NLA_F_NESTED, which genl strict validation demands.
		ae.Nested(uapi.NETDEV_A_DMABUF_QUEUES, func(nae *netlink.AttributeEncoder) error {
			nae.Uint32(uapi.NETDEV_A_QUEUE_ID, q)
			nae.Uint32(uapi.NETDEV_A_QUEUE_TYPE, uapi.NETDEV_QUEUE_TYPE_RX)
			return nil
		})
	}
	if req.RxPageSize != 0 {
		ae.Uint32(uapi.NETDEV_A_DMABUF_RX_PAGE_SIZE, req.RxPageSize)
	}
	return ae.Encode()
}

func encodeBindTX(ifindex, fd int) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(uapi.NETDEV_A_DMABUF_IFINDEX, uint32(ifindex))
	ae.Uint32(uapi.NETDEV_A_DMABUF_FD, uint32(fd))
	return ae.Encode()
}

func bindRX(dial func() (transport, error), req RXRequest) (*Binding, error) {
	const op = "bind-rx"
	if err := checkIfindex(op, req.Ifindex); err != nil {
		return nil, err
	}
	where := ifaceSuffix(req.Ifindex)
	if len(req.Queues) == 0 {
		return nil, fmt.Errorf("%s%s: no queues given: name at least one RX queue", op, where)
	}
	sorted := slices.Sorted(slices.Values(req.Queues))
	if len(slices.Compact(sorted)) != len(req.Queues) {
		return nil, fmt.Errorf("%s%s queues %s: a queue is listed twice", op, where, FormatQueues(req.Queues))
	}
	if req.DmabufFD < 0 {
		return nil, fmt.Errorf("%s%s: dma-buf fd %d is not an open file", op, where, req.DmabufFD)
	}
	if p := req.RxPageSize; p != 0 && p&(p-1) != 0 {
		return nil, fmt.Errorf("%s%s: rx page size %d is not a power of two", op, where, p)
	}
	attrs, err := encodeBindRX(req)
	if err != nil {
		return nil, fmt.Errorf("%s%s: encode request: %w", op, where, err)
	}
	r := &request{cmd: uapi.NETDEV_CMD_BIND_RX, ifindex: req.Ifindex, queues: slices.Clone(req.Queues), fd: req.DmabufFD, attrs: attrs}
	return doBind(dial, r)
}

func bindTX(dial func() (transport, error), ifindex, fd int) (*Binding, error) {
	const op = "bind-tx"
	if err := checkIfindex(op, ifindex); err != nil {
		return nil, err
	}
	if fd < 0 {
		return nil, fmt.Errorf("%s%s: dma-buf fd %d is not an open file", op, ifaceSuffix(ifindex), fd)
	}
	attrs, err := encodeBindTX(ifindex, fd)
	if err != nil {
		return nil, fmt.Errorf("%s%s: encode request: %w", op, ifaceSuffix(ifindex), err)
	}
	return doBind(dial, &request{cmd: uapi.NETDEV_CMD_BIND_TX, ifindex: ifindex, fd: fd, attrs: attrs})
}

// doBind opens the socket the binding will own, resolves the family on it and sends the request. On
// any failure the socket is closed, so nothing stays bound.
func doBind(dial func() (transport, error), r *request) (b *Binding, err error) {
	t, err := dial()
	if err != nil {
		return nil, fmt.Errorf("%s%s: %w", r.opName(), ifaceSuffix(r.ifindex), err)
	}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	fam, err := resolveFamily(t)
	if err != nil {
		return nil, fmt.Errorf("%s%s: %w", r.opName(), ifaceSuffix(r.ifindex), err)
	}
	if _, ok := fam.op(r.opName()); !ok {
		return nil, missingOpError(r)
	}
	msgs, err := t.execute(genetlink.Message{
		Header: genetlink.Header{Command: r.cmd, Version: fam.Version},
		Data:   r.attrs,
	}, fam.ID, netlink.Request|netlink.Acknowledge)
	if err != nil {
		if ae, ok := errorsAsAck(err); ok {
			h := &hints{}
			if needsQueueCount(r, ae) {
				h.rxQueues = countRX(t, fam, r.ifindex)
			}
			return nil, translate(r, ae, h)
		}
		return nil, fmt.Errorf("%s%s: %w", r.opName(), ifaceSuffix(r.ifindex), err)
	}
	id, err := parseBindReply(msgs)
	if err != nil {
		return nil, fmt.Errorf("%s%s: %w", r.opName(), ifaceSuffix(r.ifindex), err)
	}
	return &Binding{t: t, op: r.opName(), id: id, ifindex: r.ifindex, queues: r.queues}, nil
}

// countRX counts the device's RX queues for an out-of-range message; 0 when that fails too.
func countRX(t transport, fam Family, ifindex int) int {
	c := &Client{t: t, fam: fam}
	qs, err := c.Queues(ifindex)
	if err != nil {
		return 0
	}
	n := 0
	for _, q := range qs {
		if q.Type == QueueRX {
			n++
		}
	}
	return n
}

var errNoBindID = errors.New("reply lacks NETDEV_A_DMABUF_ID")

func parseBindReply(msgs []genetlink.Message) (uint32, error) {
	if len(msgs) != 1 {
		return 0, fmt.Errorf("%d replies, want 1", len(msgs))
	}
	ad, err := netlink.NewAttributeDecoder(msgs[0].Data)
	if err != nil {
		return 0, fmt.Errorf("decode reply: %w", err)
	}
	var id uint32
	for ad.Next() {
		if ad.Type() == uapi.NETDEV_A_DMABUF_ID {
			id = ad.Uint32()
		}
	}
	if err := ad.Err(); err != nil {
		return 0, fmt.Errorf("decode reply: %w", err)
	}
	if id == 0 {
		return 0, errNoBindID
	}
	return id, nil
}
