// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"time"

	"github.com/devmemtcp/ncdevmem/report"
)

// Control messages after the proto handshake. One control connection carries any number of tests,
// one at a time:
//
//	client -> server  prepare {role, spec[, target, session]}
//	server -> client  ready   {session, data_port, notes, ...}
//	client -> server  start       (target first; the source once the target answered started)
//	server -> client  started     (target only: its window is open)
//	server -> client  progress {...} every spec.Interval
//	server -> client  result  {side, error}
//	server -> client  restored {error}  (the role's datapath is closed: NIC and dma-buf put back)
//
// abort from the client (or the control connection closing) ends the test at once; the server
// tears down and waits for the next prepare. A dry run ends after ready.
//
// Once a role's Setup succeeded, restored ends its test on every path: after the result, after a
// dry run's ready, after an error message, after an abort before start; only a control connection
// that is gone gets none. The client waits for it after a test that succeeded, so the next test,
// or whatever the user runs next, finds the NIC restored, and a failed restore fails the run
// instead of staying in the server's log.
const (
	typePrepare  = "prepare"
	typeReady    = "ready"
	typeStart    = "start"
	typeStarted  = "started"
	typeProgress = "progress"
	typeResult   = "result"
	typeRestored = "restored"
	typeAbort    = "abort"
)

type prepareMsg struct {
	Role Role     `json:"role"`
	Spec TestSpec `json:"spec"`
	// Source only: the target's data address and the session id its data connections present.
	Target  string `json:"target,omitempty"`
	Session []byte `json:"session,omitempty"`
	// TargetCPUs is the target's CPU count (source only), for spreading flows over CPUs.
	TargetCPUs int `json:"target_cpus,omitempty"`
	// Env asks the server to capture its environment into the result (first measured run).
	Env bool `json:"env,omitempty"`
	// TargetBoot is the target's kernel boot id (source only): equal to the source's own, both
	// roles share a host and there are no separate net CPUs to spread flows over.
	TargetBoot string `json:"target_boot,omitempty"`
	// SrcPorts (source only) are the source ports the target chose, one per flow (bench/flowrules.go).
	SrcPorts []uint16 `json:"src_ports,omitempty"`
}

// startMsg is the body of start (older clients send none).
type startMsg struct {
	// SharedHost: both servers run on one kernel (same boot id), so placement keeps the source's
	// and the target's workers apart instead of following kperf's net-CPU rule.
	SharedHost bool `json:"shared_host,omitempty"`
}

type readyMsg struct {
	Session  []byte   `json:"session,omitempty"`   // target: the id data connections must present
	DataPort int      `json:"data_port,omitempty"` // target: where the source connects
	SrcPorts []uint16 `json:"src_ports,omitempty"` // target: the source port of each flow, if it chose them
	Host     string   `json:"host"`
	NumCPU   int      `json:"num_cpu"`
	BootID   string   `json:"boot_id,omitempty"` // /proc/sys/kernel/random/boot_id: equal ids share a host
	Notes    []string `json:"notes,omitempty"`   // datapath Logf lines, for the user
}

type progressMsg struct {
	Elapsed float64 `json:"elapsed_sec"` // since the window started
	Bytes   uint64  `json:"bytes"`       // all flows, since the window started
	// Live marks a sample for the client's live progress line (every spec.Live), not an
	// --interval sample; AppIdle is then the idle percentage of the role's app CPUs since the
	// previous live sample (-1 unknown).
	Live    bool    `json:"live,omitempty"`
	AppIdle float64 `json:"app_idle,omitempty"`
}

type resultMsg struct {
	Side report.Side `json:"side"`
	// Start is when the window began, USec its length.
	Start time.Time   `json:"start"`
	USec  uint64      `json:"usec"`
	Env   *report.Env `json:"env,omitempty"`
	Notes []string    `json:"notes,omitempty"`
	// Error is the reason the role failed ("" = success): a validation mismatch, a flow that died.
	Error string `json:"error,omitempty"`
	// Kind classifies Error so the client can tell the cause from its consequences.
	Kind string `json:"kind,omitempty"`
}

// restoredMsg is the body of restored.
type restoredMsg struct {
	// Error is why the teardown (Flows.Close) failed, on one line with the command that finishes it
	// on the server's host; "" when everything the test changed is back.
	Error string `json:"error,omitempty"`
}

// Result kinds.
const (
	kindMismatch = "mismatch" // the target's validation failed
	kindAborted  = "aborted"  // the client aborted the test (the other side failed)
	kindShutdown = "shutdown" // the server is stopping
)
