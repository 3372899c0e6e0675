// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package envinfo

import (
	"fmt"
	"sort"

	"github.com/devmemtcp/ncdevmem/nic"
)

// systemNIC reads the real NIC through package nic.
type systemNIC struct{}

func (systemNIC) Driver(ifname string) (*nic.Driver, error) { return nic.DriverInfo(ifname) }

func (systemNIC) Rings(ifname string) (map[string]uint64, string, *uint32, error) {
	r, err := nic.GetRings(ifname)
	if err != nil {
		return nil, "", nil, err
	}
	rings := map[string]uint64{"rx": uint64(r.RX), "rx_max": uint64(r.RXMax), "tx": uint64(r.TX), "tx_max": uint64(r.TXMax)}
	return rings, r.TCPDataSplit.String(), r.HDSThresh, nil
}

func (systemNIC) Channels(ifname string) (map[string]uint64, error) {
	c, err := nic.GetChannels(ifname)
	if err != nil {
		return nil, err
	}
	return map[string]uint64{
		"rx": uint64(c.RX), "tx": uint64(c.TX), "other": uint64(c.Other), "combined": uint64(c.Combined),
		"rx_max": uint64(c.RXMax), "tx_max": uint64(c.TXMax), "other_max": uint64(c.OtherMax), "combined_max": uint64(c.CombinedMax),
	}, nil
}

func (systemNIC) RSS(ifname string) (string, error) {
	r, err := nic.RSSInfo(ifname)
	if err != nil {
		return "", err
	}
	return rssSummary(r), nil
}

// rssSummary condenses the indirection table into what a comparison needs: its size, the queues
// it spreads over, whether the spread is even, and whether RSS contexts exist.
func rssSummary(r *nic.RSS) string {
	s := fmt.Sprintf("%d rx rings", r.RXRings)
	if len(r.Indir) > 0 {
		weight := map[int]int{}
		for _, q := range r.Indir {
			weight[int(q)]++
		}
		qs := make([]int, 0, len(weight))
		for q := range weight {
			qs = append(qs, q)
		}
		sort.Ints(qs)
		even := "even"
		for _, q := range qs {
			if weight[q] != weight[qs[0]] {
				even = "uneven"
			}
		}
		s += fmt.Sprintf(", %d entries over queues %s (%s)", len(r.Indir), cpuList(qs), even)
	}
	if r.Contexts {
		s += ", contexts supported"
	}
	return s
}
