// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"fmt"
	"strconv"
	"strings"
)

// SteeringError says a flow's data did not land in the bound dma-buf: flow steering (ntuple rule
// or RSS) delivered it to a queue without the binding, or to another binding's queue.
type SteeringError struct {
	// Reason is what was seen: "data without a devmem cmsg" or "frag of dma-buf id N".
	Reason string
	Bytes  int    // bytes of the recvmsg that showed it
	NapiID uint32 // SO_INCOMING_NAPI_ID of the socket, 0 unknown
	Queue  int    // RX queue of NapiID, -1 unknown
	// QueueErr says why Queue is unknown.
	QueueErr error
	Ifname   string
	Bound    []uint32 // the queues the dma-buf is bound to
	DmabufID uint32   // the binding the flow should have used
	Rule     string   // the steering rule that should have matched, "" unknown
}

// Error names what arrived, the queue it arrived on, the bound queues and the rule to check.
func (e *SteeringError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "devmem rx: %s (%d bytes): flow steering error: the flow arrived on ", e.Reason, e.Bytes)
	switch {
	case e.Queue >= 0:
		fmt.Fprintf(&b, "rx queue %d (napi %d)", e.Queue, e.NapiID)
	case e.NapiID != 0:
		fmt.Fprintf(&b, "napi %d (queue unknown: %v)", e.NapiID, e.QueueErr)
	default:
		b.WriteString("a queue the kernel did not name (SO_INCOMING_NAPI_ID is 0: the device has no NAPI or busy polling ids)")
	}
	fmt.Fprintf(&b, ", not one of the queues bound to dma-buf %d (queues %s)", e.DmabufID, QueueList(e.Bound))
	if e.Rule != "" {
		fmt.Fprintf(&b, "; the rule that should have matched: %s", e.Rule)
	}
	dev := e.Ifname
	if dev == "" {
		dev = "IF"
	}
	fmt.Fprintf(&b, " (check it with: ethtool -n %s; and that RSS spreads only over the other queues: ethtool -x %s)", dev, dev)
	return b.String()
}

// LinearError is an SCM_DEVMEM_LINEAR frag under --fail-linear: payload reached host memory, so
// header split did not split this packet.
type LinearError struct {
	Size   uint32
	Offset uint64 // stream offset of the frag
	Ifname string
	// Unsplit: the bytes came as a whole packet without any devmem cmsg on a bound queue (no
	// dma-buf frag at all), not as an SCM_DEVMEM_LINEAR frag.
	Unsplit bool
}

// Error says where the linear bytes were and what to check on the NIC.
func (e *LinearError) Error() string {
	dev := e.Ifname
	if dev == "" {
		dev = "IF"
	}
	if e.Unsplit {
		return fmt.Sprintf("devmem rx: %d payload bytes at stream offset %d arrived on a bound queue as an unsplit packet (plain bytes, no dma-buf frag) and --fail-linear is set: header split did not split this packet (check: ethtool -g %s shows tcp-data-split on and hds-thresh 0)",
			e.Size, e.Offset, dev)
	}
	return fmt.Sprintf("devmem rx: %d payload bytes at stream offset %d arrived as SCM_DEVMEM_LINEAR (copied to host memory) and --fail-linear is set: header split did not split this packet (check: ethtool -g %s shows tcp-data-split on and hds-thresh 0)",
		e.Size, e.Offset, dev)
}

// QueueList prints queues as ranges: "14-15", "0,2,4-5".
func QueueList(q []uint32) string {
	if len(q) == 0 {
		return "none"
	}
	var b strings.Builder
	for i := 0; i < len(q); {
		j := i
		for j+1 < len(q) && q[j+1] == q[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(q[i]), 10))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.FormatUint(uint64(q[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}
