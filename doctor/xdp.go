package doctor

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

// linkXDP asks rtnetlink (RTM_GETLINK) whether an XDP program is attached to ifindex.
func linkXDP(ifindex int) (bool, uint32, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Strict: true})
	if err != nil {
		return false, 0, fmt.Errorf("open rtnetlink: %w", err)
	}
	defer c.Close()
	req := make([]byte, sizeofIfinfomsg)
	binary.NativeEndian.PutUint32(req[4:], uint32(ifindex))
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request},
		Data:   req,
	})
	if err != nil {
		return false, 0, fmt.Errorf("RTM_GETLINK ifindex %d: %w", ifindex, err)
	}
	if len(msgs) != 1 {
		return false, 0, fmt.Errorf("RTM_GETLINK ifindex %d: %d replies, want 1", ifindex, len(msgs))
	}
	return parseLinkXDP(msgs[0].Data)
}

// parseLinkXDP reads IFLA_XDP from an RTM_NEWLINK payload (ifinfomsg, then attributes). A link
// without the attribute has no program.
func parseLinkXDP(b []byte) (attached bool, progID uint32, err error) {
	if len(b) < sizeofIfinfomsg {
		return false, 0, errors.New("RTM_NEWLINK shorter than struct ifinfomsg")
	}
	ad, err := netlink.NewAttributeDecoder(b[sizeofIfinfomsg:])
	if err != nil {
		return false, 0, fmt.Errorf("RTM_NEWLINK attributes: %w", err)
	}
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
					progID = nad.Uint32()
				}
			}
			return nil
		})
	}
	if err := ad.Err(); err != nil {
		return false, 0, fmt.Errorf("RTM_NEWLINK attributes: %w", err)
	}
	return mode != uapi.XDP_ATTACHED_NONE, progID, nil
}
