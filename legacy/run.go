// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package legacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/devmem"
	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/rx"
	"github.com/devmemtcp/ncdevmem/tx"
	"github.com/devmemtcp/ncdevmem/udmabuf"
)

// Exit codes of the C tool: 0 success, 1 an error in RX/TX mode or in argument handling, and 255
// (run_devmem_tests() returning -1 from main) when probe mode finds the NIC unfit.
const (
	ExitOK         = 0
	ExitError      = 1
	ExitProbeFails = 255
)

// The C tool's dma-buf: 16000 pages of 4 KiB.
const (
	pageSize   = 4096
	dmabufSize = pageSize * 16000
	hugeSize   = 2 << 20
)

// HugePagesFor is how many 2 MiB huge pages the C tool's dma-buf takes when -b asks for rx pages
// above the page size (the buffer is rounded up to whole huge pages).
const HugePagesFor = (dmabufSize + hugeSize - 1) / hugeSize

// Binding is a dma-buf binding; Close unbinds.
type Binding interface {
	ID() uint32
	Close() error
}

// System is the kernel as the legacy tool uses it. The zero value is the real kernel; tests replace
// fields with the in-memory NIC (nic/nictest) and the devmem socket simulator.
type System struct {
	// NIC answers ethtool requests; nil is nic.System().
	NIC nic.Kernel
	// StateDir holds the NIC journal; "" is nic.DefaultStateDir.
	StateDir string
	// Alloc returns the dma-buf; nil allocates a udmabuf (hugetlb-backed when asked).
	Alloc func(size int64, hugetlb bool) (dmabuf.Buffer, error)
	// BindRX, BindRXEmpty and BindTX are the netdev binds; nil uses package bind.
	BindRX      func(req bind.RXRequest) (Binding, error)
	BindRXEmpty func(ifindex, nests, fd int) (Binding, error)
	BindTX      func(ifindex, fd int) (Binding, error)
	// RX and TX are the socket calls of the data path; nil is the running kernel.
	RX rx.DevmemSys
	TX tx.DevmemSys
	// QueueOfNapi maps a NAPI id of the device to its RX queue; nil asks the netdev family.
	QueueOfNapi func(ifindex int, napi uint32) (int, error)
}

func (s *System) queueOfNapi(ifindex int, napi uint32) (int, error) {
	if s.QueueOfNapi != nil {
		return s.QueueOfNapi(ifindex, napi)
	}
	c, err := bind.Dial()
	if err != nil {
		return -1, err
	}
	defer c.Close()
	qs, err := c.Queues(ifindex)
	if err != nil {
		return -1, err
	}
	q, ok := bind.QueueOfNapi(qs, napi)
	if !ok {
		return -1, fmt.Errorf("no RX queue has napi %d", napi)
	}
	return int(q), nil
}

func (s *System) nic() nic.Kernel {
	if s.NIC == nil {
		return nic.System()
	}
	return s.NIC
}

func (s *System) alloc(size int64, huge bool) (dmabuf.Buffer, error) {
	if s.Alloc != nil {
		return s.Alloc(size, huge)
	}
	return udmabuf.New(size, udmabuf.Options{Hugetlb: huge})
}

func (s *System) bindRX(req bind.RXRequest) (Binding, error) {
	if s.BindRX != nil {
		return s.BindRX(req)
	}
	return bind.BindRXWith(req)
}

func (s *System) bindRXEmpty(ifindex, nests, fd int) (Binding, error) {
	if s.BindRXEmpty != nil {
		return s.BindRXEmpty(ifindex, nests, fd)
	}
	return bind.BindRXEmptyQueues(ifindex, nests, fd)
}

func (s *System) bindTX(ifindex, fd int) (Binding, error) {
	if s.BindTX != nil {
		return s.BindTX(ifindex, fd)
	}
	return bind.BindTX(ifindex, fd)
}

func (s *System) rxSys() rx.DevmemSys {
	if s.RX == nil {
		return rx.Kernel{}
	}
	return s.RX
}

func (s *System) txSys() tx.DevmemSys {
	if s.TX == nil {
		return tx.Kernel{}
	}
	return s.TX
}

// tool carries one invocation's options, streams and kernel.
type tool struct {
	o       *Options
	sys     *System
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	ifindex int
	start   int // first RX queue
	num     int // RX queue count
	// devQueues is the device's RX queue count (rx + combined channels), -1 when unknown.
	devQueues int
	summary   summary
}

// summary is what --json writes.
type summary struct {
	Mode     string    `json:"mode"`
	Ifname   string    `json:"ifname"`
	Queues   []int     `json:"queues,omitempty"`
	DmabufID uint32    `json:"dmabuf_id,omitempty"`
	OK       bool      `json:"ok"`
	Error    string    `json:"error,omitempty"`
	RX       *rxStats  `json:"rx,omitempty"`
	TX       *txCounts `json:"tx,omitempty"`
	Probe    []string  `json:"probe,omitempty"` // the checks that passed, in order
}

// txCounts is the TX part of the summary.
type txCounts struct {
	Lines       uint64 `json:"lines"`
	Bytes       uint64 `json:"bytes"`
	Completions uint64 `json:"completions"`
	Copied      uint64 `json:"copied"`
}

// Run is the C ncdevmem's main: it parses args, runs the selected mode and returns the exit code.
// Diagnostics go to stderr as "ncdevmem: ..." lines; stdout carries only the payload (RX without
// -v) or one "Validated buffer" line per frag (RX with -v).
func Run(ctx context.Context, args []string, sys *System, stdin io.Reader, stdout, stderr io.Writer) int {
	if sys == nil {
		sys = &System{}
	}
	o, err := Parse(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ncdevmem: %v\n", err)
		return ExitError
	}
	t := &tool{o: o, sys: sys, stdin: stdin, stdout: stdout, stderr: stderr}
	t.summary.Mode, t.summary.Ifname = o.Mode().String(), o.Ifname
	code := t.run(ctx)
	t.summary.OK = code == ExitOK
	if o.JSON != "" {
		if err := t.writeJSON(); err != nil {
			fmt.Fprintf(stderr, "ncdevmem: --json %s: %v\n", o.JSON, err)
			if code == ExitOK {
				code = ExitError
			}
		}
	}
	return code
}

// printExtra lists the arguments after the options, as the C tool does.
func (t *tool) printExtra() {
	for _, a := range t.o.Extra {
		fmt.Fprintf(t.stderr, "extra arguments: %s\n", a)
	}
}

// fail prints the C tool's error line and records it for --json.
func (t *tool) fail(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if t.summary.Error == "" {
		t.summary.Error = msg
	}
	fmt.Fprintf(t.stderr, "ncdevmem: %s\n", msg)
}

func (t *tool) run(ctx context.Context) int {
	o := t.o
	if o.Ifname == "" {
		t.fail("Missing -f argument")
		return ExitError
	}
	k := t.sys.nic()
	idx, err := k.Ifindex(o.Ifname)
	if err != nil {
		// The C tool carries on with ifindex 0 and fails later; one clear line is kinder.
		t.fail("unknown interface %s: %v (check `ip link`; inside a network namespace, run there)", o.Ifname, err)
		return ExitError
	}
	t.ifindex = idx
	fmt.Fprintf(t.stderr, "using ifindex=%d\n", idx)

	devQueues := -1
	if ch, err := k.Channels(o.Ifname); err == nil {
		devQueues = int(ch.RXQueues())
	} else {
		fmt.Fprintf(t.stderr, "ethtool channels of %s: %v\n", o.Ifname, err)
	}
	start, num, err := o.Queues(devQueues)
	if err != nil {
		if err == errMissingT || err == errMissingQ {
			// The C tool lists extra arguments before it checks -t and -q.
			t.printExtra()
		}
		t.fail("%v", err)
		return ExitError
	}
	t.start, t.num, t.devQueues = start, num, devQueues
	for q := start; q < start+num; q++ {
		t.summary.Queues = append(t.summary.Queues, q)
	}
	if o.Mode() == ModeProbe {
		if err := t.probe(ctx); err != nil {
			t.fail("%v", err)
			return ExitProbeFails
		}
		return ExitOK
	}
	if o.StartQueue < 0 && o.NumQueues < 0 {
		fmt.Fprintf(t.stderr, "using queues %d..%d\n", start, start+num)
	}
	t.printExtra()
	if o.Server == "" {
		t.fail("Missing -s argument")
		return ExitError
	}
	if o.Port == "" {
		t.fail("Missing -p argument")
		return ExitError
	}
	mem, err := t.allocate()
	if err != nil {
		t.fail("Failed to allocate memory buffer: %v", err)
		return ExitError
	}
	defer mem.Close()
	if o.Mode() == ModeRX {
		err = t.server(ctx, mem)
	} else {
		err = t.client(ctx, mem)
	}
	if err != nil {
		t.fail("%v", err)
		return ExitError
	}
	return ExitOK
}

// allocate makes the C tool's dma-buf: 16000 pages, on 2 MiB hugepages when -b asks for rx pages
// larger than a page.
func (t *tool) allocate() (dmabuf.Buffer, error) {
	size, huge := int64(dmabufSize), t.o.RxPageSize > pageSize
	if huge {
		size = (size + hugeSize - 1) / hugeSize * hugeSize
	}
	return t.sys.alloc(size, huge)
}

// queues returns the RX queues to bind.
func (t *tool) queues() []uint32 {
	q := make([]uint32, t.num)
	for i := range q {
		q[i] = uint32(t.start + i)
	}
	return q
}

// parseAddress turns -s/-c and -p into an address as the C tool's parse_address does: IPv4 becomes
// IPv4-mapped IPv6 (the sockets are AF_INET6), the port is atoi'd.
func parseAddress(addr, port string) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IPv4 or IPv6 address", addr)
	}
	if a.Is4() {
		a = netip.AddrFrom16(a.As16())
	}
	p := atoi(port)
	if p < 0 || p > 65535 {
		return netip.AddrPort{}, fmt.Errorf("port %q out of range", port)
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// open runs the shared devmem setup path (package devmem, as `ncdevmem run` does): the journaled
// NIC preparation for flows unless -n, then, unless noBind, bind-rx of mem to the queues. The
// caller allocated mem first, as the C tool does, and keeps owning it.
func (t *tool) open(ctx context.Context, flows []nic.Flow, mem dmabuf.Buffer, noSetup, noBind bool) (*devmem.Setup, error) {
	noCtx := false
	return devmem.Open(ctx, devmem.Config{
		Ifname: t.o.Ifname, Ifindex: t.ifindex, Queues: t.queues(), Flows: flows, NoSetup: noSetup,
		StateDir: t.sys.StateDir, UseRSSContext: &noCtx, Log: t.stderr, NIC: t.sys.NIC,
		Buffer: mem, NoBind: noBind, RxPageSize: t.o.RxPageSize,
		BindRX: func(req bind.RXRequest) (devmem.Binding, error) { return t.sys.bindRX(req) },
	})
}

// close tears the setup down (unbind, restore the NIC) and reports a failure on stderr (the run's
// own error wins).
func (t *tool) close(s *devmem.Setup) {
	if s == nil {
		return
	}
	if err := s.Close(); err != nil {
		fmt.Fprintf(t.stderr, "ncdevmem: restoring %s: %v (run `ncdevmem cleanup -f %s`)\n", t.o.Ifname, err, t.o.Ifname)
	}
}

// headerSplit sets tcp-data-split (on, with hds-thresh 0 where reported; or the driver default)
// and prints the resulting state as the C tool does.
func (t *tool) headerSplit(on bool) error {
	k := t.sys.nic()
	split := nic.TCPDataSplitUnknown
	u := nic.RingsUpdate{TCPDataSplit: &split}
	if on {
		split = nic.TCPDataSplitEnabled
		if r, err := k.Rings(t.o.Ifname); err == nil && r.HDSThresh != nil {
			zero := uint32(0)
			u.HDSThresh = &zero
		}
	}
	if err := k.SetRings(t.o.Ifname, u); err != nil {
		return err
	}
	if r, err := k.Rings(t.o.Ifname); err == nil {
		fmt.Fprintf(t.stderr, "TCP header split: %s\n", r.TCPDataSplit)
	}
	return nil
}

func (t *tool) writeJSON() error {
	b, err := json.MarshalIndent(&t.summary, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if t.o.JSON == "-" {
		_, err = t.stderr.Write(b) // stdout belongs to the payload
		return err
	}
	return os.WriteFile(t.o.JSON, b, 0o644)
}

// errClosed reports that the run was interrupted.
var errInterrupted = errors.New("interrupted")
