// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package uapi

import "testing"

// The netdev enums are hand-copied, so pin the values that ncdevmem sends on the wire against the
// numbers recorded in the reference notes (devmem-uapi.md §4.3, from include/uapi/linux/netdev.h).
func TestNetdevValues(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"NETDEV_CMD_DEV_GET", NETDEV_CMD_DEV_GET, 1},
		{"NETDEV_CMD_PAGE_POOL_GET", NETDEV_CMD_PAGE_POOL_GET, 5},
		{"NETDEV_CMD_PAGE_POOL_STATS_GET", NETDEV_CMD_PAGE_POOL_STATS_GET, 9},
		{"NETDEV_CMD_QUEUE_GET", NETDEV_CMD_QUEUE_GET, 10},
		{"NETDEV_CMD_NAPI_GET", NETDEV_CMD_NAPI_GET, 11},
		{"NETDEV_CMD_QSTATS_GET", NETDEV_CMD_QSTATS_GET, 12},
		{"NETDEV_CMD_BIND_RX", NETDEV_CMD_BIND_RX, 13},
		{"NETDEV_CMD_NAPI_SET", NETDEV_CMD_NAPI_SET, 14},
		{"NETDEV_CMD_BIND_TX", NETDEV_CMD_BIND_TX, 15},
		{"NETDEV_CMD_QUEUE_CREATE", NETDEV_CMD_QUEUE_CREATE, 16},
		{"NETDEV_A_DMABUF_IFINDEX", NETDEV_A_DMABUF_IFINDEX, 1},
		{"NETDEV_A_DMABUF_QUEUES", NETDEV_A_DMABUF_QUEUES, 2},
		{"NETDEV_A_DMABUF_FD", NETDEV_A_DMABUF_FD, 3},
		{"NETDEV_A_DMABUF_ID", NETDEV_A_DMABUF_ID, 4},
		{"NETDEV_A_DMABUF_RX_PAGE_SIZE", NETDEV_A_DMABUF_RX_PAGE_SIZE, 5},
		{"NETDEV_A_QUEUE_DMABUF", NETDEV_A_QUEUE_DMABUF, 5},
		{"NETDEV_A_QUEUE_LEASE", NETDEV_A_QUEUE_LEASE, 8},
		{"NETDEV_A_PAGE_POOL_DMABUF", NETDEV_A_PAGE_POOL_DMABUF, 7},
		{"NETDEV_A_NAPI_THREADED", NETDEV_A_NAPI_THREADED, 8},
		{"NETDEV_A_QSTATS_RX_PACKETS", NETDEV_A_QSTATS_RX_PACKETS, 8},
		{"NETDEV_A_QSTATS_TX_WAKE", NETDEV_A_QSTATS_TX_WAKE, 34},
		{"NETDEV_A_PAGE_POOL_STATS_RECYCLE_RELEASED_REFCNT", NETDEV_A_PAGE_POOL_STATS_RECYCLE_RELEASED_REFCNT, 18},
		{"NLMSGERR_ATTR_MISS_TYPE", NLMSGERR_ATTR_MISS_TYPE, 5},
		{"NLMSGERR_ATTR_MISS_NEST", NLMSGERR_ATTR_MISS_NEST, 6},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestNetdevCmdNamesComplete(t *testing.T) {
	for cmd := uint8(NETDEV_CMD_DEV_GET); cmd <= NETDEV_CMD_QUEUE_CREATE; cmd++ {
		if NetdevCmdNames[cmd] == "" {
			t.Errorf("command %d has no name", cmd)
		}
	}
	seen := map[string]bool{}
	for cmd, name := range NetdevCmdNames {
		if seen[name] {
			t.Errorf("name %q used twice (command %d)", name, cmd)
		}
		seen[name] = true
	}
}
