// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nic

import (
	"errors"

	"golang.org/x/sys/unix"
)

// GetRings returns the ring state of ifname (ethtool netlink RINGS_GET). A driver without ring
// reporting gives an *Error matching ErrNotSupported.
func GetRings(ifname string) (*Rings, error) { return System().Rings(ifname) }

// SetRings changes the rings of ifname (RINGS_SET); only non-nil fields of u are sent. Needs
// CAP_NET_ADMIN (errors.Is(err, os.ErrPermission) otherwise). It does not journal: use Prepare for
// changes that must be undone after a crash.
func SetRings(ifname string, u RingsUpdate) error { return System().SetRings(ifname, u) }

// GetChannels returns the channel counts of ifname (CHANNELS_GET).
func GetChannels(ifname string) (*Channels, error) { return System().Channels(ifname) }

// SetChannels changes the channel counts of ifname (CHANNELS_SET). Needs CAP_NET_ADMIN. While a
// memory provider is bound the kernel refuses counts that would drop its queues.
func SetChannels(ifname string, u ChannelsUpdate) error { return System().SetChannels(ifname, u) }

// DriverInfo returns ETHTOOL_GDRVINFO of ifname.
func DriverInfo(ifname string) (*Driver, error) { return System().DriverInfo(ifname) }

// NtupleInfo returns the ntuple table of ifname and its rules (GRXCLSRLCNT, GRXCLSRLALL,
// GRXCLSRULE). A driver without ntuple support gives an *Error matching ErrNotSupported.
func NtupleInfo(ifname string) (*Ntuple, error) { return ntupleInfo(System(), ifname) }

// RSSInfo returns the RSS state of ifname: RX ring count (GRXRINGS), the main indirection table
// (GRXFHINDIR) and whether the driver has RSS contexts (probed with GRSSH on context 1).
func RSSInfo(ifname string) (*RSS, error) { return rssInfo(System(), ifname) }

func ntupleInfo(k Kernel, ifname string) (*Ntuple, error) {
	count, size, special, err := k.RuleCount(ifname)
	if err != nil {
		return nil, err
	}
	nt := &Ntuple{TableSize: size, Count: count, LocAny: special}
	locs, err := k.RuleLocations(ifname, count)
	if err != nil {
		return nil, err
	}
	for _, loc := range locs {
		r, err := k.Rule(ifname, loc)
		if err != nil {
			return nil, err
		}
		r.Location = loc
		nt.Rules = append(nt.Rules, *r)
	}
	return nt, nil
}

func rssInfo(k Kernel, ifname string) (*RSS, error) {
	indir, err := k.Indir(ifname)
	if err != nil {
		return nil, err
	}
	n, err := rxRings(k, ifname)
	if err != nil {
		return nil, err
	}
	rss := &RSS{RXRings: n, Indir: indir}
	if rss.Contexts, err = haveContexts(k, ifname); err != nil {
		return nil, err
	}
	return rss, nil
}

// rxRings is the number of RX rings RSS entries may name: GRXRINGS, or where the driver does not
// answer it (netdevsim on 7.x has an RSS table but no GRXRINGS) the channels' RX queue count, which
// is what the kernel falls back to as well.
func rxRings(k Kernel, ifname string) (uint32, error) {
	n, err := k.RXRings(ifname)
	if err == nil || !errors.Is(err, unix.EOPNOTSUPP) {
		return n, err
	}
	ch, cerr := k.Channels(ifname)
	if cerr != nil || ch.RXQueues() == 0 {
		return 0, err
	}
	return ch.RXQueues(), nil
}

// haveContexts probes RSS context support: the kernel answers GRSSH on a context ID with EOPNOTSUPP
// when the driver has no contexts, and ENOENT (or the table) when it has them.
func haveContexts(k Kernel, ifname string) (bool, error) {
	_, err := k.RSSContext(ifname, 1)
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return true, nil
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL):
		return false, nil
	}
	return false, err
}

// lowestFreeContext returns the context ID the kernel will allocate next (xa_alloc takes the lowest
// free ID from 1), so a crash between create and its journal entry can still find the context.
func lowestFreeContext(k Kernel, ifname string) (uint32, error) {
	for id := uint32(1); id < 1<<16; id++ {
		_, err := k.RSSContext(ifname, id)
		if errors.Is(err, unix.ENOENT) {
			return id, nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, errorf("find a free RSS context on %s: all IDs below 65536 are in use", ifname)
}
