// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind

import (
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// A Client queries the netdev family of the network namespace it was dialled in. Its methods are safe
// for concurrent use. Reading needs no privilege.
type Client struct {
	t   transport
	fam Family
}

// Family is the netdev family as the generic netlink controller describes it.
type Family struct {
	ID      uint16
	Version uint8
	Ops     []Op
	Groups  map[string]uint32 // multicast group name -> id ("mgmt", "page-pool")
}

// Op is one command the running kernel's netdev family implements.
type Op struct {
	Cmd   uint8
	Name  string // as in netdev.yaml; "cmd-N" for a command newer than this program
	Flags uint32 // GENL_ADMIN_PERM, GENL_CMD_CAP_DO, ... (include/uapi/linux/genetlink.h)
}

// Admin reports whether the op needs CAP_NET_ADMIN (in the initial user namespace for GENL_ADMIN_PERM,
// in the one owning the device's network namespace for GENL_UNS_ADMIN_PERM).
func (o Op) Admin() bool { return o.Flags&(unix.GENL_ADMIN_PERM|unix.GENL_UNS_ADMIN_PERM) != 0 }

// Do reports whether the op answers single requests.
func (o Op) Do() bool { return o.Flags&unix.GENL_CMD_CAP_DO != 0 }

// Dump reports whether the op answers dumps.
func (o Op) Dump() bool { return o.Flags&unix.GENL_CMD_CAP_DUMP != 0 }

// Dial opens a generic netlink socket in the calling thread's network namespace and resolves the
// netdev family and its op list once. A kernel without the family (before Linux 6.3) gives an error
// that answers errors.Is(err, os.ErrNotExist).
func Dial() (*Client, error) {
	sc, err := dialKernel()
	if err != nil {
		return nil, err
	}
	c, err := newClient(sc)
	if err != nil {
		sc.Close()
		return nil, err
	}
	return c, nil
}

// newClient resolves the family over t; tests pass a genltest connection.
func newClient(t transport) (*Client, error) {
	fam, err := resolveFamily(t)
	if err != nil {
		return nil, err
	}
	return &Client{t: t, fam: fam}, nil
}

// Close closes the client's socket.
func (c *Client) Close() error { return c.t.Close() }

// Family returns the resolved family, including the op list.
func (c *Client) Family() Family { return c.fam }

// Has reports whether the running kernel implements op ("bind-rx", "bind-tx", "napi-set",
// "page-pool-stats-get", "queue-create", ...). This is how features are detected: by presence, not
// by kernel version.
func (c *Client) Has(op string) bool { return c.fam.has(op) }

func (f Family) has(op string) bool {
	return slices.ContainsFunc(f.Ops, func(o Op) bool { return o.Name == op })
}

func (f Family) op(name string) (Op, bool) {
	i := slices.IndexFunc(f.Ops, func(o Op) bool { return o.Name == name })
	if i < 0 {
		return Op{}, false
	}
	return f.Ops[i], true
}

// resolveFamily asks the generic netlink controller for the netdev family.
func resolveFamily(t transport) (Family, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.CTRL_ATTR_FAMILY_NAME, uapi.NETDEV_FAMILY_NAME)
	b, err := ae.Encode()
	if err != nil {
		return Family{}, fmt.Errorf("resolve generic netlink family netdev: %w", err)
	}
	msgs, err := t.execute(genetlink.Message{
		Header: genetlink.Header{Command: unix.CTRL_CMD_GETFAMILY, Version: 1},
		Data:   b,
	}, unix.GENL_ID_CTRL, netlink.Request|netlink.Acknowledge)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return Family{}, fmt.Errorf("resolve generic netlink family netdev: the kernel has no netdev family (it needs Linux 6.3 or newer; devmem needs 6.12): %w", err)
		}
		return Family{}, fmt.Errorf("resolve generic netlink family netdev: %w", err)
	}
	if len(msgs) != 1 {
		return Family{}, fmt.Errorf("resolve generic netlink family netdev: %d replies, want 1", len(msgs))
	}
	fam, err := parseFamily(msgs[0].Data)
	if err != nil {
		return Family{}, fmt.Errorf("resolve generic netlink family netdev: %w", err)
	}
	if fam.ID == 0 {
		return Family{}, errors.New("resolve generic netlink family netdev: reply lacks CTRL_ATTR_FAMILY_ID")
	}
	return fam, nil
}

// parseFamily decodes a CTRL_CMD_GETFAMILY reply, keeping the op list mdlayher/genetlink drops.
func parseFamily(b []byte) (Family, error) {
	fam := Family{Groups: map[string]uint32{}}
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return Family{}, err
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.CTRL_ATTR_FAMILY_ID:
			fam.ID = ad.Uint16()
		case unix.CTRL_ATTR_VERSION:
			fam.Version = uint8(ad.Uint32())
		case unix.CTRL_ATTR_OPS:
			ad.Nested(func(list *netlink.AttributeDecoder) error {
				for list.Next() {
					var op Op
					var id uint32
					list.Nested(func(nad *netlink.AttributeDecoder) error {
						for nad.Next() {
							switch nad.Type() {
							case unix.CTRL_ATTR_OP_ID:
								id = nad.Uint32()
							case unix.CTRL_ATTR_OP_FLAGS:
								op.Flags = nad.Uint32()
							}
						}
						return nil
					})
					if id == 0 || id > 0xff {
						continue // not a netdev command number; nothing can ask for it
					}
					op.Cmd = uint8(id)
					op.Name = uapi.NetdevCmdNames[op.Cmd]
					if op.Name == "" {
						op.Name = fmt.Sprintf("cmd-%d", id)
					}
					fam.Ops = append(fam.Ops, op)
				}
				return nil
			})
		case unix.CTRL_ATTR_MCAST_GROUPS:
			ad.Nested(func(list *netlink.AttributeDecoder) error {
				for list.Next() {
					var name string
					var id uint32
					list.Nested(func(nad *netlink.AttributeDecoder) error {
						for nad.Next() {
							switch nad.Type() {
							case unix.CTRL_ATTR_MCAST_GRP_NAME:
								name = nad.String()
							case unix.CTRL_ATTR_MCAST_GRP_ID:
								id = nad.Uint32()
							}
						}
						return nil
					})
					if name != "" {
						fam.Groups[name] = id
					}
				}
				return nil
			})
		}
	}
	if err := ad.Err(); err != nil {
		return Family{}, err
	}
	return fam, nil
}

// request is one netdev command: what the caller asked for, kept to explain a refusal.
type request struct {
	cmd     uint8
	ifindex int      // 0 when the request is not about one device
	queues  []uint32 // bind-rx only
	fd      int      // bind-rx/bind-tx: the dma-buf fd; -1 otherwise
	attrs   []byte   // encoded attributes, to name the one an extack offset points at
}

func (r *request) opName() string { return uapi.NetdevCmdNames[r.cmd] }

// run sends r over t and turns a kernel refusal into an *Error. Dumps interrupted by a concurrent
// change are repeated a few times, as the kernel asks.
func run(t transport, fam Family, r *request, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	if _, ok := fam.op(r.opName()); !ok {
		return nil, missingOpError(r)
	}
	m := genetlink.Message{
		Header: genetlink.Header{Command: r.cmd, Version: fam.Version},
		Data:   r.attrs,
	}
	for attempt := 0; ; attempt++ {
		msgs, err := t.execute(m, fam.ID, netlink.Request|flags)
		if errors.Is(err, errDumpInterrupted) && attempt < 3 {
			continue
		}
		if err != nil {
			var ae *ackError
			if errors.As(err, &ae) {
				return nil, translate(r, ae, nil)
			}
			return nil, fmt.Errorf("%s%s: %w", r.opName(), ifaceSuffix(r.ifindex), err)
		}
		return msgs, nil
	}
}

// dump runs a dump of cmd filtered by the attributes enc writes.
func (c *Client) dump(cmd uint8, ifindex int, enc func(ae *netlink.AttributeEncoder)) ([]genetlink.Message, error) {
	r := &request{cmd: cmd, ifindex: ifindex, fd: -1}
	if enc != nil {
		ae := netlink.NewAttributeEncoder()
		enc(ae)
		b, err := ae.Encode()
		if err != nil {
			return nil, fmt.Errorf("%s: encode request: %w", r.opName(), err)
		}
		r.attrs = b
	}
	return run(c.t, c.fam, r, netlink.Dump)
}

func ifindexFilter(typ uint16, ifindex int) func(*netlink.AttributeEncoder) {
	return func(ae *netlink.AttributeEncoder) { ae.Uint32(typ, uint32(ifindex)) }
}

func checkIfindex(op string, ifindex int) error {
	if ifindex <= 0 {
		return fmt.Errorf("%s: ifindex %d: interface indexes start at 1", op, ifindex)
	}
	return nil
}

// Dev returns the netdev family's view of one device. An unknown ifindex answers
// errors.Is(err, os.ErrNotExist).
func (c *Client) Dev(ifindex int) (*Dev, error) {
	if err := checkIfindex("dev-get", ifindex); err != nil {
		return nil, err
	}
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(uapi.NETDEV_A_DEV_IFINDEX, uint32(ifindex))
	b, err := ae.Encode()
	if err != nil {
		return nil, fmt.Errorf("dev-get: encode request: %w", err)
	}
	msgs, err := run(c.t, c.fam, &request{cmd: uapi.NETDEV_CMD_DEV_GET, ifindex: ifindex, fd: -1, attrs: b}, netlink.Acknowledge)
	if err != nil {
		return nil, err
	}
	devs, err := parseDevs(msgs)
	if err != nil {
		return nil, err
	}
	if len(devs) != 1 {
		return nil, fmt.Errorf("dev-get%s: %d replies, want 1", ifaceSuffix(ifindex), len(devs))
	}
	return &devs[0], nil
}

// Devs returns every device in the namespace.
func (c *Client) Devs() ([]Dev, error) {
	msgs, err := c.dump(uapi.NETDEV_CMD_DEV_GET, 0, nil)
	if err != nil {
		return nil, err
	}
	return parseDevs(msgs)
}

// Queues returns the RX and TX queues of a device, each with its NAPI id and the memory provider
// holding it, if any. The kernel lists no queues (and no NAPIs) of a device that is down.
func (c *Client) Queues(ifindex int) ([]Queue, error) {
	if err := checkIfindex("queue-get", ifindex); err != nil {
		return nil, err
	}
	msgs, err := c.dump(uapi.NETDEV_CMD_QUEUE_GET, ifindex, ifindexFilter(uapi.NETDEV_A_QUEUE_IFINDEX, ifindex))
	if err != nil {
		return nil, err
	}
	return parseQueues(msgs)
}

// Napis returns the NAPI instances of a device (none for a fresh veth or lo).
func (c *Client) Napis(ifindex int) ([]Napi, error) {
	if err := checkIfindex("napi-get", ifindex); err != nil {
		return nil, err
	}
	msgs, err := c.dump(uapi.NETDEV_CMD_NAPI_GET, ifindex, ifindexFilter(uapi.NETDEV_A_NAPI_IFINDEX, ifindex))
	if err != nil {
		return nil, err
	}
	return parseNapis(msgs)
}

// QstatsQueues returns per-queue statistics of a device. A driver without queue statistics (veth,
// lo) gives an error that answers errors.Is(err, errors.ErrUnsupported).
func (c *Client) QstatsQueues(ifindex int) ([]Qstats, error) {
	if err := checkIfindex("qstats-get", ifindex); err != nil {
		return nil, err
	}
	msgs, err := c.dump(uapi.NETDEV_CMD_QSTATS_GET, ifindex, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(uapi.NETDEV_A_QSTATS_IFINDEX, uint32(ifindex))
		ae.Uint32(uapi.NETDEV_A_QSTATS_SCOPE, uapi.NETDEV_QSTATS_SCOPE_QUEUE)
	})
	if err != nil {
		return nil, err
	}
	return parseQstats(msgs)
}

// QstatsDev returns the device-wide statistics of a device. A driver without queue statistics gives
// an error that answers errors.Is(err, errors.ErrUnsupported).
func (c *Client) QstatsDev(ifindex int) (*Qstats, error) {
	if err := checkIfindex("qstats-get", ifindex); err != nil {
		return nil, err
	}
	msgs, err := c.dump(uapi.NETDEV_CMD_QSTATS_GET, ifindex, ifindexFilter(uapi.NETDEV_A_QSTATS_IFINDEX, ifindex))
	if err != nil {
		return nil, err
	}
	qs, err := parseQstats(msgs)
	if err != nil {
		return nil, err
	}
	// Kernels that do not refuse the filtered dump for a driver without statistics answer with no
	// reply for the device instead.
	for i := range qs {
		if qs[i].Ifindex == ifindex && !qs[i].PerQueue {
			return &qs[i], nil
		}
	}
	return nil, fmt.Errorf("qstats-get%s: the driver reports no queue statistics: %w", ifaceSuffix(ifindex), errors.ErrUnsupported)
}

// PagePools returns the page pools of a device (the kernel cannot filter this dump; pools of other
// devices are dropped here).
func (c *Client) PagePools(ifindex int) ([]PagePool, error) {
	if err := checkIfindex("page-pool-get", ifindex); err != nil {
		return nil, err
	}
	msgs, err := c.dump(uapi.NETDEV_CMD_PAGE_POOL_GET, ifindex, nil)
	if err != nil {
		return nil, err
	}
	pools, err := parsePagePools(msgs)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(pools, func(p PagePool) bool { return p.Ifindex != ifindex }), nil
}

// PagePoolStats returns the statistics of a device's page pools. Kernels built without
// CONFIG_PAGE_POOL_STATS lack the op; then the error answers errors.Is(err, errors.ErrUnsupported).
func (c *Client) PagePoolStats(ifindex int) ([]PagePoolStats, error) {
	if err := checkIfindex("page-pool-stats-get", ifindex); err != nil {
		return nil, err
	}
	msgs, err := c.dump(uapi.NETDEV_CMD_PAGE_POOL_STATS_GET, ifindex, nil)
	if err != nil {
		return nil, err
	}
	st, err := parsePagePoolStats(msgs)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(st, func(s PagePoolStats) bool { return s.Ifindex != ifindex }), nil
}

// missingOpError is the answer for an op the running kernel does not have; the kernel itself would
// say EOPNOTSUPP.
func missingOpError(r *request) *Error {
	e := &Error{Op: r.opName(), Ifindex: r.ifindex, Ifname: ifname(r.ifindex), Queues: r.queues, Errno: syscall.EOPNOTSUPP}
	switch r.cmd {
	case uapi.NETDEV_CMD_BIND_RX:
		e.Advice = "this kernel's netdev family has no bind-rx: devmem RX needs Linux 6.12 or newer"
	case uapi.NETDEV_CMD_BIND_TX:
		e.Advice = "this kernel's netdev family has no bind-tx: devmem TX needs Linux 6.15 or newer"
	case uapi.NETDEV_CMD_PAGE_POOL_STATS_GET:
		e.Advice = "this kernel has no page-pool-stats-get (built without CONFIG_PAGE_POOL_STATS)"
	default:
		e.Advice = fmt.Sprintf("this kernel's netdev family has no %s op", r.opName())
	}
	e.Message = "op not in the kernel's netdev op list"
	return e
}
