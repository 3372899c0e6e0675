// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/devmemtcp/ncdevmem/zcrx"
)

// Limits on what a TestSpec may ask for. They bound the memory a server commits to a client it may not
// trust (sizes arrive over the network) and match kperf's ceilings where kperf has one.
const (
	MaxFlows  = 1024
	MaxIOSize = 128 << 20 // kperf's --read-size/--write-size ceiling
	// DefaultIOSize is the default --write-size and --read-size; DevmemIOSize (kperf's) theirs in
	// devmem and zcrx runs, where what a call takes stays held in the dma-buf or area.
	DefaultIOSize = 512 << 10
	DevmemIOSize  = 64 << 10
	MaxDuration   = 24 * time.Hour
	// MaxBuffers bounds the per-flow I/O buffers one role allocates (flows x read or write size).
	MaxBuffers = 2 << 30
)

// IOSizeFor is the default --write-size and --read-size of a run: DefaultIOSize in host memory,
// DevmemIOSize when a dma-buf or zcrx area is in the path. What one call takes there stays held
// until its tokens or buffers go back, and softnic's pool-exhaustion test (a 1 MiB dma-buf) ended
// in retransmission timeouts with 512 KiB calls.
func IOSizeFor(zeroCopy bool) int {
	if zeroCopy {
		return DevmemIOSize
	}
	return DefaultIOSize
}

// Role is the part one server plays in a test.
type Role string

// The two roles of kperf's three-party model: the source connects the data flows and sends, the
// target listens, receives and validates.
const (
	RoleSource Role = "source"
	RoleTarget Role = "target"
)

// ValidateMode says how the target checks the payload stream.
type ValidateMode struct {
	// Every is 0 for off, 1 for every byte, N>1 for one read (or devmem frag) in N.
	Every int `json:"every"`
}

// ParseValidate parses the --validate flag: "on", "off" or "sample:N" (N >= 1).
func ParseValidate(s string) (ValidateMode, error) {
	switch s {
	case "on", "yes", "true":
		return ValidateMode{Every: 1}, nil
	case "off", "no", "false":
		return ValidateMode{}, nil
	}
	if n, ok := strings.CutPrefix(s, "sample:"); ok {
		v, err := strconv.Atoi(n)
		if err == nil && v >= 1 {
			return ValidateMode{Every: v}, nil
		}
	}
	return ValidateMode{}, fmt.Errorf("--validate %q: want on, off or sample:N with N >= 1", s)
}

// On reports whether any validation happens.
func (v ValidateMode) On() bool { return v.Every > 0 }

// Check reports whether the n-th read (or frag, counting from 0) of a flow is validated.
func (v ValidateMode) Check(n uint64) bool {
	return v.Every == 1 || (v.Every > 1 && n%uint64(v.Every) == 0)
}

// String gives the flag spelling back: "on", "off" or "sample:N".
func (v ValidateMode) String() string {
	switch v.Every {
	case 0:
		return "off"
	case 1:
		return "on"
	}
	return "sample:" + strconv.Itoa(v.Every)
}

// TestSpec is everything one test needs, as the client sends it to both servers in the control
// protocol's Prepare message (JSON). Each server reads the fields of its role; the datapath chosen
// for the role (see Datapath) reads the rest. Fields are only ever added; a server ignores fields it
// does not know, so keep new fields' zero value meaning "as before".
type TestSpec struct {
	// Flows is the number of TCP connections (-n). 1..MaxFlows.
	Flows int `json:"flows"`
	// Duration is the measurement window (--time).
	Duration time.Duration `json:"duration_ns"`
	// WriteSize is the bytes per write/sendmsg on the source; ReadSize per read/recvmsg on the target.
	WriteSize int `json:"write_size"`
	ReadSize  int `json:"read_size"`
	// MsgZerocopy sends with MSG_ZEROCOPY (host TX); MsgTrunc receives with MSG_TRUNC (host RX).
	MsgZerocopy bool `json:"msg_zerocopy,omitempty"`
	MsgTrunc    bool `json:"msg_trunc,omitempty"`
	// Validate is the target's payload check.
	Validate ValidateMode `json:"validate"`
	// PaceBytes caps each flow with SO_MAX_PACING_RATE, bytes per second; 0 = unpaced.
	PaceBytes uint64 `json:"pace_bytes,omitempty"`
	// Interval, when non-zero, makes each server stream progress samples on the control connection.
	Interval time.Duration `json:"interval_ns,omitempty"`
	// Live, when non-zero, makes each server send a live sample (bytes, app-CPU idle) this often,
	// for the client's progress line; it records nothing in the result.
	Live time.Duration `json:"live_ns,omitempty"`

	// Placement. NoPin leaves worker threads unpinned. Otherwise each flow's worker is pinned to its
	// net CPU (SO_INCOMING_CPU) + PinOff, unless the role's explicit list (CPUsSrc/CPUsDst, used
	// round-robin by flow index) is given.
	NoPin   bool  `json:"no_pin,omitempty"`
	PinOff  int   `json:"pin_off,omitempty"`
	CPUsSrc []int `json:"cpus_src,omitempty"`
	CPUsDst []int `json:"cpus_dst,omitempty"`

	// Devmem. DevmemRX makes the target receive into a dma-buf bound to Queues of Ifname (or the last
	// NumRXQueues queues when Queues is empty); DevmemTX makes the source send from a dma-buf bound for
	// TX on Ifname. RxMem/TxMem name the dma-buf provider ("udmabuf", "cuda"; "" = the datapath's
	// default), DmabufSize its size in bytes (0 = default).
	DevmemRX    bool   `json:"devmem_rx,omitempty"`
	DevmemTX    bool   `json:"devmem_tx,omitempty"`
	Ifname      string `json:"ifname,omitempty"`
	Queues      []int  `json:"queues,omitempty"`
	NumRXQueues int    `json:"num_rx_queues,omitempty"`
	RxMem       string `json:"rx_mem,omitempty"`
	TxMem       string `json:"tx_mem,omitempty"`
	DmabufSize  int64  `json:"dmabuf_size,omitempty"`
	// NoSetup leaves the NIC as it is (the user configured header split, RSS and steering); DryRun
	// prints the NIC changes the setup would make and runs nothing; StateDir is where the NIC journal
	// for `ncdevmem cleanup` lives ("" = default); FailLinear makes any SCM_DEVMEM_LINEAR frag fatal.
	NoSetup    bool   `json:"no_setup,omitempty"`
	DryRun     bool   `json:"dry_run,omitempty"`
	StateDir   string `json:"state_dir,omitempty"`
	FailLinear bool   `json:"fail_linear,omitempty"`
	// RxPageSize is the net_iov size bind-rx asks for (--rx-page-size; 0: a page); RSSContext is
	// --rss-context: "" or "auto" (an RSS context when the driver has them), "on" or "off".
	RxPageSize uint32 `json:"rx_page_size,omitempty"`
	RSSContext string `json:"rss_context,omitempty"`

	// Zcrx makes the target receive with io_uring zero-copy receive (bench/zcrx.go) on a queue of
	// Ifname chosen and prepared as for devmem RX; RxMem is the area ("host", the default, or
	// "udmabuf"), ZcrxAreaSize its size in bytes (0 = default).
	Zcrx         bool  `json:"zcrx,omitempty"`
	ZcrxAreaSize int64 `json:"zcrx_area_size,omitempty"`
}

// DefaultSpec is the embedded default: one flow, 5 s, 64 KiB reads and writes, validation on.
func DefaultSpec() TestSpec {
	return TestSpec{
		Flows:    1,
		Duration: 5 * time.Second,
		// 512 KiB per call, not kperf's 64 KiB: one loopback flow on a 2-CPU EPYC VM (1 MiB L2 a
		// core) made 23 Gbps with 64 KiB calls, 29 with 256 KiB, 42 with 512 KiB and 35 with 1 MiB,
		// whose buffers no longer fit in L2 (iperf3: 14 with -l 64K, 30 with -l 512K). The
		// sender's CPU is the limit there, so fewer calls per byte is more of it left for the
		// stack. --write-size/--read-size 64K gives kperf's.
		WriteSize: DefaultIOSize,
		ReadSize:  DefaultIOSize,
		Validate:  ValidateMode{Every: 1},
	}
}

// Check validates a spec before anything is set up: the client calls it on the flags, each server
// again on what arrived over the wire. The errors name the flag to change.
func (s *TestSpec) Check() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	s.checkSizes(bad)
	s.checkPaths(bad)
	s.checkZcrx(bad)
	s.checkDevmemOnly(bad)
	errs = append(errs, s.checkDevmemOpts()...)
	s.checkLists(bad)
	return errors.Join(errs...)
}

// badf collects one of Check's complaints.
type badf func(format string, a ...any)

// checkSizes checks the flow count, the window and the I/O sizes and periods.
func (s *TestSpec) checkSizes(bad badf) {
	if s.Flows < 1 || s.Flows > MaxFlows {
		bad("--flows %d: want 1..%d", s.Flows, MaxFlows)
	}
	if s.Duration <= 0 || s.Duration > MaxDuration {
		bad("--time %v: want more than 0 and at most %v", s.Duration, MaxDuration)
	}
	if s.WriteSize < 1 || s.WriteSize > MaxIOSize {
		bad("--write-size %d: want 1..%d", s.WriteSize, MaxIOSize)
	}
	if s.ReadSize < 1 || s.ReadSize > MaxIOSize {
		bad("--read-size %d: want 1..%d", s.ReadSize, MaxIOSize)
	}
	if s.Flows >= 1 && s.Flows <= MaxFlows {
		if b := int64(s.Flows) * int64(max(s.ReadSize, s.WriteSize+255)); b > MaxBuffers {
			bad("--flows %d with --read-size %d/--write-size %d needs %d MiB of buffers, limit %d MiB: use fewer flows or smaller sizes", s.Flows, s.ReadSize, s.WriteSize, b>>20, MaxBuffers>>20)
		}
	}
	if s.Validate.Every < 0 {
		bad("--validate: negative sample rate %d", s.Validate.Every)
	}
	if s.Interval < 0 {
		bad("--interval %v: must not be negative", s.Interval)
	}
	if s.Live < 0 {
		bad("live progress period %v: must not be negative", s.Live)
	}
}

// checkPaths checks that the receive and send paths asked for go together.
func (s *TestSpec) checkPaths(bad badf) {
	if s.MsgTrunc && s.Validate.On() {
		bad("--msg-trunc discards the payload, so it cannot be validated (add --validate off)")
	}
	if s.MsgTrunc && s.DevmemRX {
		bad("--msg-trunc and --devmem-rx are different receive paths; pick one")
	}
	if s.MsgZerocopy && s.DevmemTX {
		bad("--msg-zerocopy is implied by --devmem-tx; drop it")
	}
	if (s.DevmemRX || s.DevmemTX) && s.Ifname == "" {
		bad("--devmem-rx/--devmem-tx need the interface: add -f IFNAME")
	}
}

// checkZcrx checks the zcrx options.
func (s *TestSpec) checkZcrx(bad badf) {
	if !s.Zcrx {
		if s.ZcrxAreaSize != 0 {
			bad("--zcrx-area-size only applies to --zcrx runs")
		}
		return
	}
	switch {
	case s.DevmemRX:
		bad("--zcrx and --devmem-rx are two zero-copy receive paths for the same queue; pick one (run them one after the other to compare)")
	case s.Ifname == "":
		bad("--zcrx needs the interface whose queue it registers: add -f IFNAME")
	case s.MsgTrunc:
		bad("--msg-trunc and --zcrx are different receive paths; pick one")
	}
	if s.RxMem != "" && s.RxMem != "host" && s.RxMem != "udmabuf" {
		bad("--rx-mem %s: a zcrx area is host memory or a udmabuf dma-buf (--rx-mem host|udmabuf)", s.RxMem)
	}
	if s.DmabufSize != 0 {
		bad("--dmabuf-size sizes devmem's dma-buf; the zcrx area is --zcrx-area-size")
	}
	if s.ZcrxAreaSize != 0 {
		if err := zcrx.CheckArea(s.ZcrxAreaSize); err != nil {
			bad("--zcrx-area-size: %v", err)
		}
	}
}

// checkDevmemOnly refuses the devmem options in a run without devmem or zcrx.
func (s *TestSpec) checkDevmemOnly(bad badf) {
	if s.DevmemRX || s.DevmemTX || s.Zcrx {
		return
	}
	for name, set := range map[string]bool{
		"-f": s.Ifname != "", "--rx-mem": s.RxMem != "", "--tx-mem": s.TxMem != "",
		"--queues": len(s.Queues) > 0, "--num-rx-queues": s.NumRXQueues != 0,
		"--dmabuf-size": s.DmabufSize != 0, "--no-setup": s.NoSetup, "--dry-run": s.DryRun,
		"--fail-linear": s.FailLinear,
	} {
		if set {
			bad("%s only applies to devmem runs: add --devmem-rx or --devmem-tx", name)
		}
	}
}

// checkLists checks the queue and CPU choices.
func (s *TestSpec) checkLists(bad badf) {
	if len(s.Queues) > 0 && s.NumRXQueues != 0 {
		bad("--queues and --num-rx-queues both choose the devmem queues; give one")
	}
	if s.NumRXQueues < 0 {
		bad("--num-rx-queues %d: must not be negative", s.NumRXQueues)
	}
	for _, q := range s.Queues {
		if q < 0 {
			bad("--queues: negative queue %d", q)
		}
	}
	if s.DmabufSize < 0 {
		bad("--dmabuf-size %d: must not be negative", s.DmabufSize)
	}
	for _, l := range [][]int{s.CPUsSrc, s.CPUsDst} {
		for _, c := range l {
			if c < 0 {
				bad("--cpu-src/--cpu-dst: negative CPU %d", c)
			}
		}
	}
}

// ParseList parses a CPU or queue list such as "0-3,8,10-11" (ascending ranges, no duplicates).
func ParseList(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("list %q: %q is not a number >= 0", s, lo)
		}
		b := a
		if isRange {
			b, err = strconv.Atoi(hi)
			if err != nil || b < a {
				return nil, fmt.Errorf("list %q: range %q must be LOW-HIGH with LOW <= HIGH", s, part)
			}
		}
		if b-a > 4095 {
			return nil, fmt.Errorf("list %q: range %q is too long", s, part)
		}
		for i := a; i <= b; i++ {
			if seen[i] {
				return nil, fmt.Errorf("list %q: %d appears twice", s, i)
			}
			seen[i] = true
			out = append(out, i)
		}
	}
	return out, nil
}
