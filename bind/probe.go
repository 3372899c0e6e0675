// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind

import (
	"fmt"

	"github.com/mdlayher/netlink"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// BindRXEmptyQueues sends bind-rx with nests queue nests that carry no attributes. The kernel must
// refuse it (a queue nest without id and type is a missing attribute); the kernel selftest's probe
// mode checks exactly that before it trusts a NIC, and so does `ncdevmem -f IF`. A success is
// returned as a Binding the caller must Close.
func BindRXEmptyQueues(ifindex, nests, dmabufFD int) (*Binding, error) {
	return bindRXEmpty(dialTransport, ifindex, nests, dmabufFD)
}

func bindRXEmpty(dial func() (transport, error), ifindex, nests, fd int) (*Binding, error) {
	const op = "bind-rx"
	if err := checkIfindex(op, ifindex); err != nil {
		return nil, err
	}
	if nests < 1 {
		return nil, fmt.Errorf("%s%s: want at least one empty queue nest, got %d", op, ifaceSuffix(ifindex), nests)
	}
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(uapi.NETDEV_A_DMABUF_IFINDEX, uint32(ifindex))
	ae.Uint32(uapi.NETDEV_A_DMABUF_FD, uint32(fd))
	for range nests {
		ae.Nested(uapi.NETDEV_A_DMABUF_QUEUES, func(*netlink.AttributeEncoder) error { return nil })
	}
	attrs, err := ae.Encode()
	if err != nil {
		return nil, fmt.Errorf("%s%s: encode request: %w", op, ifaceSuffix(ifindex), err)
	}
	return doBind(dial, &request{cmd: uapi.NETDEV_CMD_BIND_RX, ifindex: ifindex, fd: fd, attrs: attrs})
}
