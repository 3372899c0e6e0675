// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/devmemtcp/ncdevmem/bench"
	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/internal/version"
	"github.com/devmemtcp/ncdevmem/metrics"
	"github.com/devmemtcp/ncdevmem/proto"
	"github.com/devmemtcp/ncdevmem/report"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// runOptions are the flags of `ncdevmem run`, as typed.
type runOptions struct {
	src, dst      string
	flows         int
	duration      string
	writeSize     string
	readSize      string
	msgZerocopy   bool
	msgTrunc      bool
	validate      string
	pinOff        int
	noPin         bool
	cpuSrc        string
	cpuDst        string
	jsonOut       string
	interval      time.Duration
	keyFile       string
	runs, warmup  int
	paceGbps      float64
	expects       []string
	devmemRX      bool
	devmemTX      bool
	ifname        string
	rxMem, txMem  string
	queues        string
	numRXQueues   int
	dmabufSize    string
	noSetup       bool
	dryRun        bool
	stateDir      string
	failLinear    bool
	rxPageSize    string
	rssContext    string
	zcrx          bool
	zcrxAreaSize  string
	validateGiven bool
	args          []string
}

func newRunCmd() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a test between two servers (or both in-process on loopback)",
		Long: `Run a test: the source server connects -n flows to the target server and sends for --time;
the target receives and validates. With neither --src nor --dst, both servers run in this process
on loopback: host memory, 5 s, one flow, validation on.

  ncdevmem run
  ncdevmem run --src hostA --dst hostB -n 4 --time 30s --json out.json
  ncdevmem run --src hostA --dst hostB --devmem-rx -f eth1 --rx-mem udmabuf -n 4`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.validateGiven = cmd.Flags().Changed("validate")
			o.args = os.Args
			return runRun(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.src, "src", "", "source server `HOST[:PORT]` (sends)")
	f.StringVar(&o.dst, "dst", "", "target server `HOST[:PORT]` (receives and validates)")
	f.IntVarP(&o.flows, "flows", "n", 1, "number of TCP connections")
	f.StringVarP(&o.duration, "time", "t", "5s", "measurement window (`DURATION`, e.g. 30s; a plain number is seconds)")
	f.StringVar(&o.writeSize, "write-size", "", "bytes per write on the source (`SIZE`, K/M/G suffixes; default 512K, and kperf's 64K for devmem and zcrx runs)")
	f.StringVar(&o.readSize, "read-size", "", "bytes per read on the target (`SIZE`; default 512K, and kperf's 64K for devmem and zcrx runs)")
	f.BoolVar(&o.msgZerocopy, "msg-zerocopy", false, "send with MSG_ZEROCOPY (completions counted, copied ones reported)")
	f.BoolVar(&o.msgTrunc, "msg-trunc", false, "receive with MSG_TRUNC (no copy; implies --validate off)")
	f.StringVar(&o.validate, "validate", "on", "payload check `MODE`: on, off or sample:N (one read or frag in N)")
	f.IntVar(&o.pinOff, "pin-off", 0, "between two hosts, pin each flow's app thread to its net CPU (SO_INCOMING_CPU) + `N`; on one host (loopback, namespaces) the two ends are pinned apart, N shifts both")
	f.BoolVar(&o.noPin, "no-pin", false, "leave app threads unpinned")
	f.StringVar(&o.cpuSrc, "cpu-src", "", "pin source app threads to this CPU `LIST` (e.g. 2-5), round-robin by flow")
	f.StringVar(&o.cpuDst, "cpu-dst", "", "pin target app threads to this CPU `LIST`")
	f.StringVar(&o.jsonOut, "json", "", "write the result as JSON to `FILE` (- for stdout; the text report then goes to stderr)")
	f.DurationVar(&o.interval, "interval", 0, "print a progress line every `DURATION` and record per-interval samples")
	f.StringVar(&o.keyFile, "key-file", "", "pre-shared key `FILE` the servers were started with")
	f.IntVar(&o.runs, "runs", 1, "measured runs")
	f.IntVar(&o.warmup, "warmup", 0, "runs done first and discarded")
	f.Float64Var(&o.paceGbps, "pace", 0, "cap each flow at `GBPS` with SO_MAX_PACING_RATE")
	f.StringArrayVar(&o.expects, "expect", nil, "gate the exit code on a figure: `EXPR` such as 'gbps>=180' (repeatable)")
	f.BoolVar(&o.devmemRX, "devmem-rx", false, "target receives into a dma-buf (devmem TCP)")
	f.BoolVar(&o.devmemTX, "devmem-tx", false, "source sends from a dma-buf (devmem TCP)")
	f.StringVarP(&o.ifname, "ifname", "f", "", "devmem interface `IF` (on each host)")
	f.StringVar(&o.rxMem, "rx-mem", "", "target dma-buf provider `KIND`: udmabuf, cuda or host")
	f.StringVar(&o.txMem, "tx-mem", "", "source dma-buf provider `KIND`: udmabuf, cuda or host")
	f.StringVar(&o.queues, "queues", "", "devmem RX queue `LIST` (e.g. 12-15)")
	f.IntVar(&o.numRXQueues, "num-rx-queues", 0, "devmem RX on the last `N` queues")
	f.StringVar(&o.dmabufSize, "dmabuf-size", "", "dma-buf `SIZE` (e.g. 128M)")
	f.BoolVar(&o.noSetup, "no-setup", false, "leave the NIC as configured (header split, RSS, steering are yours)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the NIC changes the setup would make, run nothing")
	f.StringVar(&o.stateDir, "state-dir", "", "`DIR` for the NIC restore journal (see 'ncdevmem cleanup')")
	f.BoolVar(&o.failLinear, "fail-linear", false, "fail on any SCM_DEVMEM_LINEAR frag (header split did not split)")
	f.StringVar(&o.rxPageSize, "rx-page-size", "", "devmem RX net_iov `SIZE` bind-rx asks for (a power of two, e.g. 16K; default a page; a udmabuf then uses 2 MiB hugetlb pages)")
	f.StringVar(&o.rssContext, "rss-context", "auto", "steer the devmem flows through an RSS context over the devmem queues: `auto` (when the driver has them), on or off")
	f.BoolVar(&o.zcrx, "zcrx", false, "target receives with io_uring zero-copy receive, one ifq per RX queue of -f, the queues chosen and prepared as for devmem RX (--queues, --num-rx-queues; --rx-mem host or udmabuf)")
	f.StringVar(&o.zcrxAreaSize, "zcrx-area-size", "", "zcrx area `SIZE`, split between the queues (default 62.5M, at most 128M)")
	return cmd
}

// noArgs rejects positional arguments with a usage error (exit 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q (see '%s --help')", args[0], cmd.CommandPath())
	}
	return nil
}

// parseSize parses 65536, 64K, 64KiB, 1M, 1G (binary multiples).
func parseSize(flag, s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "iB"), "B")
	mul := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k', 'K':
			mul = 1 << 10
		case 'm', 'M':
			mul = 1 << 20
		case 'g', 'G':
			mul = 1 << 30
		}
		if mul != 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mul {
		return 0, usageErrorf("%s %q: want a size such as 65536, 64K or 1M", flag, s)
	}
	return n * mul, nil
}

func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f <= 0 || f > bench.MaxDuration.Seconds() {
			return 0, usageErrorf("--time %q: want more than 0 s and at most %v", s, bench.MaxDuration)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, usageErrorf("--time %q: want a duration such as 10s or 2m", s)
	}
	return d, nil
}

// controlAddr adds the default port to HOST.
func controlAddr(flag, s string) (string, error) {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s, nil
	}
	h := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if h == "" || strings.ContainsAny(h, " /") {
		return "", usageErrorf("%s %q: want HOST or HOST:PORT", flag, s)
	}
	return net.JoinHostPort(h, strconv.Itoa(proto.DefaultPort)), nil
}

// spec turns the flags into a checked TestSpec, failing with a usage error.
func (o *runOptions) spec() (bench.TestSpec, error) {
	s := bench.DefaultSpec()
	var err error
	s.Flows = o.flows
	if s.Duration, err = parseDuration(o.duration); err != nil {
		return s, err
	}
	io := int64(bench.IOSizeFor(o.devmemRX || o.devmemTX || o.zcrx))
	ws, rs := io, io
	var err2 error
	if o.writeSize != "" {
		if ws, err2 = parseSize("--write-size", o.writeSize); err2 != nil {
			return s, err2
		}
	}
	if o.readSize != "" {
		if rs, err2 = parseSize("--read-size", o.readSize); err2 != nil {
			return s, err2
		}
	}
	if ws > bench.MaxIOSize || rs > bench.MaxIOSize {
		return s, usageErrorf("--write-size/--read-size: at most %d bytes", bench.MaxIOSize)
	}
	s.WriteSize, s.ReadSize = int(ws), int(rs)
	s.MsgZerocopy, s.MsgTrunc = o.msgZerocopy, o.msgTrunc
	v := o.validate
	if o.msgTrunc && !o.validateGiven {
		v = "off"
	}
	if s.Validate, err = bench.ParseValidate(v); err != nil {
		return s, usageErrorf("%v", err)
	}
	if o.paceGbps < 0 || math.IsNaN(o.paceGbps) || math.IsInf(o.paceGbps, 0) {
		return s, usageErrorf("--pace %v: want a rate in Gbps >= 0", o.paceGbps)
	}
	s.PaceBytes = uint64(o.paceGbps * 1e9 / 8)
	if o.interval < 0 {
		return s, usageErrorf("--interval %v: must not be negative", o.interval)
	}
	s.Interval = o.interval
	s.NoPin, s.PinOff = o.noPin, o.pinOff
	if s.CPUsSrc, err = bench.ParseList(o.cpuSrc); err != nil {
		return s, usageErrorf("--cpu-src: %v", err)
	}
	if s.CPUsDst, err = bench.ParseList(o.cpuDst); err != nil {
		return s, usageErrorf("--cpu-dst: %v", err)
	}
	if o.noPin && (o.pinOff != 0 || len(s.CPUsSrc)+len(s.CPUsDst) > 0) {
		return s, usageErrorf("--no-pin contradicts --pin-off/--cpu-src/--cpu-dst")
	}
	s.DevmemRX, s.DevmemTX, s.Ifname = o.devmemRX, o.devmemTX, o.ifname
	s.RxMem, s.TxMem, s.NumRXQueues = o.rxMem, o.txMem, o.numRXQueues
	for _, m := range []struct{ flag, v string }{{"--rx-mem", o.rxMem}, {"--tx-mem", o.txMem}} {
		if m.v == "" {
			continue
		}
		if m.v != "udmabuf" && m.v != "cuda" && m.v != "host" {
			return s, usageErrorf("%s %q: want udmabuf, cuda or host", m.flag, m.v)
		}
		// The servers allocate; when they run in this process, this binary's build decides.
		if o.src == "" && o.dst == "" {
			if err := dmabuf.CheckKind(m.v, dmabuf.OpenOptions{}); err != nil {
				return s, usageErrorf("%s %s: %v", m.flag, m.v, err)
			}
		}
	}
	if s.Queues, err = bench.ParseList(o.queues); err != nil {
		return s, usageErrorf("--queues: %v", err)
	}
	if o.dmabufSize != "" {
		if s.DmabufSize, err = parseSize("--dmabuf-size", o.dmabufSize); err != nil {
			return s, err
		}
	}
	s.NoSetup, s.DryRun, s.StateDir, s.FailLinear = o.noSetup, o.dryRun, o.stateDir, o.failLinear
	if o.rxPageSize != "" {
		n, err := parseSize("--rx-page-size", o.rxPageSize)
		if err != nil {
			return s, err
		}
		if n > bench.MaxRxPageSize {
			return s, usageErrorf("--rx-page-size %d: at most %d", n, bench.MaxRxPageSize)
		}
		s.RxPageSize = uint32(n)
	}
	if o.rssContext != "auto" {
		s.RSSContext = o.rssContext
	}
	s.Zcrx = o.zcrx
	if o.zcrxAreaSize != "" {
		if s.ZcrxAreaSize, err = parseSize("--zcrx-area-size", o.zcrxAreaSize); err != nil {
			return s, err
		}
	}
	if o.stateDir != "" && !o.devmemRX && !o.devmemTX && !o.zcrx {
		return s, usageErrorf("--state-dir only applies to devmem runs: add --devmem-rx or --devmem-tx")
	}
	if err := s.Check(); err != nil {
		return s, usageErrorf("%v", err)
	}
	if o.runs < 1 {
		return s, usageErrorf("--runs %d: want at least 1", o.runs)
	}
	if o.warmup < 0 {
		return s, usageErrorf("--warmup %d: must not be negative", o.warmup)
	}
	return s, nil
}

func runRun(ctx context.Context, o *runOptions, stdout, stderr io.Writer) error {
	spec, err := o.spec()
	if err != nil {
		return err
	}
	var exps []metrics.Expect
	for _, e := range o.expects {
		x, err := metrics.ParseExpect(e)
		if err != nil {
			return usageErrorf("--expect: %v", err)
		}
		exps = append(exps, x)
	}
	if (o.src == "") != (o.dst == "") {
		return usageErrorf("give both --src and --dst, or neither for the in-process run on loopback")
	}
	var key []byte
	if o.keyFile != "" {
		if key, err = proto.LoadKey(o.keyFile); err != nil {
			return usageErrorf("--key-file: %v", err)
		}
	}
	cl := &bench.Client{Key: key, Software: version.String(), Notes: stderr}
	if o.interval > 0 {
		cl.Progress = stderr
	}
	// The live progress line only on a terminal: piped or redirected output stays line by line, as
	// iperf3's and kperf's users expect.
	if isTerminal(stderr) {
		cl.Live = stderr
	}
	if o.src == "" {
		local, err := bench.StartLocal(ctx, func() *bench.Server {
			return &bench.Server{Key: key, Software: version.String()}
		})
		if err != nil {
			return err
		}
		defer local.Stop()
		cl.Src, cl.Dst = local.Src, local.Dst
	} else {
		if cl.Src, err = controlAddr("--src", o.src); err != nil {
			return err
		}
		if cl.Dst, err = controlAddr("--dst", o.dst); err != nil {
			return err
		}
	}
	// Create the JSON file's temporary twin before the run, so a bad path fails in a second, not
	// after the test, and an existing file is replaced only by a complete document: the result, or
	// the runs that finished and the failure (report.Failure).
	var jsonW io.Writer
	var jsonF *outputFile
	switch o.jsonOut {
	case "":
	case "-":
		jsonW = stdout
	default:
		if jsonF, err = createOutput(o.jsonOut); err != nil {
			return usageErrorf("--json %s: cannot create a file in %s: %v", o.jsonOut, filepath.Dir(o.jsonOut), err)
		}
		defer jsonF.Abort() // harmless once committed
		jsonW = jsonF
	}

	out, runErr := cl.Run(ctx, spec, o.runs, o.warmup)
	if runErr != nil && (out == nil || spec.DryRun) {
		return runErr
	}
	if spec.DryRun {
		fmt.Fprintln(stderr, "dry run: nothing was changed and no traffic was sent")
		return nil
	}
	res := &report.Result{
		Schema: report.SchemaVersion,
		Tool:   report.Tool{Version: version.Version, Commit: version.Commit, Args: o.args},
		Config: spec.Config(),
		Env:    out.Env,
		Warmup: o.warmup,
		Runs:   out.Runs,
	}
	res.Config.Src, res.Config.Dst = o.src, o.dst
	textW := stdout
	if o.jsonOut == "-" {
		textW = stderr
	}
	if runErr != nil {
		// A failed or interrupted run still writes its JSON: the finished runs and the failure.
		return writeFailed(res, runErr, textW, jsonW, jsonF, o.jsonOut)
	}
	if err := report.WriteText(textW, res); err != nil {
		return err
	}
	if jsonW != nil {
		if err := report.WriteJSON(jsonW, res); err != nil {
			return fmt.Errorf("write --json %s: %w", o.jsonOut, err)
		}
		if jsonF != nil {
			if err := jsonF.Commit(); err != nil {
				return fmt.Errorf("write --json %s: %w", o.jsonOut, err)
			}
		}
	}
	if fails := metrics.Check(res, exps); len(fails) > 0 {
		for _, f := range fails {
			fmt.Fprintf(stderr, "ncdevmem: expect failed: %s\n", f)
		}
		return &exitError{Code: exitFailure, Err: fmt.Errorf("%d --expect gate(s) failed", len(fails)), Silent: true}
	}
	return nil
}

// writeFailed reports the runs that finished before runErr and writes the JSON with the failure
// (its run, phase and message), then returns runErr for the exit code and the one-line message.
func writeFailed(res *report.Result, runErr error, textW, jsonW io.Writer, jsonF *outputFile, jsonOut string) error {
	f := &report.Failure{Message: runErr.Error()}
	var re *bench.RunError
	if errors.As(runErr, &re) {
		f.Run, f.Phase = re.Run, string(re.Phase)
	}
	var se *signalError
	if errors.As(runErr, &se) {
		f.Signal = signalName(se.sig)
	}
	res.Failure = f
	if res.Runs == nil {
		res.Runs = []report.Run{}
	}
	if len(res.Runs) > 0 {
		report.WriteText(textW, res)
	}
	if jsonW == nil {
		return runErr
	}
	if err := report.WriteJSON(jsonW, res); err != nil {
		return errors.Join(runErr, fmt.Errorf("write --json %s: %w", jsonOut, err))
	}
	if jsonF != nil {
		if err := jsonF.Commit(); err != nil {
			return errors.Join(runErr, fmt.Errorf("write --json %s: %w", jsonOut, err))
		}
	}
	return runErr
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
