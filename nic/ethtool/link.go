// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package ethtool

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// sizeofIfinfomsg is struct ifinfomsg (include/uapi/linux/rtnetlink.h): family u8, pad u8, type u16,
// index s32, flags u32, change u32.
const sizeofIfinfomsg = 16

// Link is what rtnetlink says about a device that matters for devmem.
type Link struct {
	Up     bool   // IFF_UP: the kernel lists no queues or NAPIs of a device that is down
	XDP    bool   // an XDP program is attached (bind-rx refuses such a device)
	ProgID uint32 // the XDP program's id, 0 when none
}

// LinkClient asks rtnetlink about a device: the one route-family query a NIC check needs besides
// ethtool (is it up, is an XDP program attached), kept here so that every kernel surface the nic
// and doctor packages read has its client in one place.
type LinkClient struct{ c *netlink.Conn }

// DialLink opens a strict (extack) rtnetlink connection. Close it.
func DialLink() (*LinkClient, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Strict: true})
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink: %w", err)
	}
	return NewLink(c), nil
}

// NewLink returns a LinkClient that owns c, a NETLINK_ROUTE connection: the seam nltest uses.
func NewLink(c *netlink.Conn) *LinkClient { return &LinkClient{c: c} }

// Close closes the connection.
func (l *LinkClient) Close() error { return l.c.Close() }

// Link asks for the flags and the XDP state of ifindex (RTM_GETLINK). Needs no privilege.
func (l *LinkClient) Link(ifindex int) (Link, error) {
	req := make([]byte, sizeofIfinfomsg)
	binary.NativeEndian.PutUint32(req[4:], uint32(ifindex))
	msgs, err := l.c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request},
		Data:   req,
	})
	if err != nil {
		return Link{}, fmt.Errorf("RTM_GETLINK ifindex %d: %w", ifindex, err)
	}
	if len(msgs) != 1 {
		return Link{}, fmt.Errorf("RTM_GETLINK ifindex %d: %d replies, want 1", ifindex, len(msgs))
	}
	return parseLink(msgs[0].Data)
}

// parseLink reads ifi_flags and IFLA_XDP from an RTM_NEWLINK payload (ifinfomsg, then attributes).
// A link without IFLA_XDP has no program.
func parseLink(b []byte) (Link, error) {
	if len(b) < sizeofIfinfomsg {
		return Link{}, errors.New("RTM_NEWLINK shorter than struct ifinfomsg")
	}
	ad, err := netlink.NewAttributeDecoder(b[sizeofIfinfomsg:])
	if err != nil {
		return Link{}, fmt.Errorf("RTM_NEWLINK attributes: %w", err)
	}
	l := Link{Up: binary.NativeEndian.Uint32(b[8:])&unix.IFF_UP != 0}
	var mode uint8
	for ad.Next() {
		if ad.Type() != unix.IFLA_XDP {
			continue
		}
		ad.Nested(func(nad *netlink.AttributeDecoder) error {
			for nad.Next() {
				switch nad.Type() {
				case unix.IFLA_XDP_ATTACHED:
					mode = nad.Uint8()
				case unix.IFLA_XDP_PROG_ID:
					l.ProgID = nad.Uint32()
				}
			}
			return nil
		})
	}
	if err := ad.Err(); err != nil {
		return Link{}, fmt.Errorf("RTM_NEWLINK attributes: %w", err)
	}
	l.XDP = mode != uapi.XDP_ATTACHED_NONE
	return l, nil
}
