// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nic

import (
	"net"

	"github.com/devmemtcp/ncdevmem/nic/ethtool"
	"golang.org/x/sys/unix"
)

// System returns the Kernel of the calling thread's network namespace: ethtool netlink for rings and
// channels, SIOCETHTOOL for the rest. Each call opens its client and closes it again (these calls
// are rare), so the value holds nothing and needs no Close. Changes need CAP_NET_ADMIN.
func System() Kernel { return systemKernel{} }

type systemKernel struct{}

var _ Kernel = systemKernel{}

// viaNetlink runs f on a fresh ethtool netlink client.
func viaNetlink(f func(*ethtool.Client) error) error {
	c, err := ethtool.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}

// viaIoctl runs f on a fresh SIOCETHTOOL client.
func viaIoctl(f func(*ethtool.IoctlClient) error) error {
	c, err := ethtool.OpenIoctl()
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}

func (systemKernel) Ifindex(ifname string) (int, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return 0, ethtool.NewError(ifname, "look up interface", "", unix.ENODEV, "")
	}
	return ifi.Index, nil
}

func (systemKernel) Rings(ifname string) (r *Rings, err error) {
	err = viaNetlink(func(c *ethtool.Client) (err error) { r, err = c.Rings(ifname); return err })
	return r, err
}

func (systemKernel) SetRings(ifname string, u RingsUpdate) error {
	return viaNetlink(func(c *ethtool.Client) error { return c.SetRings(ifname, u) })
}

func (systemKernel) Channels(ifname string) (ch *Channels, err error) {
	err = viaNetlink(func(c *ethtool.Client) (err error) { ch, err = c.Channels(ifname); return err })
	return ch, err
}

func (systemKernel) SetChannels(ifname string, u ChannelsUpdate) error {
	return viaNetlink(func(c *ethtool.Client) error { return c.SetChannels(ifname, u) })
}

func (systemKernel) DriverInfo(ifname string) (d *Driver, err error) {
	err = viaIoctl(func(c *ethtool.IoctlClient) (err error) { d, err = c.DriverInfo(ifname); return err })
	return d, err
}

func (systemKernel) RXRings(ifname string) (n uint32, err error) {
	err = viaIoctl(func(c *ethtool.IoctlClient) (err error) { n, err = c.RXRings(ifname); return err })
	return n, err
}

func (systemKernel) RuleCount(ifname string) (count, tableSize uint32, locSpecial bool, err error) {
	err = viaIoctl(func(c *ethtool.IoctlClient) (err error) {
		count, tableSize, locSpecial, err = c.RuleCount(ifname)
		return err
	})
	return count, tableSize, locSpecial, err
}

func (systemKernel) RuleLocations(ifname string, count uint32) (locs []uint32, err error) {
	err = viaIoctl(func(c *ethtool.IoctlClient) (err error) { locs, err = c.RuleLocations(ifname, count); return err })
	return locs, err
}

func (systemKernel) Rule(ifname string, loc uint32) (r *Rule, err error) {
	err = viaIoctl(func(c *ethtool.IoctlClient) (err error) { r, err = c.Rule(ifname, loc); return err })
	return r, err
}

func (systemKernel) InsertRule(ifname string, r Rule) (loc uint32, err error) {
	err = viaIoctl(func(c *ethtool.IoctlClient) (err error) { loc, err = c.InsertRule(ifname, r); return err })
	return loc, err
}

func (systemKernel) DeleteRule(ifname string, loc uint32) error {
	return viaIoctl(func(c *ethtool.IoctlClient) error { return c.DeleteRule(ifname, loc) })
}

func (systemKernel) Indir(ifname string) (t []uint32, err error) {
	err = viaIoctl(func(c *ethtool.IoctlClient) (err error) { t, err = c.Indir(ifname); return err })
	return t, err
}

func (systemKernel) SetIndir(ifname string, table []uint32) error {
	return viaIoctl(func(c *ethtool.IoctlClient) error { return c.SetIndir(ifname, table) })
}

func (systemKernel) RSSContext(ifname string, ctx uint32) (t []uint32, err error) {
	err = viaIoctl(func(c *ethtool.IoctlClient) (err error) { t, err = c.RSSContext(ifname, ctx); return err })
	return t, err
}

func (systemKernel) CreateRSSContext(ifname string, table []uint32) (id uint32, err error) {
	err = viaIoctl(func(c *ethtool.IoctlClient) (err error) { id, err = c.CreateRSSContext(ifname, table); return err })
	return id, err
}

func (systemKernel) DeleteRSSContext(ifname string, ctx uint32) error {
	return viaIoctl(func(c *ethtool.IoctlClient) error { return c.DeleteRSSContext(ifname, ctx) })
}
