// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind

import (
	"strings"
	"testing"

	"github.com/mdlayher/netlink"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

func TestBindRXEmptyQueuesRequest(t *testing.T) {
	// ifindex 5, fd 7, then two NLA_F_NESTED queue nests holding nothing.
	req := "08000100 05000000 08000300 07000000 04000280 04000280"
	k := &fakeKernel{t: t, ops: allOps, fn: expect(t, uapi.NETDEV_CMD_BIND_RX, netlink.Acknowledge,
		strings.ReplaceAll(req, " ", ""), []string{"08000400 09000000"}, nil)}
	b, err := bindRXEmpty(k.dial, 5, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID() != 9 {
		t.Errorf("id %d, want 9", b.ID())
	}
	b.Close()
	if _, err := bindRXEmpty(k.dial, 5, 0, 7); err == nil {
		t.Error("zero nests accepted")
	}
	if _, err := bindRXEmpty(k.dial, 0, 1, 7); err == nil {
		t.Error("ifindex 0 accepted")
	}
}
