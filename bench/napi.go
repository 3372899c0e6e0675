// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"slices"
	"sync"
	"syscall"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/report"
	"golang.org/x/sys/unix"
)

// napiState records, for a devmem target, which NAPI each flow's packets came through: the
// flows' sockets are kept as they get their engines, and at the end of the window each socket's
// SO_INCOMING_NAPI_ID is read next to the bound queues' NAPI ids (netdev queue-get), for the
// report's devmem.napi.
type napiState struct {
	mu    sync.Mutex
	conns map[int]syscall.RawConn
	rep   *report.DevmemNapi
}

// add keeps flow id's socket.
func (n *napiState) add(id int, rc syscall.RawConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns == nil {
		n.conns = map[int]syscall.RawConn{}
	}
	n.conns[id] = rc
}

// socketNapiID is the socket's SO_INCOMING_NAPI_ID (0 when the kernel named none or the socket
// is gone).
func socketNapiID(rc syscall.RawConn) uint32 {
	var id int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		id, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_INCOMING_NAPI_ID)
	}); err != nil || gerr != nil {
		return 0
	}
	return uint32(id)
}

// record reads the flows' and the bound queues' NAPI ids now; qs are the device's queues (nil
// when they could not be read: the queues' ids are then missing and no flow maps to a queue).
func (n *napiState) record(qs []bind.Queue, bound []uint32) {
	r := &report.DevmemNapi{Flows: []report.FlowNapi{}, Queues: []report.QueueNapi{}}
	for _, q := range qs {
		if q.Type == bind.QueueRX && slices.Contains(bound, q.ID) {
			r.Queues = append(r.Queues, report.QueueNapi{Queue: q.ID, NapiID: q.NapiID})
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, rc := range n.conns {
		fn := report.FlowNapi{Flow: id, NapiID: socketNapiID(rc), Queue: -1}
		for _, q := range r.Queues {
			if fn.NapiID != 0 && q.NapiID == fn.NapiID {
				fn.Queue = int(q.Queue)
			}
		}
		r.Flows = append(r.Flows, fn)
	}
	slices.SortFunc(r.Flows, func(a, b report.FlowNapi) int { return a.Flow - b.Flow })
	n.rep = r
}

// report returns what record read (nil before it ran).
func (n *napiState) report() *report.DevmemNapi {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rep
}

// recordNapi reads the NAPI ids of the flows and of the bound queues (end of the window).
func (f *devmemRXFlows) recordNapi() {
	if f.client == nil || f.binding == nil {
		return
	}
	f.mu.Lock()
	qs, err := f.client.Queues(f.ifindex)
	f.mu.Unlock()
	if err != nil {
		f.win.note(f.logf, "netdev queue", err)
		qs = nil
	}
	f.napi.record(qs, f.queues)
}

// withNapi adds the NAPI ids to a window's report d (nil stays nil).
func (f *devmemRXFlows) withNapi(d *report.Devmem) *report.Devmem {
	if d != nil {
		d.Napi = f.napi.report()
	}
	return d
}
