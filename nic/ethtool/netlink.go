// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package ethtool

import (
	"errors"
	"fmt"
	"os"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Client is a client of the "ethtool" generic netlink family: rings and channels. Every request
// goes through execute on the one connection it was made with.
type Client struct {
	c      *genetlink.Conn
	family genetlink.Family
}

// Dial opens a strict (extack) generic netlink connection and resolves the family. Close it.
func Dial() (*Client, error) {
	c, err := genetlink.Dial(&netlink.Config{Strict: true})
	if err != nil {
		return nil, fmt.Errorf("open generic netlink socket: %w", err)
	}
	nl, err := New(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	return nl, nil
}

// New resolves the family on c and returns a Client that owns c: the seam genltest uses.
func New(c *genetlink.Conn) (*Client, error) {
	f, err := c.GetFamily(unix.ETHTOOL_GENL_NAME)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("resolve generic netlink family %q: %w (kernel built without CONFIG_ETHTOOL_NETLINK, or older than 5.6)", unix.ETHTOOL_GENL_NAME, err)
		}
		return nil, fmt.Errorf("resolve generic netlink family %q: %w", unix.ETHTOOL_GENL_NAME, err)
	}
	return &Client{c: c, family: f}, nil
}

// Close closes the connection.
func (nl *Client) Close() error { return nl.c.Close() }

// execute sends one request for ifname and returns the replies' attribute bytes. op and ethtoolCmd
// label errors.
func (nl *Client) execute(cmd uint8, flags netlink.HeaderFlags, ifname, op, ethtoolCmd string, body []byte) ([][]byte, error) {
	msgs, err := nl.c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: nl.family.Version},
		Data:   body,
	}, nl.family.ID, netlink.Request|flags)
	if err != nil {
		return nil, netlinkError(ifname, op, err, ethtoolCmd)
	}
	out := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.Data)
	}
	return out, nil
}

// netlinkError turns a *netlink.OpError into an *Error with the extack text.
func netlinkError(ifname, op string, err error, ethtoolCmd string) error {
	var oe *netlink.OpError
	if errors.As(err, &oe) {
		return NewError(ifname, op, oe.Message, oe.Err, ethtoolCmd)
	}
	return NewError(ifname, op, "", err, ethtoolCmd)
}

// encodeHeader writes the request header nest (attr 1 of every ethtool message) naming ifname.
func encodeHeader(ae *netlink.AttributeEncoder, ifname string) {
	// ETHTOOL_A_RINGS_HEADER and ETHTOOL_A_CHANNELS_HEADER are both 1.
	ae.Nested(unix.ETHTOOL_A_RINGS_HEADER, func(nae *netlink.AttributeEncoder) error {
		nae.String(unix.ETHTOOL_A_HEADER_DEV_NAME, ifname)
		return nil
	})
}

// encodeRingsGet is the RINGS_GET request body.
func encodeRingsGet(ifname string) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	encodeHeader(ae, ifname)
	return ae.Encode()
}

// encodeRingsSet is the RINGS_SET request body.
func encodeRingsSet(ifname string, u RingsUpdate) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	encodeHeader(ae, ifname)
	if u.RX != nil {
		ae.Uint32(unix.ETHTOOL_A_RINGS_RX, *u.RX)
	}
	if u.TX != nil {
		ae.Uint32(unix.ETHTOOL_A_RINGS_TX, *u.TX)
	}
	if u.TCPDataSplit != nil {
		ae.Uint8(unix.ETHTOOL_A_RINGS_TCP_DATA_SPLIT, uint8(*u.TCPDataSplit))
	}
	if u.HDSThresh != nil {
		ae.Uint32(unix.ETHTOOL_A_RINGS_HDS_THRESH, *u.HDSThresh)
	}
	return ae.Encode()
}

// parseRings decodes a RINGS_GET reply, skipping attributes it does not know.
func parseRings(b []byte) (*Rings, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	var r Rings
	for ad.Next() {
		switch ad.Type() {
		case unix.ETHTOOL_A_RINGS_RX:
			r.RX = ad.Uint32()
		case unix.ETHTOOL_A_RINGS_RX_MAX:
			r.RXMax = ad.Uint32()
		case unix.ETHTOOL_A_RINGS_TX:
			r.TX = ad.Uint32()
		case unix.ETHTOOL_A_RINGS_TX_MAX:
			r.TXMax = ad.Uint32()
		case unix.ETHTOOL_A_RINGS_TCP_DATA_SPLIT:
			r.TCPDataSplit = TCPDataSplit(ad.Uint8())
		case unix.ETHTOOL_A_RINGS_HDS_THRESH:
			v := ad.Uint32()
			r.HDSThresh = &v
		case unix.ETHTOOL_A_RINGS_HDS_THRESH_MAX:
			v := ad.Uint32()
			r.HDSThreshMax = &v
		}
	}
	if err := ad.Err(); err != nil {
		return nil, err
	}
	return &r, nil
}

// encodeChannelsSet is the CHANNELS_SET request body.
func encodeChannelsSet(ifname string, u ChannelsUpdate) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	encodeHeader(ae, ifname)
	for _, f := range []struct {
		typ uint16
		v   *uint32
	}{
		{unix.ETHTOOL_A_CHANNELS_RX_COUNT, u.RX},
		{unix.ETHTOOL_A_CHANNELS_TX_COUNT, u.TX},
		{unix.ETHTOOL_A_CHANNELS_OTHER_COUNT, u.Other},
		{unix.ETHTOOL_A_CHANNELS_COMBINED_COUNT, u.Combined},
	} {
		if f.v != nil {
			ae.Uint32(f.typ, *f.v)
		}
	}
	return ae.Encode()
}

// parseChannels decodes a CHANNELS_GET reply, skipping attributes it does not know.
func parseChannels(b []byte) (*Channels, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	var c Channels
	for ad.Next() {
		switch ad.Type() {
		case unix.ETHTOOL_A_CHANNELS_RX_MAX:
			c.RXMax = ad.Uint32()
		case unix.ETHTOOL_A_CHANNELS_TX_MAX:
			c.TXMax = ad.Uint32()
		case unix.ETHTOOL_A_CHANNELS_OTHER_MAX:
			c.OtherMax = ad.Uint32()
		case unix.ETHTOOL_A_CHANNELS_COMBINED_MAX:
			c.CombinedMax = ad.Uint32()
		case unix.ETHTOOL_A_CHANNELS_RX_COUNT:
			c.RX = ad.Uint32()
		case unix.ETHTOOL_A_CHANNELS_TX_COUNT:
			c.TX = ad.Uint32()
		case unix.ETHTOOL_A_CHANNELS_OTHER_COUNT:
			c.Other = ad.Uint32()
		case unix.ETHTOOL_A_CHANNELS_COMBINED_COUNT:
			c.Combined = ad.Uint32()
		}
	}
	if err := ad.Err(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Rings is RINGS_GET. A driver without ring reporting gives an *Error matching ErrNotSupported.
func (nl *Client) Rings(ifname string) (*Rings, error) {
	body, err := encodeRingsGet(ifname)
	if err != nil {
		return nil, err
	}
	replies, err := nl.execute(unix.ETHTOOL_MSG_RINGS_GET, 0, ifname, "get rings", "ethtool -g "+ifname, body)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && errors.Is(err, unix.EOPNOTSUPP) {
			e.Advice = "the driver has no ring settings, so header split (tcp-data-split) cannot be turned on; devmem RX needs a NIC whose driver has it (bnxt, gve, mlx5, fbnic), or run with --no-setup on queues prepared another way"
		}
		return nil, err
	}
	if len(replies) != 1 {
		return nil, fmt.Errorf("get rings %s: kernel sent %d replies, want 1", ifname, len(replies))
	}
	r, err := parseRings(replies[0])
	if err != nil {
		return nil, fmt.Errorf("get rings %s: parse reply: %w", ifname, err)
	}
	return r, nil
}

// SetRings is RINGS_SET with the non-nil fields of u. Needs CAP_NET_ADMIN.
func (nl *Client) SetRings(ifname string, u RingsUpdate) error {
	body, err := encodeRingsSet(ifname, u)
	if err != nil {
		return err
	}
	op, cmd := ringsOp(ifname, u)
	_, err = nl.execute(unix.ETHTOOL_MSG_RINGS_SET, netlink.Acknowledge, ifname, op, cmd, body)
	return err
}

// ringsOp names a rings update in ethtool's words, for errors and advice.
func ringsOp(ifname string, u RingsUpdate) (op, cmd string) {
	op = "set rings"
	args := ""
	if u.TCPDataSplit != nil {
		args += " tcp-data-split " + u.TCPDataSplit.String()
	}
	if u.HDSThresh != nil {
		args += fmt.Sprintf(" hds-thresh %d", *u.HDSThresh)
	}
	if u.RX != nil {
		args += fmt.Sprintf(" rx %d", *u.RX)
	}
	if u.TX != nil {
		args += fmt.Sprintf(" tx %d", *u.TX)
	}
	return op + args, "ethtool -G " + ifname + args
}

// Channels is CHANNELS_GET.
func (nl *Client) Channels(ifname string) (*Channels, error) {
	ae := netlink.NewAttributeEncoder()
	encodeHeader(ae, ifname)
	body, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	replies, err := nl.execute(unix.ETHTOOL_MSG_CHANNELS_GET, 0, ifname, "get channels", "ethtool -l "+ifname, body)
	if err != nil {
		return nil, err
	}
	if len(replies) != 1 {
		return nil, fmt.Errorf("get channels %s: kernel sent %d replies, want 1", ifname, len(replies))
	}
	c, err := parseChannels(replies[0])
	if err != nil {
		return nil, fmt.Errorf("get channels %s: parse reply: %w", ifname, err)
	}
	return c, nil
}

// SetChannels is CHANNELS_SET with the non-nil fields of u. Needs CAP_NET_ADMIN.
func (nl *Client) SetChannels(ifname string, u ChannelsUpdate) error {
	body, err := encodeChannelsSet(ifname, u)
	if err != nil {
		return err
	}
	args := ""
	for _, f := range []struct {
		name string
		v    *uint32
	}{{"rx", u.RX}, {"tx", u.TX}, {"other", u.Other}, {"combined", u.Combined}} {
		if f.v != nil {
			args += fmt.Sprintf(" %s %d", f.name, *f.v)
		}
	}
	_, err = nl.execute(unix.ETHTOOL_MSG_CHANNELS_SET, netlink.Acknowledge, ifname, "set channels"+args, "ethtool -L "+ifname+args, body)
	return err
}
