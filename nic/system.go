// SPDX-License-Identifier: MIT

package nic

import (
	"net"

	"golang.org/x/sys/unix"
)

// System returns the Kernel of the calling thread's network namespace: ethtool netlink for rings and
// channels, SIOCETHTOOL for the rest. Changes need CAP_NET_ADMIN.
func System() Kernel { return systemKernel{} }

type systemKernel struct{ ioctlKernel }

func (systemKernel) Ifindex(ifname string) (int, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return 0, newError(ifname, "look up interface", "", unix.ENODEV, "")
	}
	return ifi.Index, nil
}

func (systemKernel) Rings(ifname string) (*Rings, error) {
	nl, err := dialEthtool()
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	return nl.rings(ifname)
}

func (systemKernel) SetRings(ifname string, u RingsUpdate) error {
	nl, err := dialEthtool()
	if err != nil {
		return err
	}
	defer nl.Close()
	return nl.setRings(ifname, u)
}

func (systemKernel) Channels(ifname string) (*Channels, error) {
	nl, err := dialEthtool()
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	return nl.channels(ifname)
}

func (systemKernel) SetChannels(ifname string, u ChannelsUpdate) error {
	nl, err := dialEthtool()
	if err != nil {
		return err
	}
	defer nl.Close()
	return nl.setChannels(ifname, u)
}
