// SPDX-License-Identifier: MIT

// Package report defines the result of an ncdevmem run (the versioned JSON schema every other
// package produces or consumes) and renders it: kperf-style text, JSON, CSV and Go benchmark format.
//
// Schema rules: fields are only ever added. A change that removes or renames a field, or changes a
// unit, bumps SchemaVersion. Units are in the field names' doc comments; percentages are 0..100.
package report

import "time"

// SchemaVersion is the version of the JSON document written by `ncdevmem run --json`.
const SchemaVersion = 1

// Result is one invocation of `ncdevmem run`: the configuration, the environment of both hosts and
// every measured run (warm-up runs are not included).
type Result struct {
	Schema int    `json:"schema"` // SchemaVersion
	Tool   Tool   `json:"tool"`
	Config Config `json:"config"`
	// Env is the environment each host ran in, keyed by role: "source" and "target".
	Env    map[string]*Env `json:"env,omitempty"`
	Warmup int             `json:"warmup"` // runs done and discarded before Runs
	Runs   []Run           `json:"runs"`
	// Failure is why the invocation stopped before all its runs finished (absent on success):
	// Runs then holds the runs that did finish.
	Failure *Failure `json:"failure,omitempty"`
}

// Failure is the run that failed or was interrupted, in which phase, and why.
type Failure struct {
	Run   int    `json:"run"`   // 0-based index among all runs, warm-up included
	Phase string `json:"phase"` // see SCHEMA.md: connect, handshake, setup, window, drain, between
	// Message is the error as the command printed it.
	Message string `json:"message"`
	// Signal names the signal that interrupted the run ("SIGINT", "SIGTERM"); absent for a failure.
	Signal string `json:"signal,omitempty"`
}

// Tool identifies the binary and how it was invoked.
type Tool struct {
	Version string   `json:"version"`
	Commit  string   `json:"commit,omitempty"`
	Args    []string `json:"args"` // the command line, argv[0] included
}

// Config is what was asked for.
type Config struct {
	Src         string  `json:"src"` // source server address, "" for in-process
	Dst         string  `json:"dst"` // target server address, "" for in-process
	Flows       int     `json:"flows"`
	DurationSec float64 `json:"duration_sec"`
	WriteSize   int     `json:"write_size"`
	ReadSize    int     `json:"read_size"`
	MsgZerocopy bool    `json:"msg_zerocopy"`
	MsgTrunc    bool    `json:"msg_trunc"`
	Validate    string  `json:"validate"` // "on", "off" or "sample:N"
	PaceGbps    float64 `json:"pace_gbps,omitempty"`
	DevmemRX    bool    `json:"devmem_rx"`
	DevmemTX    bool    `json:"devmem_tx"`
	RxMem       string  `json:"rx_mem,omitempty"` // "host", "udmabuf", "cuda"
	TxMem       string  `json:"tx_mem,omitempty"`
	Ifname      string  `json:"ifname,omitempty"`
	Queues      []int   `json:"queues,omitempty"`
	DmabufSize  int64   `json:"dmabuf_size,omitempty"`
}

// Run is one measured test: both sides over the same window.
type Run struct {
	Index    int       `json:"index"`
	Start    time.Time `json:"start"`
	Duration float64   `json:"duration_sec"` // measured window, seconds
	Source   Side      `json:"source"`
	Target   Side      `json:"target"`
	// Intervals holds per-interval samples when --interval was given.
	Intervals []Interval `json:"intervals,omitempty"`
	// SharedHost is true when source and target ran on one kernel (loopback, or namespaces of one
	// machine): their CPU numbers then name the same CPUs, and Warnings can compare them.
	SharedHost bool `json:"shared_host,omitempty"`
	// Warnings are placement problems the figures suffer from (see PlacementWarnings).
	Warnings []string `json:"warnings,omitempty"`
}

// Side is what one host measured.
type Side struct {
	Host  string `json:"host"`
	Flows []Flow `json:"flows"`
	// CPUs lists every CPU that carried a flow's softirq (net) or app thread (app) on this host.
	CPUs   []CPU   `json:"cpus"`
	Devmem *Devmem `json:"devmem,omitempty"`
}

// Flow is one TCP connection as seen from one side.
type Flow struct {
	ID     int     `json:"id"`
	Dir    string  `json:"dir"` // "tx" or "rx"
	Bytes  uint64  `json:"bytes"`
	USec   uint64  `json:"usec"`    // the window the bytes were counted in, microseconds
	Gbps   float64 `json:"gbps"`    // Bytes*8/USec/1000
	NetCPU int     `json:"net_cpu"` // SO_INCOMING_CPU when the window opened, -1 unknown
	AppCPU int     `json:"app_cpu"` // CPU the worker was pinned to, -1 unpinned
	// ThreadCPUs are the CPUs the flow's worker thread was seen on, and SoftirqCPUs those its
	// receive softirq was seen on (SO_INCOMING_CPU), sampled every 200 ms (every 200 ms x flows/32 beyond 32 flows) through the window and at its end;
	// ascending, absent when unknown.
	ThreadCPUs  []int `json:"thread_cpus,omitempty"`
	SoftirqCPUs []int `json:"softirq_cpus,omitempty"`
	TCP         *TCP  `json:"tcp,omitempty"` // TCP_INFO at the end of the window
	ZC          *ZC   `json:"zerocopy,omitempty"`
}

// TCP is the part of TCP_INFO the report shows.
type TCP struct {
	Retrans       uint32 `json:"retrans"`       // tcpi_total_retrans
	Reord         uint32 `json:"reord"`         // tcpi_reordering
	RTTus         uint32 `json:"rtt_us"`        // tcpi_rtt
	RTTVarUs      uint32 `json:"rttvar_us"`     // tcpi_rttvar
	DeliveredCE   uint32 `json:"delivered_ce"`  // tcpi_delivered_ce
	SndWnd        uint32 `json:"snd_wnd"`       // tcpi_snd_wnd, bytes
	Cwnd          uint32 `json:"cwnd"`          // tcpi_snd_cwnd, segments
	DeliveryRateB uint64 `json:"delivery_rate"` // tcpi_delivery_rate, bytes per second
}

// ZC counts MSG_ZEROCOPY completions on a sending socket.
type ZC struct {
	Sends       uint64 `json:"sends"`       // sendmsg calls with MSG_ZEROCOPY
	Completions uint64 `json:"completions"` // notifications covered by completion ranges
	Copied      uint64 `json:"copied"`      // completions flagged SO_EE_CODE_ZEROCOPY_COPIED
}

// CPU is one CPU's time split over the window, in percent (the six add up to about 100).
type CPU struct {
	CPU  int     `json:"cpu"`
	Role string  `json:"role"` // "net", "app" or "net+app"
	Usr  float64 `json:"usr"`  // user+nice
	Sys  float64 `json:"sys"`
	Idle float64 `json:"idle"`
	Iow  float64 `json:"iow"`
	Irq  float64 `json:"irq"`
	Sirq float64 `json:"sirq"`
	// Steal is time taken by the hypervisor, in percent of the same total, which it is not part of
	// (kperf ignores steal; on a shared VM it explains lost throughput).
	Steal float64 `json:"steal,omitempty"`
}

// Devmem holds the devmem counters of one side (RX or TX), zero when devmem was not used.
type Devmem struct {
	DmabufBytes      uint64       `json:"dmabuf_bytes"`
	LinearBytes      uint64       `json:"linear_bytes"`
	Frags            uint64       `json:"frags"`
	PageAlignedFrags uint64       `json:"page_aligned_frags"`
	FragHist         []HistBucket `json:"frag_size_hist,omitempty"`
	Tokens           uint64       `json:"tokens"`
	DontneedCalls    uint64       `json:"dontneed_calls"`
	ShortDontneed    uint64       `json:"short_dontneed"` // calls that freed fewer frags than asked
	// Qstats and PagePool are deltas over the window for the bound queues, by counter name.
	Qstats   map[string]uint64 `json:"qstats,omitempty"`
	PagePool map[string]uint64 `json:"page_pool,omitempty"`
	// Zcrx holds the io_uring zero-copy receive counters when the target received with --zcrx
	// (the dma-buf fields above are then zero; Qstats and PagePool cover the zcrx queue).
	Zcrx *Zcrx `json:"zcrx,omitempty"`
	// Napi (target, devmem RX) says where the flows met the NIC, read at the end of the window.
	Napi *DevmemNapi `json:"napi,omitempty"`
}

// DevmemNapi pairs each target flow's socket NAPI id (SO_INCOMING_NAPI_ID) with the NAPI ids of
// the bound queues (netdev queue-get): a flow whose payload came through the binding has one of
// the bound queues' ids.
type DevmemNapi struct {
	Flows  []FlowNapi  `json:"flows"`
	Queues []QueueNapi `json:"queues"`
}

// FlowNapi is one flow's socket NAPI id and the bound queue that NAPI serves (-1: none of them).
type FlowNapi struct {
	Flow   int    `json:"flow"`
	NapiID uint32 `json:"napi_id"` // 0: the kernel named none
	Queue  int    `json:"queue"`
}

// QueueNapi is one bound RX queue and its NAPI id (0: the queue has no NAPI instance).
type QueueNapi struct {
	Queue  uint32 `json:"queue"`
	NapiID uint32 `json:"napi_id"`
}

// Zcrx are the io_uring zero-copy receive (zcrx) counters of the target over the window.
type Zcrx struct {
	Queue         uint32  `json:"queue"`          // the RX queue the ifq is registered on
	Area          string  `json:"area"`           // "host" or "udmabuf"
	AreaBytes     uint64  `json:"area_bytes"`     // size of the registered area
	BufLen        uint32  `json:"buf_len"`        // the kernel's buffer size in the area
	Bytes         uint64  `json:"bytes"`          // payload completed by RECV_ZC
	Completions   uint64  `json:"completions"`    // RECV_ZC data completions
	AvgCompletion float64 `json:"avg_completion"` // bytes per completion
	RefillBatches uint64  `json:"refill_batches"` // refill ring tail publications
	RefillEntries uint64  `json:"refill_entries"` // buffers handed back
	RefillStalls  uint64  `json:"refill_stalls"`  // returns that waited for refill ring space
	Rearms        uint64  `json:"rearms"`         // multishot RECV_ZC re-armed after ENOSPC/ENOMEM
	// CopyCounted is false when the kernel keeps no copy-fallback counters (zcrx_stats: absent
	// from 6.18, present in 7.3); CopyCount and CopyBytes are then 0 and mean "unknown".
	CopyCounted bool `json:"copy_counted"`
	// CopyCount is the kernel's zcrx_stats.copy_count: its header calls it copy-fallback CQEs, but
	// 7.3 counts copied frags (385 for 2178 completions of an all-copied loopback run).
	CopyCount uint64 `json:"copy_count"`
	// CopyBytes is zcrx_stats.copy_bytes: bytes copied from frags instead of handed over (7.3
	// leaves out payload copied from an skb's linear part).
	CopyBytes uint64 `json:"copy_bytes"`
}

// HistBucket counts frags whose size is at most Le bytes (and above the previous bucket's Le).
type HistBucket struct {
	Le    uint64 `json:"le"`
	Count uint64 `json:"count"`
}

// Interval is a sample taken every --interval during a run.
type Interval struct {
	StartSec float64 `json:"start_sec"`
	EndSec   float64 `json:"end_sec"`
	TxBytes  uint64  `json:"tx_bytes"`
	RxBytes  uint64  `json:"rx_bytes"`
	Gbps     float64 `json:"gbps"` // received
}

// Env is the environment of one host: what a before/after comparison must hold equal.
type Env struct {
	Hostname      string   `json:"hostname"`
	KernelRelease string   `json:"kernel_release"` // uname -r
	KernelVersion string   `json:"kernel_version"` // uname -v (build)
	CPUModel      string   `json:"cpu_model"`
	NumCPU        int      `json:"num_cpu"`
	Governor      string   `json:"governor,omitempty"`
	ToolVersion   string   `json:"tool_version"`
	Cmdline       []string `json:"cmdline,omitempty"`
	// NIC facts, present when an interface was named.
	Ifname      string            `json:"ifname,omitempty"`
	Driver      string            `json:"driver,omitempty"`
	Firmware    string            `json:"firmware,omitempty"`
	Rings       map[string]uint64 `json:"rings,omitempty"`
	Channels    map[string]uint64 `json:"channels,omitempty"`
	HeaderSplit string            `json:"header_split,omitempty"`
	HDSThresh   *uint32           `json:"hds_thresh,omitempty"`
	RSS         string            `json:"rss,omitempty"`          // summary of the indirection table
	IRQAffinity map[string]string `json:"irq_affinity,omitempty"` // queue -> CPU list
	Extra       map[string]string `json:"extra,omitempty"`
}
