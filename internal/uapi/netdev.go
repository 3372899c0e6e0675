// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package uapi

// The netdev generic netlink family: include/uapi/linux/netdev.h. Names keep the kernel's spelling so
// they grep against C. Values were checked against the v6.18 header (the host kernel here answers
// commands 1, 5, 10-15) and, for the newer additions marked below, against the net-next header that
// added them; enum values only ever grow, so a decoder must skip attribute types it does not know.

// NETDEV_FAMILY_NAME and NETDEV_FAMILY_VERSION identify the family to the generic netlink controller.
const (
	NETDEV_FAMILY_NAME    = "netdev" //nolint:revive // kernel spelling
	NETDEV_FAMILY_VERSION = 1        //nolint:revive // kernel spelling
)

// Commands (enum netdev_cmd, "NETDEV_CMD_"). bind-rx arrived in v6.12, napi-set in v6.13, bind-tx in
// v6.15, queue-create (netkit queue leasing) in net-next January 2026 (about v7.0).
const (
	NETDEV_CMD_DEV_GET              = 1  //nolint:revive // kernel spelling
	NETDEV_CMD_DEV_ADD_NTF          = 2  //nolint:revive // kernel spelling
	NETDEV_CMD_DEV_DEL_NTF          = 3  //nolint:revive // kernel spelling
	NETDEV_CMD_DEV_CHANGE_NTF       = 4  //nolint:revive // kernel spelling
	NETDEV_CMD_PAGE_POOL_GET        = 5  //nolint:revive // kernel spelling
	NETDEV_CMD_PAGE_POOL_ADD_NTF    = 6  //nolint:revive // kernel spelling
	NETDEV_CMD_PAGE_POOL_DEL_NTF    = 7  //nolint:revive // kernel spelling
	NETDEV_CMD_PAGE_POOL_CHANGE_NTF = 8  //nolint:revive // kernel spelling
	NETDEV_CMD_PAGE_POOL_STATS_GET  = 9  //nolint:revive // kernel spelling; absent without CONFIG_PAGE_POOL_STATS
	NETDEV_CMD_QUEUE_GET            = 10 //nolint:revive // kernel spelling
	NETDEV_CMD_NAPI_GET             = 11 //nolint:revive // kernel spelling
	NETDEV_CMD_QSTATS_GET           = 12 //nolint:revive // kernel spelling
	NETDEV_CMD_BIND_RX              = 13 //nolint:revive // kernel spelling
	NETDEV_CMD_NAPI_SET             = 14 //nolint:revive // kernel spelling
	NETDEV_CMD_BIND_TX              = 15 //nolint:revive // kernel spelling
	NETDEV_CMD_QUEUE_CREATE         = 16 //nolint:revive // kernel spelling
)

// NetdevCmdNames maps each command to its name in Documentation/netlink/specs/netdev.yaml, the names
// `ynl` and the generic netlink controller's op list use.
var NetdevCmdNames = map[uint8]string{
	NETDEV_CMD_DEV_GET:              "dev-get",
	NETDEV_CMD_DEV_ADD_NTF:          "dev-add-ntf",
	NETDEV_CMD_DEV_DEL_NTF:          "dev-del-ntf",
	NETDEV_CMD_DEV_CHANGE_NTF:       "dev-change-ntf",
	NETDEV_CMD_PAGE_POOL_GET:        "page-pool-get",
	NETDEV_CMD_PAGE_POOL_ADD_NTF:    "page-pool-add-ntf",
	NETDEV_CMD_PAGE_POOL_DEL_NTF:    "page-pool-del-ntf",
	NETDEV_CMD_PAGE_POOL_CHANGE_NTF: "page-pool-change-ntf",
	NETDEV_CMD_PAGE_POOL_STATS_GET:  "page-pool-stats-get",
	NETDEV_CMD_QUEUE_GET:            "queue-get",
	NETDEV_CMD_NAPI_GET:             "napi-get",
	NETDEV_CMD_QSTATS_GET:           "qstats-get",
	NETDEV_CMD_BIND_RX:              "bind-rx",
	NETDEV_CMD_NAPI_SET:             "napi-set",
	NETDEV_CMD_BIND_TX:              "bind-tx",
	NETDEV_CMD_QUEUE_CREATE:         "queue-create",
}

// Attribute set "dev" (NETDEV_A_DEV_*).
const (
	NETDEV_A_DEV_IFINDEX                  = 1 //nolint:revive // kernel spelling; u32
	NETDEV_A_DEV_PAD                      = 2 //nolint:revive // kernel spelling
	NETDEV_A_DEV_XDP_FEATURES             = 3 //nolint:revive // kernel spelling; u64 flags
	NETDEV_A_DEV_XDP_ZC_MAX_SEGS          = 4 //nolint:revive // kernel spelling; u32
	NETDEV_A_DEV_XDP_RX_METADATA_FEATURES = 5 //nolint:revive // kernel spelling; u64 flags
	NETDEV_A_DEV_XSK_FEATURES             = 6 //nolint:revive // kernel spelling; u64 flags
)

// Attribute set "page-pool" (NETDEV_A_PAGE_POOL_*). Types marked uint are the kernel's auto-sized
// NLA_UINT: 4 bytes when the value fits, else 8.
const (
	NETDEV_A_PAGE_POOL_ID           = 1 //nolint:revive // kernel spelling; uint
	NETDEV_A_PAGE_POOL_IFINDEX      = 2 //nolint:revive // kernel spelling; u32
	NETDEV_A_PAGE_POOL_NAPI_ID      = 3 //nolint:revive // kernel spelling; uint
	NETDEV_A_PAGE_POOL_INFLIGHT     = 4 //nolint:revive // kernel spelling; uint
	NETDEV_A_PAGE_POOL_INFLIGHT_MEM = 5 //nolint:revive // kernel spelling; uint
	NETDEV_A_PAGE_POOL_DETACH_TIME  = 6 //nolint:revive // kernel spelling; uint (seconds, CLOCK_BOOTTIME)
	NETDEV_A_PAGE_POOL_DMABUF       = 7 //nolint:revive // kernel spelling; u32 binding id
	NETDEV_A_PAGE_POOL_IO_URING     = 8 //nolint:revive // kernel spelling; nest (io-uring-provider-info)
)

// Attribute set "page-pool-stats" (NETDEV_A_PAGE_POOL_STATS_*); every counter is uint.
const (
	NETDEV_A_PAGE_POOL_STATS_INFO                    = 1  //nolint:revive // kernel spelling; nest of page-pool id/ifindex
	NETDEV_A_PAGE_POOL_STATS_ALLOC_FAST              = 8  //nolint:revive // kernel spelling
	NETDEV_A_PAGE_POOL_STATS_ALLOC_SLOW              = 9  //nolint:revive // kernel spelling
	NETDEV_A_PAGE_POOL_STATS_ALLOC_SLOW_HIGH_ORDER   = 10 //nolint:revive // kernel spelling
	NETDEV_A_PAGE_POOL_STATS_ALLOC_EMPTY             = 11 //nolint:revive // kernel spelling
	NETDEV_A_PAGE_POOL_STATS_ALLOC_REFILL            = 12 //nolint:revive // kernel spelling
	NETDEV_A_PAGE_POOL_STATS_ALLOC_WAIVE             = 13 //nolint:revive // kernel spelling
	NETDEV_A_PAGE_POOL_STATS_RECYCLE_CACHED          = 14 //nolint:revive // kernel spelling
	NETDEV_A_PAGE_POOL_STATS_RECYCLE_CACHE_FULL      = 15 //nolint:revive // kernel spelling
	NETDEV_A_PAGE_POOL_STATS_RECYCLE_RING            = 16 //nolint:revive // kernel spelling
	NETDEV_A_PAGE_POOL_STATS_RECYCLE_RING_FULL       = 17 //nolint:revive // kernel spelling
	NETDEV_A_PAGE_POOL_STATS_RECYCLE_RELEASED_REFCNT = 18 //nolint:revive // kernel spelling
)

// Attribute set "napi" (NETDEV_A_NAPI_*). A napi-get dump filters by NETDEV_A_NAPI_IFINDEX; strict
// validation refuses any other attribute there ("Unknown attribute type").
const (
	NETDEV_A_NAPI_IFINDEX             = 1 //nolint:revive // kernel spelling; u32
	NETDEV_A_NAPI_ID                  = 2 //nolint:revive // kernel spelling; u32
	NETDEV_A_NAPI_IRQ                 = 3 //nolint:revive // kernel spelling; u32
	NETDEV_A_NAPI_PID                 = 4 //nolint:revive // kernel spelling; u32 (threaded NAPI kthread)
	NETDEV_A_NAPI_DEFER_HARD_IRQS     = 5 //nolint:revive // kernel spelling; u32
	NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT   = 6 //nolint:revive // kernel spelling; uint (ns)
	NETDEV_A_NAPI_IRQ_SUSPEND_TIMEOUT = 7 //nolint:revive // kernel spelling; uint (ns)
	NETDEV_A_NAPI_THREADED            = 8 //nolint:revive // kernel spelling; u32 enum
)

// Attribute set "queue" (NETDEV_A_QUEUE_*) and the nested "queue-id" set {ID, TYPE} used by bind-rx.
// LEASE arrived with queue-create (about v7.0).
const (
	NETDEV_A_QUEUE_ID       = 1 //nolint:revive // kernel spelling; u32
	NETDEV_A_QUEUE_IFINDEX  = 2 //nolint:revive // kernel spelling; u32
	NETDEV_A_QUEUE_TYPE     = 3 //nolint:revive // kernel spelling; u32 enum netdev_queue_type
	NETDEV_A_QUEUE_NAPI_ID  = 4 //nolint:revive // kernel spelling; u32
	NETDEV_A_QUEUE_DMABUF   = 5 //nolint:revive // kernel spelling; u32 binding id holding the queue
	NETDEV_A_QUEUE_IO_URING = 6 //nolint:revive // kernel spelling; nest, present when io_uring zcrx holds the queue
	NETDEV_A_QUEUE_XSK      = 7 //nolint:revive // kernel spelling; nest, present when an AF_XDP socket uses the queue
	NETDEV_A_QUEUE_LEASE    = 8 //nolint:revive // kernel spelling; nest (lease set)
)

// enum netdev_queue_type.
const (
	NETDEV_QUEUE_TYPE_RX = 0 //nolint:revive // kernel spelling
	NETDEV_QUEUE_TYPE_TX = 1 //nolint:revive // kernel spelling
)

// Attribute set "lease" (NETDEV_A_LEASE_*, about v7.0).
const (
	NETDEV_A_LEASE_IFINDEX  = 1 //nolint:revive // kernel spelling; u32
	NETDEV_A_LEASE_QUEUE    = 2 //nolint:revive // kernel spelling; nest (queue-id)
	NETDEV_A_LEASE_NETNS_ID = 3 //nolint:revive // kernel spelling; s32
)

// Attribute set "qstats" (NETDEV_A_QSTATS_*); every counter is uint.
const (
	NETDEV_A_QSTATS_IFINDEX                = 1  //nolint:revive // kernel spelling; u32
	NETDEV_A_QSTATS_QUEUE_TYPE             = 2  //nolint:revive // kernel spelling; u32
	NETDEV_A_QSTATS_QUEUE_ID               = 3  //nolint:revive // kernel spelling; u32
	NETDEV_A_QSTATS_SCOPE                  = 4  //nolint:revive // kernel spelling; uint flags
	NETDEV_A_QSTATS_RX_PACKETS             = 8  //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_RX_BYTES               = 9  //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_TX_PACKETS             = 10 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_TX_BYTES               = 11 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_RX_ALLOC_FAIL          = 12 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_RX_HW_DROPS            = 13 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_RX_HW_DROP_OVERRUNS    = 14 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_RX_CSUM_COMPLETE       = 15 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_RX_CSUM_UNNECESSARY    = 16 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_RX_CSUM_NONE           = 17 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_RX_CSUM_BAD            = 18 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_RX_HW_GRO_PACKETS      = 19 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_RX_HW_GRO_BYTES        = 20 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_RX_HW_GRO_WIRE_PACKETS = 21 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_RX_HW_GRO_WIRE_BYTES   = 22 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_RX_HW_DROP_RATELIMITS  = 23 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_TX_HW_DROPS            = 24 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_TX_HW_DROP_ERRORS      = 25 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_TX_CSUM_NONE           = 26 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_TX_NEEDS_CSUM          = 27 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_TX_HW_GSO_PACKETS      = 28 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_TX_HW_GSO_BYTES        = 29 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_TX_HW_GSO_WIRE_PACKETS = 30 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_TX_HW_GSO_WIRE_BYTES   = 31 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_TX_HW_DROP_RATELIMITS  = 32 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_TX_STOP                = 33 //nolint:revive // kernel spelling
	NETDEV_A_QSTATS_TX_WAKE                = 34 //nolint:revive // kernel spelling
)

// NETDEV_QSTATS_SCOPE_QUEUE asks qstats-get for one reply per queue instead of per device.
const NETDEV_QSTATS_SCOPE_QUEUE = 1 //nolint:revive // kernel spelling

// Attribute set "dmabuf" (NETDEV_A_DMABUF_*): the bind-rx/bind-tx request and reply. RX_PAGE_SIZE
// arrived in net-next August 2026 (about v7.3; policy: at least PAGE_SIZE, a power of two).
// A proposed AUTORELEASE attribute was never merged; number 5 went to RX_PAGE_SIZE.
const (
	NETDEV_A_DMABUF_IFINDEX      = 1 //nolint:revive // kernel spelling; u32
	NETDEV_A_DMABUF_QUEUES       = 2 //nolint:revive // kernel spelling; nest (queue-id), multi-attr, NLA_F_NESTED required
	NETDEV_A_DMABUF_FD           = 3 //nolint:revive // kernel spelling; u32
	NETDEV_A_DMABUF_ID           = 4 //nolint:revive // kernel spelling; u32, in the reply
	NETDEV_A_DMABUF_RX_PAGE_SIZE = 5 //nolint:revive // kernel spelling; u32
)

// Extended-ack TLVs after an NLMSG_ERROR (include/uapi/linux/netlink.h, enum nlmsgerr_attrs) that
// x/sys/unix lacks: POLICY since v5.10, MISS_TYPE and MISS_NEST since v6.1. mdlayher/netlink decodes
// only MSG and OFFS, which is why the bind package parses acks itself.
const (
	NLMSGERR_ATTR_POLICY    = 4 //nolint:revive // kernel spelling; nest (netlink_policy_type_attr)
	NLMSGERR_ATTR_MISS_TYPE = 5 //nolint:revive // kernel spelling; u32 type of the missing attribute
	NLMSGERR_ATTR_MISS_NEST = 6 //nolint:revive // kernel spelling; u32 offset of the nest that lacks it
)

// XDP_ATTACHED_NONE is the IFLA_XDP_ATTACHED value of a device without an XDP program
// (include/uapi/linux/if_link.h, v4.13); x/sys/unix has the attribute numbers but not this enum.
const XDP_ATTACHED_NONE = 0 //nolint:revive // kernel spelling
