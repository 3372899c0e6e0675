// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"net/netip"
	"syscall"

	"github.com/devmemtcp/ncdevmem/report"
	"github.com/devmemtcp/ncdevmem/rx"
	"github.com/devmemtcp/ncdevmem/tx"
)

// A Datapath supplies the memory and the engines of one role of a test: host memory (read/write,
// bench/host.go), devmem (bench/devmem.go) and io_uring zcrx (bench/zcrx.go), listed by
// builtinDatapaths. The kernel reaches them through Setup (see kernel.go).
//
// Lifecycle on one server, per test:
//
//	target: listen on the data port -> dp.Setup(ctx, Setup{Role: target, Local: listen addr})
//	        -> accept N flows -> Receiver(i, conn) per flow -> WindowStart -> run -> WindowEnd
//	        -> Report -> Close
//	source: dp.Setup(ctx, Setup{Role: source, Remote: target data addr}) -> dial N flows with
//	        Control -> Sender(i, conn) per flow -> WindowStart -> run -> WindowEnd -> Report -> Close
//
// Close runs on every path out of a successful Setup (error, abort, client crash) and must restore
// whatever Setup changed; its error reaches the client in the restored message (and fails a run
// that went well otherwise).
// Setup itself must leave nothing behind when it fails.
//
// With spec.DryRun, Setup changes nothing: it reports through Logf what it would do and returns
// Flows whose Close is a no-op. The server sends the Logf lines to the client, which prints them
// and runs no traffic. Logf lines are always forwarded to the client, so use them for warnings a
// user must see (e.g. "linear frags possible: hds-thresh is 256").
//
// Engines must honour the contracts in rx.Engine and tx.Engine: the bench stops a flow with the
// connection's read/write deadline.
type Datapath interface {
	// Name is what errors and logs call the datapath ("host", "devmem").
	Name() string
	// Handles reports whether this datapath serves role for spec. The host datapath handles a role
	// whose devmem flag is off.
	Handles(spec *TestSpec, role Role) bool
	// Setup prepares one role of one test. ctx ends when the test is aborted.
	Setup(ctx context.Context, s Setup) (Flows, error)
}

// Setup is what a datapath is told about the test it is preparing.
type Setup struct {
	Spec *TestSpec
	Role Role
	// Local is the target's data listening address (target role only): the destination address and
	// port flow steering has to match.
	Local netip.AddrPort
	// Remote is the target's data address the source will dial (source role only).
	Remote netip.AddrPort
	// Logf reports progress and warnings to the server's log (and, for the embedded default, the user).
	Logf func(format string, args ...any)

	// sys is the kernel the datapath works on (nil: the running one; see Setup.kernel).
	sys *devmemKernel
}

// kernel is the kernel this setup works on: the Server's (a test's simulator or NIC model), or
// the running one.
func (s Setup) kernel() *devmemKernel {
	if s.sys != nil {
		return s.sys
	}
	return runningKernel()
}

// Flows is a prepared role: it makes one engine per flow and keeps the role-wide counters.
type Flows interface {
	// Control is applied to each data socket before connect on the source (SO_BINDTODEVICE for devmem
	// TX), as net.Dialer.Control is; the target never calls it. Return nil to do nothing.
	Control(network, address string, c syscall.RawConn) error
	// Receiver returns the engine for flow id (0-based) on the target, called once per flow after the
	// flow is accepted and identified. Called only for the target role.
	Receiver(id int, rc syscall.RawConn) (rx.Engine, error)
	// Sender returns the engine for flow id on the source, called once per flow after it connected.
	// Called only for the source role.
	Sender(id int, rc syscall.RawConn) (tx.Engine, error)
	// WindowStart and WindowEnd bracket the measurement window, so counters such as qstats and
	// page-pool statistics are taken over exactly the window the bytes and CPU times cover.
	WindowStart() error
	WindowEnd() error
	// Report returns the role's devmem counters for the window (nil for the host datapath).
	Report() *report.Devmem
	// Close releases everything Setup acquired and restores the NIC; safe to call more than once.
	Close() error
}

// builtinDatapaths are this build's datapaths other than host memory, most specific first: the
// first that handles a role serves it, and host memory serves whatever none of them handles.
func builtinDatapaths() []Datapath { return []Datapath{zcrxDatapath{}, devmemDatapath{}} }

// selectDatapath returns the datapath that serves role for spec: the first of dps that handles
// it, else host memory (which handles every role whose devmem flag is off, and devmem is built in).
func selectDatapath(dps []Datapath, spec *TestSpec, role Role) Datapath {
	for _, dp := range dps {
		if dp.Handles(spec, role) {
			return dp
		}
	}
	return hostDatapath{}
}
