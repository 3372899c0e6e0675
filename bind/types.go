// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// Dev is one netdev-get reply: what XDP and AF_XDP features a device offers.
type Dev struct {
	Ifindex               int
	XDPFeatures           uint64 // enum netdev_xdp_act bits
	XDPZCMaxSegs          uint32 // most buffers an AF_XDP zero-copy frame may span
	XDPRxMetadataFeatures uint64 // enum netdev_xdp_rx_metadata bits
	XSKFeatures           uint64 // enum netdev_xsk_flags bits
}

// QueueType says whether a queue receives or sends.
type QueueType uint32

// Queue types (enum netdev_queue_type).
const (
	QueueRX QueueType = uapi.NETDEV_QUEUE_TYPE_RX
	QueueTX QueueType = uapi.NETDEV_QUEUE_TYPE_TX
)

func (t QueueType) String() string {
	switch t {
	case QueueRX:
		return "rx"
	case QueueTX:
		return "tx"
	}
	return fmt.Sprintf("queue-type-%d", uint32(t))
}

// Queue is one queue-get reply. A queue is held by a memory provider when Dmabuf is non-zero (a
// devmem binding) or IOUring is true (io_uring zero-copy receive); such a queue cannot be bound again.
type Queue struct {
	ID      uint32
	Ifindex int
	Type    QueueType
	NapiID  uint32 // 0 when the queue has no NAPI instance (veth before GRO is on, lo)
	Dmabuf  uint32 // id of the dma-buf binding holding the queue, 0 for none
	IOUring bool   // an io_uring zero-copy receive area holds the queue
	XSK     bool   // an AF_XDP socket uses the queue
	Lease   *Lease // the queue is leased to or from another device (netkit, about Linux 7.0)
}

// Held reports whether a memory provider (devmem or io_uring) already holds the queue.
func (q Queue) Held() bool { return q.Dmabuf != 0 || q.IOUring }

// Lease describes the other end of a leased queue.
type Lease struct {
	Ifindex   int
	QueueID   uint32
	QueueType QueueType
	NetnsID   int32 // -1 or absent when the device is in the same namespace
}

// Napi is one napi-get reply.
type Napi struct {
	ID                uint32
	Ifindex           int
	IRQ               uint32 // 0 when the instance has no IRQ
	PID               uint32 // the threaded-NAPI kthread, 0 when not threaded
	DeferHardIRQs     uint32
	GROFlushTimeout   uint64 // ns
	IRQSuspendTimeout uint64 // ns
	Threaded          uint32 // enum netdev_napi_threaded, 0 when absent
}

// Qstats is one qstats-get reply: counters of one queue (Scope queue) or a whole device. Only the
// counters the driver reports are present.
type Qstats struct {
	Ifindex   int
	PerQueue  bool      // the reply is for one queue: QueueType and QueueID are valid
	QueueType QueueType // valid when PerQueue
	QueueID   uint32    // valid when PerQueue
	vals      [uapi.NETDEV_A_QSTATS_TX_WAKE + 1]uint64
	has       uint64 // bit per attribute type in vals
}

// qstatsNames names each counter attribute as Documentation/netlink/specs/netdev.yaml does.
var qstatsNames = map[uint16]string{
	uapi.NETDEV_A_QSTATS_RX_PACKETS:             "rx-packets",
	uapi.NETDEV_A_QSTATS_RX_BYTES:               "rx-bytes",
	uapi.NETDEV_A_QSTATS_TX_PACKETS:             "tx-packets",
	uapi.NETDEV_A_QSTATS_TX_BYTES:               "tx-bytes",
	uapi.NETDEV_A_QSTATS_RX_ALLOC_FAIL:          "rx-alloc-fail",
	uapi.NETDEV_A_QSTATS_RX_HW_DROPS:            "rx-hw-drops",
	uapi.NETDEV_A_QSTATS_RX_HW_DROP_OVERRUNS:    "rx-hw-drop-overruns",
	uapi.NETDEV_A_QSTATS_RX_CSUM_COMPLETE:       "rx-csum-complete",
	uapi.NETDEV_A_QSTATS_RX_CSUM_UNNECESSARY:    "rx-csum-unnecessary",
	uapi.NETDEV_A_QSTATS_RX_CSUM_NONE:           "rx-csum-none",
	uapi.NETDEV_A_QSTATS_RX_CSUM_BAD:            "rx-csum-bad",
	uapi.NETDEV_A_QSTATS_RX_HW_GRO_PACKETS:      "rx-hw-gro-packets",
	uapi.NETDEV_A_QSTATS_RX_HW_GRO_BYTES:        "rx-hw-gro-bytes",
	uapi.NETDEV_A_QSTATS_RX_HW_GRO_WIRE_PACKETS: "rx-hw-gro-wire-packets",
	uapi.NETDEV_A_QSTATS_RX_HW_GRO_WIRE_BYTES:   "rx-hw-gro-wire-bytes",
	uapi.NETDEV_A_QSTATS_RX_HW_DROP_RATELIMITS:  "rx-hw-drop-ratelimits",
	uapi.NETDEV_A_QSTATS_TX_HW_DROPS:            "tx-hw-drops",
	uapi.NETDEV_A_QSTATS_TX_HW_DROP_ERRORS:      "tx-hw-drop-errors",
	uapi.NETDEV_A_QSTATS_TX_CSUM_NONE:           "tx-csum-none",
	uapi.NETDEV_A_QSTATS_TX_NEEDS_CSUM:          "tx-needs-csum",
	uapi.NETDEV_A_QSTATS_TX_HW_GSO_PACKETS:      "tx-hw-gso-packets",
	uapi.NETDEV_A_QSTATS_TX_HW_GSO_BYTES:        "tx-hw-gso-bytes",
	uapi.NETDEV_A_QSTATS_TX_HW_GSO_WIRE_PACKETS: "tx-hw-gso-wire-packets",
	uapi.NETDEV_A_QSTATS_TX_HW_GSO_WIRE_BYTES:   "tx-hw-gso-wire-bytes",
	uapi.NETDEV_A_QSTATS_TX_HW_DROP_RATELIMITS:  "tx-hw-drop-ratelimits",
	uapi.NETDEV_A_QSTATS_TX_STOP:                "tx-stop",
	uapi.NETDEV_A_QSTATS_TX_WAKE:                "tx-wake",
}

// Get returns the counter named as in netdev.yaml ("rx-bytes", "rx-alloc-fail", ...) and whether
// the driver reported it.
func (q *Qstats) Get(name string) (uint64, bool) {
	return counterGet(qstatsNames, q.vals[:], q.has, name)
}

// Map returns every counter the driver reported, by netdev.yaml name, for diffing two samples.
func (q *Qstats) Map() map[string]uint64 { return counterMap(qstatsNames, q.vals[:], q.has) }

// Names returns the names of the counters present, sorted.
func (q *Qstats) Names() []string { return slices.Sorted(maps.Keys(q.Map())) }

// PagePool is one page-pool-get reply. A pool whose Dmabuf is non-zero takes its buffers from that
// devmem binding; that is how to see that a driver adopted the memory provider.
type PagePool struct {
	ID          uint64
	Ifindex     int // 0 when the pool's device is gone or in another namespace
	NapiID      uint64
	Inflight    uint64 // buffers handed out and not yet returned
	InflightMem uint64 // bytes of memory those buffers pin
	DetachTime  uint64 // seconds (CLOCK_BOOTTIME) since the device let the pool go; 0 while attached
	Dmabuf      uint32
	IOUring     bool
}

// PagePoolStats is one page-pool-stats-get reply (needs CONFIG_PAGE_POOL_STATS). Counters are
// cumulative since the pool was created.
type PagePoolStats struct {
	PoolID  uint64
	Ifindex int
	vals    [uapi.NETDEV_A_PAGE_POOL_STATS_RECYCLE_RELEASED_REFCNT + 1]uint64
	has     uint32
}

var pagePoolStatsNames = map[uint16]string{
	uapi.NETDEV_A_PAGE_POOL_STATS_ALLOC_FAST:              "alloc-fast",
	uapi.NETDEV_A_PAGE_POOL_STATS_ALLOC_SLOW:              "alloc-slow",
	uapi.NETDEV_A_PAGE_POOL_STATS_ALLOC_SLOW_HIGH_ORDER:   "alloc-slow-high-order",
	uapi.NETDEV_A_PAGE_POOL_STATS_ALLOC_EMPTY:             "alloc-empty",
	uapi.NETDEV_A_PAGE_POOL_STATS_ALLOC_REFILL:            "alloc-refill",
	uapi.NETDEV_A_PAGE_POOL_STATS_ALLOC_WAIVE:             "alloc-waive",
	uapi.NETDEV_A_PAGE_POOL_STATS_RECYCLE_CACHED:          "recycle-cached",
	uapi.NETDEV_A_PAGE_POOL_STATS_RECYCLE_CACHE_FULL:      "recycle-cache-full",
	uapi.NETDEV_A_PAGE_POOL_STATS_RECYCLE_RING:            "recycle-ring",
	uapi.NETDEV_A_PAGE_POOL_STATS_RECYCLE_RING_FULL:       "recycle-ring-full",
	uapi.NETDEV_A_PAGE_POOL_STATS_RECYCLE_RELEASED_REFCNT: "recycle-released-refcnt",
}

// Get returns the counter named as in netdev.yaml ("alloc-fast", "recycle-ring", ...).
func (s *PagePoolStats) Get(name string) (uint64, bool) {
	return counterGet(pagePoolStatsNames, s.vals[:], uint64(s.has), name)
}

// Map returns every counter reported, by netdev.yaml name.
func (s *PagePoolStats) Map() map[string]uint64 {
	return counterMap(pagePoolStatsNames, s.vals[:], uint64(s.has))
}

// counterGet returns the counter of attribute type t with names[t] == name, if has (a bit per
// type) says the kernel reported it.
func counterGet(names map[uint16]string, vals []uint64, has uint64, name string) (uint64, bool) {
	for t, n := range names {
		if n == name && has&(1<<t) != 0 {
			return vals[t], true
		}
	}
	return 0, false
}

// counterMap returns every counter has says the kernel reported, by name.
func counterMap(names map[uint16]string, vals []uint64, has uint64) map[string]uint64 {
	m := make(map[string]uint64, len(names))
	for t, n := range names {
		if has&(1<<t) != 0 {
			m[n] = vals[t]
		}
	}
	return m
}

// QueueOfNapi returns the id of the RX queue served by NAPI instance napiID, the way to map
// SO_INCOMING_NAPI_ID of a socket to the queue its packets arrive on.
func QueueOfNapi(queues []Queue, napiID uint32) (uint32, bool) {
	if napiID == 0 {
		return 0, false
	}
	for _, q := range queues {
		if q.Type == QueueRX && q.NapiID == napiID {
			return q.ID, true
		}
	}
	return 0, false
}

// Decoders. Each skips attribute types it does not know, so a newer kernel's additions pass, and
// reads the kernel's auto-sized "uint" attributes (4 or 8 bytes) with readUint.

// readUint reads a netlink "uint" (NLA_UINT): 4 bytes when the value fits, 8 otherwise.
func readUint(ad *netlink.AttributeDecoder) uint64 {
	var v uint64
	ad.Do(func(b []byte) error {
		switch len(b) {
		case 4:
			v = uint64(binary.NativeEndian.Uint32(b))
		case 8:
			v = binary.NativeEndian.Uint64(b)
		default:
			return fmt.Errorf("uint attribute %d has %d bytes, want 4 or 8", ad.Type(), len(b))
		}
		return nil
	})
	return v
}

func readIfindex(ad *netlink.AttributeDecoder) int { return int(ad.Uint32()) }

func decodeEach[T any](msgs []genetlink.Message, what string, parse func(*netlink.AttributeDecoder, *T)) ([]T, error) {
	out := make([]T, 0, len(msgs))
	for i, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return nil, fmt.Errorf("decode %s reply %d: %w", what, i, err)
		}
		var v T
		parse(ad, &v)
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("decode %s reply %d: %w", what, i, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseDevs(msgs []genetlink.Message) ([]Dev, error) {
	return decodeEach(msgs, "dev-get", func(ad *netlink.AttributeDecoder, d *Dev) {
		for ad.Next() {
			switch ad.Type() {
			case uapi.NETDEV_A_DEV_IFINDEX:
				d.Ifindex = readIfindex(ad)
			case uapi.NETDEV_A_DEV_XDP_FEATURES:
				d.XDPFeatures = readUint(ad)
			case uapi.NETDEV_A_DEV_XDP_ZC_MAX_SEGS:
				d.XDPZCMaxSegs = ad.Uint32()
			case uapi.NETDEV_A_DEV_XDP_RX_METADATA_FEATURES:
				d.XDPRxMetadataFeatures = readUint(ad)
			case uapi.NETDEV_A_DEV_XSK_FEATURES:
				d.XSKFeatures = readUint(ad)
			}
		}
	})
}

func parseQueues(msgs []genetlink.Message) ([]Queue, error) {
	return decodeEach(msgs, "queue-get", func(ad *netlink.AttributeDecoder, q *Queue) {
		for ad.Next() {
			switch ad.Type() {
			case uapi.NETDEV_A_QUEUE_ID:
				q.ID = ad.Uint32()
			case uapi.NETDEV_A_QUEUE_IFINDEX:
				q.Ifindex = readIfindex(ad)
			case uapi.NETDEV_A_QUEUE_TYPE:
				q.Type = QueueType(ad.Uint32())
			case uapi.NETDEV_A_QUEUE_NAPI_ID:
				q.NapiID = ad.Uint32()
			case uapi.NETDEV_A_QUEUE_DMABUF:
				q.Dmabuf = ad.Uint32()
			case uapi.NETDEV_A_QUEUE_IO_URING:
				q.IOUring = true
			case uapi.NETDEV_A_QUEUE_XSK:
				q.XSK = true
			case uapi.NETDEV_A_QUEUE_LEASE:
				l := &Lease{NetnsID: -1}
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					parseLease(nad, l)
					return nil
				})
				q.Lease = l
			}
		}
	})
}

func parseLease(ad *netlink.AttributeDecoder, l *Lease) {
	for ad.Next() {
		switch ad.Type() {
		case uapi.NETDEV_A_LEASE_IFINDEX:
			l.Ifindex = readIfindex(ad)
		case uapi.NETDEV_A_LEASE_QUEUE:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					switch nad.Type() {
					case uapi.NETDEV_A_QUEUE_ID:
						l.QueueID = nad.Uint32()
					case uapi.NETDEV_A_QUEUE_TYPE:
						l.QueueType = QueueType(nad.Uint32())
					}
				}
				return nil
			})
		case uapi.NETDEV_A_LEASE_NETNS_ID:
			l.NetnsID = ad.Int32()
		}
	}
}

func parseNapis(msgs []genetlink.Message) ([]Napi, error) {
	return decodeEach(msgs, "napi-get", func(ad *netlink.AttributeDecoder, n *Napi) {
		for ad.Next() {
			switch ad.Type() {
			case uapi.NETDEV_A_NAPI_IFINDEX:
				n.Ifindex = readIfindex(ad)
			case uapi.NETDEV_A_NAPI_ID:
				n.ID = ad.Uint32()
			case uapi.NETDEV_A_NAPI_IRQ:
				n.IRQ = ad.Uint32()
			case uapi.NETDEV_A_NAPI_PID:
				n.PID = ad.Uint32()
			case uapi.NETDEV_A_NAPI_DEFER_HARD_IRQS:
				n.DeferHardIRQs = ad.Uint32()
			case uapi.NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT:
				n.GROFlushTimeout = readUint(ad)
			case uapi.NETDEV_A_NAPI_IRQ_SUSPEND_TIMEOUT:
				n.IRQSuspendTimeout = readUint(ad)
			case uapi.NETDEV_A_NAPI_THREADED:
				n.Threaded = ad.Uint32()
			}
		}
	})
}

func parseQstats(msgs []genetlink.Message) ([]Qstats, error) {
	return decodeEach(msgs, "qstats-get", func(ad *netlink.AttributeDecoder, q *Qstats) {
		for ad.Next() {
			t := ad.Type()
			switch {
			case t == uapi.NETDEV_A_QSTATS_IFINDEX:
				q.Ifindex = readIfindex(ad)
			case t == uapi.NETDEV_A_QSTATS_QUEUE_TYPE:
				q.QueueType, q.PerQueue = QueueType(ad.Uint32()), true
			case t == uapi.NETDEV_A_QSTATS_QUEUE_ID:
				q.QueueID, q.PerQueue = ad.Uint32(), true
			case t >= uapi.NETDEV_A_QSTATS_RX_PACKETS && t <= uapi.NETDEV_A_QSTATS_TX_WAKE:
				q.vals[t] = readUint(ad)
				q.has |= 1 << t
			}
		}
	})
}

func parsePagePools(msgs []genetlink.Message) ([]PagePool, error) {
	return decodeEach(msgs, "page-pool-get", func(ad *netlink.AttributeDecoder, p *PagePool) {
		for ad.Next() {
			switch ad.Type() {
			case uapi.NETDEV_A_PAGE_POOL_ID:
				p.ID = readUint(ad)
			case uapi.NETDEV_A_PAGE_POOL_IFINDEX:
				p.Ifindex = readIfindex(ad)
			case uapi.NETDEV_A_PAGE_POOL_NAPI_ID:
				p.NapiID = readUint(ad)
			case uapi.NETDEV_A_PAGE_POOL_INFLIGHT:
				p.Inflight = readUint(ad)
			case uapi.NETDEV_A_PAGE_POOL_INFLIGHT_MEM:
				p.InflightMem = readUint(ad)
			case uapi.NETDEV_A_PAGE_POOL_DETACH_TIME:
				p.DetachTime = readUint(ad)
			case uapi.NETDEV_A_PAGE_POOL_DMABUF:
				p.Dmabuf = ad.Uint32()
			case uapi.NETDEV_A_PAGE_POOL_IO_URING:
				p.IOUring = true
			}
		}
	})
}

func parsePagePoolStats(msgs []genetlink.Message) ([]PagePoolStats, error) {
	return decodeEach(msgs, "page-pool-stats-get", func(ad *netlink.AttributeDecoder, s *PagePoolStats) {
		for ad.Next() {
			t := ad.Type()
			switch {
			case t == uapi.NETDEV_A_PAGE_POOL_STATS_INFO:
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					for nad.Next() {
						switch nad.Type() {
						case uapi.NETDEV_A_PAGE_POOL_ID:
							s.PoolID = readUint(nad)
						case uapi.NETDEV_A_PAGE_POOL_IFINDEX:
							s.Ifindex = readIfindex(nad)
						}
					}
					return nil
				})
			case t >= uapi.NETDEV_A_PAGE_POOL_STATS_ALLOC_FAST && t <= uapi.NETDEV_A_PAGE_POOL_STATS_RECYCLE_RELEASED_REFCNT:
				s.vals[t] = readUint(ad)
				s.has |= 1 << t
			}
		}
	})
}
