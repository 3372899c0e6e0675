// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package doctor decides whether a NIC is ready for devmem TCP, receive and send, and says exactly
// what to change: a checklist over the kernel's netdev ops, the driver, channels, header split,
// ntuple steering, RSS, each RX queue (NAPI, IRQ, CPUs, memory provider), XDP, udmabuf, CUDA and
// CAP_NET_ADMIN. Facts come through the System interface, so the verdict logic runs against fakes;
// Live is the real machine. Nothing here changes the NIC: the two bind probes send a memfd, which
// the kernel can never bind, and learn how far the kernel's checks got.
package doctor

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/nic"
	"golang.org/x/sys/unix"
)

// System is every fact the doctor looks at. Live() reads the machine; tests pass fakes. Errors that
// answer errors.Is(err, errors.ErrUnsupported) or nic.ErrNotSupported mean "the driver or kernel
// lacks this", which is itself a finding.
type System interface {
	KernelRelease() (string, error)
	Ifindex(ifname string) (int, error)
	// NetdevOps is the running kernel's netdev generic netlink op list.
	NetdevOps() ([]bind.Op, error)
	Queues(ifindex int) ([]bind.Queue, error)
	Napis(ifindex int) ([]bind.Napi, error)
	// ProbeBindRX and ProbeBindTX send bind-rx (one queue) and bind-tx with an fd that is not a
	// dma-buf. They return the kernel's refusal (a *bind.Error); nil would mean the kernel bound a
	// memfd, which it cannot.
	ProbeBindRX(ifindex int, queue uint32) error
	ProbeBindTX(ifindex int) error
	Driver(ifname string) (*nic.Driver, error)
	Channels(ifname string) (*nic.Channels, error)
	Rings(ifname string) (*nic.Rings, error)
	Ntuple(ifname string) (*nic.Ntuple, error)
	RSS(ifname string) (*nic.RSS, error)
	// Link reports whether ifindex is up and whether an XDP program is attached.
	Link(ifindex int) (Link, error)
	// IRQAffinity returns /proc/irq/N/smp_affinity_list ("0-3", "5").
	IRQAffinity(irq uint32) (string, error)
	// Udmabuf reports whether /dev/udmabuf exists and its size_limit_mb (0 when unreadable).
	Udmabuf() (present bool, sizeLimitMB int, err error)
	CapNetAdmin() (bool, error)
	// CUDA returns nil when GPU memory can back a dma-buf; gpu.ErrNoCUDA-style errors when the
	// binary lacks CUDA (CUDABuilt then reports false and the line is left out).
	CUDA() error
	CUDABuilt() bool
}

// Status is the verdict of one checklist line.
type Status string

// Statuses, worst last. Warn lines block nothing but come with a fix ncdevmem's setup or the user
// can apply; Fail lines block the verdicts they gate.
const (
	StatusOK   Status = "ok"
	StatusInfo Status = "info"
	StatusSkip Status = "skip"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

// Check is one line of the checklist.
type Check struct {
	ID     string   `json:"id"`     // stable key: "kernel", "netdev-ops", "driver", ...
	Title  string   `json:"title"`  // what was checked
	Status Status   `json:"status"` // ok, info, skip, warn, fail
	Detail string   `json:"detail"` // what was found
	Fix    []string `json:"fix,omitempty"`
	RX     bool     `json:"rx"`             // a fail here blocks devmem RX
	TX     bool     `json:"tx"`             // a fail here blocks devmem TX
	ZC     bool     `json:"zcrx,omitempty"` // a fail here blocks io_uring zcrx (doctor/zcrx.go)
}

// Queue is one RX queue as the doctor sees it.
type Queue struct {
	ID     uint32 `json:"id"`
	NapiID uint32 `json:"napi_id,omitempty"`
	IRQ    uint32 `json:"irq,omitempty"`
	CPUs   string `json:"cpus,omitempty"`     // the IRQ's smp_affinity_list
	Holder string `json:"holder,omitempty"`   // "dmabuf 3", "io_uring", "" when free
	AFXDP  bool   `json:"af_xdp,omitempty"`   // an AF_XDP socket uses it
	Leased bool   `json:"leased,omitempty"`   // leased to or from a virtual device
	Thread uint32 `json:"napi_pid,omitempty"` // threaded-NAPI kthread
}

// Verdict is the answer for one direction.
type Verdict struct {
	Ready bool `json:"ready"`
	// Reasons lists the failing lines' titles when not ready.
	Reasons []string `json:"reasons,omitempty"`
	// Fixes lists the warn lines' fixes that apply even when ready (ncdevmem's own setup applies the
	// header-split ones unless --no-setup).
	Fixes []string `json:"fixes,omitempty"`
}

// Report is the doctor's answer; its JSON form carries every fact the text shows.
type Report struct {
	Ifname  string  `json:"ifname"`
	Ifindex int     `json:"ifindex"`
	Kernel  string  `json:"kernel"`
	RX      Verdict `json:"rx"`
	TX      Verdict `json:"tx"`
	// ZCRX is the io_uring zero-copy receive verdict (doctor/zcrx.go); nil when not examined.
	ZCRX   *Verdict `json:"zcrx,omitempty"`
	Checks []Check  `json:"checks"`
	Queues []Queue  `json:"queues"`
	Facts  Facts    `json:"facts"`
}

// Facts are the raw findings behind the checklist, for machines; a nil pointer means the fact
// could not be read (the matching check says why).
type Facts struct {
	NetdevOps   []string      `json:"netdev_ops,omitempty"`
	CapNetAdmin bool          `json:"cap_net_admin"`
	Up          bool          `json:"up"`
	Driver      *DriverFacts  `json:"driver,omitempty"`
	Channels    *ChannelFacts `json:"channels,omitempty"`
	Rings       *RingFacts    `json:"rings,omitempty"`
	Ntuple      *NtupleFacts  `json:"ntuple,omitempty"`
	RSS         *RSSFacts     `json:"rss,omitempty"`
	XDP         *XDPFacts     `json:"xdp,omitempty"`
	Udmabuf     *UdmabufFacts `json:"udmabuf,omitempty"`
}

// DriverFacts is ETHTOOL_GDRVINFO.
type DriverFacts struct {
	Name     string `json:"name"`
	Version  string `json:"version,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	Bus      string `json:"bus,omitempty"`
}

// ChannelFacts is ethtool -l.
type ChannelFacts struct {
	RX          uint32 `json:"rx"`
	TX          uint32 `json:"tx"`
	Combined    uint32 `json:"combined"`
	Other       uint32 `json:"other"`
	RXMax       uint32 `json:"rx_max"`
	TXMax       uint32 `json:"tx_max"`
	CombinedMax uint32 `json:"combined_max"`
	OtherMax    uint32 `json:"other_max"`
}

// RingFacts is ethtool -g; HDSThresh and HDSThreshMax are nil when not reported.
type RingFacts struct {
	RX           uint32  `json:"rx"`
	RXMax        uint32  `json:"rx_max"`
	TX           uint32  `json:"tx"`
	TXMax        uint32  `json:"tx_max"`
	TCPDataSplit string  `json:"tcp_data_split"` // on, off, auto (not reported)
	HDSThresh    *uint32 `json:"hds_thresh,omitempty"`
	HDSThreshMax *uint32 `json:"hds_thresh_max,omitempty"`
}

// NtupleFacts is the ntuple rule table.
type NtupleFacts struct {
	Slots  uint32 `json:"slots"`
	Used   int    `json:"used"`
	LocAny bool   `json:"driver_picks_slot"`
}

// RSSFacts is ethtool -x.
type RSSFacts struct {
	RXRings   uint32 `json:"rx_rings"`
	TableSize int    `json:"table_size"`
	Contexts  bool   `json:"contexts"`
}

// XDPFacts is IFLA_XDP.
type XDPFacts struct {
	Attached bool   `json:"attached"`
	ProgID   uint32 `json:"prog_id,omitempty"`
}

// UdmabufFacts is /dev/udmabuf and its module parameter.
type UdmabufFacts struct {
	Present     bool `json:"present"`
	SizeLimitMB int  `json:"size_limit_mb,omitempty"`
}

// Ready reports whether the NIC is ready for the directions asked for.
func (r *Report) Ready(rx, tx bool) bool {
	return (!rx || r.RX.Ready) && (!tx || r.TX.Ready)
}

// devmem driver support, newest evidence (devmem-uapi.md §6): a hint only, the probes decide.
var (
	rxDrivers = []string{"bnxt_en", "bnge", "gve", "mlx5_core", "fbnic"}
	txDrivers = []string{"bnxt_en", "gve", "mlx5_core", "fbnic"}
)

func notSupported(err error) bool {
	return errors.Is(err, errors.ErrUnsupported) || errors.Is(err, nic.ErrNotSupported) || errors.Is(err, unix.EOPNOTSUPP)
}

// Run builds the report for ifname. It fails only when ifname does not exist; every other problem
// becomes a checklist line.
func Run(sys System, ifname string) (*Report, error) {
	ifindex, err := sys.Ifindex(ifname)
	if err != nil {
		return nil, fmt.Errorf("doctor %s: %w (see ip link)", ifname, err)
	}
	d := &run{sys: sys, ifname: ifname, ifindex: ifindex, rep: &Report{Ifname: ifname, Ifindex: ifindex}}
	d.kernel()
	d.capability()
	d.driver()
	d.link()
	d.queues()
	d.channels()
	d.rings()
	d.ntuple()
	d.rss()
	d.xdp()
	d.probeRX()
	d.probeTX()
	d.memory()
	d.zcrx()
	d.verdicts()
	return d.rep, nil
}

type run struct {
	sys     System
	ifname  string
	ifindex int
	rep     *Report
	ops     []bind.Op
	opsErr  error
	release string
	cap     bool
	rxCount int // RX queues per the netdev family, -1 unknown
	driverN string
	ln      *Link // nil when rtnetlink could not be asked
}

func (d *run) add(c Check) { d.rep.Checks = append(d.rep.Checks, c) }

func (d *run) has(op string) (bind.Op, bool) {
	i := slices.IndexFunc(d.ops, func(o bind.Op) bool { return o.Name == op })
	if i < 0 {
		return bind.Op{}, false
	}
	return d.ops[i], true
}

func (d *run) kernel() {
	rel, err := d.sys.KernelRelease()
	if err != nil {
		rel = "unknown (" + err.Error() + ")"
	}
	d.release = rel
	d.rep.Kernel = rel
	d.ops, d.opsErr = d.sys.NetdevOps()
	c := Check{ID: "netdev-ops", Title: "kernel netdev ops", RX: true, TX: true}
	if d.opsErr != nil {
		c.Status, c.Detail = StatusFail, fmt.Sprintf("kernel %s: %v", rel, d.opsErr)
		c.Fix = []string{"devmem needs Linux 6.12 or newer (6.15 for TX) with CONFIG_NET_DEVMEM"}
		d.add(c)
		return
	}
	var names []string
	for _, o := range d.ops {
		names = append(names, o.Name)
	}
	d.rep.Facts.NetdevOps = names
	_, rx := d.has("bind-rx")
	_, tx := d.has("bind-tx")
	c.Detail = fmt.Sprintf("kernel %s: %s", rel, strings.Join(names, " "))
	switch {
	case rx && tx:
		c.Status = StatusOK
	case rx:
		c.Status, c.RX = StatusFail, false
		c.Detail += "; no bind-tx"
		c.Fix = []string{"devmem TX needs Linux 6.15 or newer"}
	default:
		c.Status = StatusFail
		c.Detail += "; no bind-rx or bind-tx"
		c.Fix = []string{"devmem needs Linux 6.12 or newer (6.15 for TX) built with CONFIG_NET_DEVMEM"}
	}
	d.add(c)
}

func (d *run) capability() {
	ok, err := d.sys.CapNetAdmin()
	rxOp, _ := d.has("bind-rx")
	txOp, hasTX := d.has("bind-tx")
	c := Check{ID: "cap-net-admin", Title: "CAP_NET_ADMIN", RX: true, TX: hasTX && txOp.Admin()}
	switch {
	case err != nil:
		c.Status, c.Detail = StatusWarn, "cannot read capabilities: "+err.Error()
	case ok:
		c.Status, c.Detail = StatusOK, "effective"
		d.cap = true
		d.rep.Facts.CapNetAdmin = true
	default:
		c.Status = StatusFail
		c.Detail = "missing: bind-rx"
		if !rxOp.Admin() && len(d.ops) > 0 {
			c.Detail = "missing"
		}
		if c.TX {
			c.Detail += " and bind-tx need it"
		} else {
			c.Detail += " needs it (bind-tx does not on this kernel)"
		}
		c.Detail += ", and so do the NIC changes of the setup"
		c.Fix = []string{"run as root, or: setcap cap_net_admin+ep $(command -v ncdevmem)"}
	}
	d.add(c)
}

func (d *run) driver() {
	c := Check{ID: "driver", Title: "driver, firmware"}
	drv, err := d.sys.Driver(d.ifname)
	switch {
	case err != nil:
		c.Status, c.Detail = StatusWarn, "unknown: "+err.Error()
	default:
		d.driverN = drv.Driver
		d.rep.Facts.Driver = &DriverFacts{Name: drv.Driver, Version: strings.TrimSpace(drv.Version),
			Firmware: strings.TrimSpace(drv.Firmware), Bus: strings.TrimSpace(drv.Bus)}
		f := d.rep.Facts.Driver
		c.Detail = strings.TrimSpace(f.Name + " " + f.Version)
		c.Detail += fmt.Sprintf(", firmware %s, bus %s", orNone(f.Firmware), orNone(f.Bus))
		rx, tx := slices.Contains(rxDrivers, drv.Driver), slices.Contains(txDrivers, drv.Driver)
		switch {
		case rx && tx:
			c.Status = StatusOK
			c.Detail += "; a driver with devmem RX and TX"
		case rx:
			c.Status = StatusOK
			c.Detail += "; a driver with devmem RX (TX not known)"
		default:
			c.Status = StatusWarn
			c.Detail += "; not a driver known to support devmem (" + strings.Join(rxDrivers, ", ") + ")"
		}
	}
	d.add(c)
}

func orNone(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

func (d *run) queues() {
	c := Check{ID: "queues", Title: "RX queues free", RX: true}
	d.rxCount = -1
	qs, err := d.sys.Queues(d.ifindex)
	if err != nil {
		c.Status, c.Detail = StatusWarn, "queue-get: "+err.Error()
		d.add(c)
		return
	}
	napis, nerr := d.sys.Napis(d.ifindex)
	irqOf := map[uint32]bind.Napi{}
	for _, n := range napis {
		irqOf[n.ID] = n
	}
	var held []string
	var free []uint32
	d.rxCount = 0
	for _, q := range qs {
		if q.Type != bind.QueueRX {
			continue
		}
		d.rxCount++
		dq := Queue{ID: q.ID, NapiID: q.NapiID, AFXDP: q.XSK, Leased: q.Lease != nil}
		if n, ok := irqOf[q.NapiID]; ok && q.NapiID != 0 {
			dq.IRQ, dq.Thread = n.IRQ, n.PID
			if n.IRQ != 0 {
				if cpus, err := d.sys.IRQAffinity(n.IRQ); err == nil {
					dq.CPUs = cpus
				}
			}
		}
		switch {
		case q.Dmabuf != 0:
			dq.Holder = fmt.Sprintf("dmabuf %d", q.Dmabuf)
		case q.IOUring:
			dq.Holder = "io_uring"
		}
		if dq.Holder != "" || dq.AFXDP {
			h := dq.Holder
			if dq.AFXDP {
				h = strings.TrimPrefix(h+", AF_XDP", ", ")
			}
			held = append(held, fmt.Sprintf("%d (%s)", q.ID, h))
		} else {
			free = append(free, q.ID)
		}
		d.rep.Queues = append(d.rep.Queues, dq)
	}
	c.Detail = fmt.Sprintf("%d RX queue(s)", d.rxCount)
	if len(free) > 0 {
		c.Detail += "; free: " + bind.FormatQueues(free)
	}
	if len(held) > 0 {
		c.Detail += "; held: " + strings.Join(held, ", ")
	}
	if nerr != nil {
		c.Detail += "; napi-get: " + nerr.Error()
	}
	switch {
	case d.rxCount == 0 && d.ln != nil && !d.ln.Up:
		c.Status = StatusSkip
		c.Detail = "the device is down, and the kernel lists no queues of a down device"
	case d.rxCount == 0:
		c.Status = StatusFail
		c.Detail = "no RX queues"
	case len(free) == 0:
		c.Status = StatusFail
		c.Fix = []string{"stop the devmem/io_uring/AF_XDP user holding the queues"}
	case len(held) > 0:
		c.Status = StatusWarn
		c.Fix = []string{"bind only the free queues (-t/-q), or stop the user holding the others"}
	default:
		c.Status = StatusOK
	}
	d.add(c)
}

func (d *run) channels() {
	c := Check{ID: "channels", Title: "channels: 2+ RX queues", RX: true}
	ch, err := d.sys.Channels(d.ifname)
	n := d.rxCount
	switch {
	case err == nil:
		n = int(ch.RXQueues())
		d.rep.Facts.Channels = &ChannelFacts{RX: ch.RX, TX: ch.TX, Combined: ch.Combined, Other: ch.Other,
			RXMax: ch.RXMax, TXMax: ch.TXMax, CombinedMax: ch.CombinedMax, OtherMax: ch.OtherMax}
		c.Detail = fmt.Sprintf("rx %d tx %d combined %d (max rx %d tx %d combined %d)", ch.RX, ch.TX, ch.Combined, ch.RXMax, ch.TXMax, ch.CombinedMax)
	case notSupported(err):
		c.Detail = "the driver does not report channels"
		if n >= 0 {
			c.Detail += fmt.Sprintf("; the kernel lists %d RX queue(s)", n)
		}
	default:
		c.Detail = "channels: " + err.Error()
	}
	switch {
	case n < 0:
		c.Status = StatusWarn
	case n >= 2:
		c.Status = StatusOK
	default:
		c.Status = StatusFail
		c.Detail += "; devmem needs 2 RX queues, one for RSS and one to bind"
		if err == nil && max(ch.CombinedMax, ch.RXMax) >= 2 {
			// Two is what devmem needs; more RSS queues are the user's choice.
			if ch.CombinedMax >= 2 {
				c.Fix = []string{fmt.Sprintf("ethtool -L %s combined 2", d.ifname)}
			} else {
				c.Fix = []string{fmt.Sprintf("ethtool -L %s rx 2", d.ifname)}
			}
		} else {
			c.Detail += ", and the device cannot have 2"
		}
	}
	d.add(c)
}

func (d *run) rings() {
	split := Check{ID: "tcp-data-split", Title: "tcp-data-split on", RX: true}
	hds := Check{ID: "hds-thresh", Title: "hds-thresh 0", RX: true}
	r, err := d.sys.Rings(d.ifname)
	if err != nil {
		split.Status = StatusFail
		if notSupported(err) {
			split.Detail = "the driver has no ring settings, so no header split: payload cannot land in a dma-buf"
		} else {
			split.Detail = "rings: " + err.Error()
			split.Status = StatusWarn
		}
		hds.Status, hds.Detail = StatusSkip, "no ring settings"
		d.add(split)
		d.add(hds)
		return
	}
	d.rep.Facts.Rings = &RingFacts{RX: r.RX, RXMax: r.RXMax, TX: r.TX, TXMax: r.TXMax,
		TCPDataSplit: r.TCPDataSplit.String(), HDSThresh: r.HDSThresh, HDSThreshMax: r.HDSThreshMax}
	split.Detail = fmt.Sprintf("rings rx %d/%d tx %d/%d, tcp-data-split %s", r.RX, r.RXMax, r.TX, r.TXMax, r.TCPDataSplit)
	switch r.TCPDataSplit {
	case nic.TCPDataSplitEnabled:
		split.Status = StatusOK
		// The get reports the driver's state, bind-rx checks the configured one: a driver that
		// splits by default reads "on" while bind-rx still refuses an unset ("auto") setting.
		split.Detail += " (with --no-setup, set it explicitly once: ethtool -G " + d.ifname + " tcp-data-split on)"
	case nic.TCPDataSplitDisabled:
		split.Status = StatusWarn
		split.Detail += "; bind-rx refuses it off (ncdevmem turns it on unless --no-setup)"
		split.Fix = []string{fmt.Sprintf("ethtool -G %s tcp-data-split on", d.ifname)}
	default:
		split.Status = StatusFail
		split.Detail += " (the driver does not report header split; bind-rx needs it configured on)"
		split.Fix = []string{fmt.Sprintf("ethtool -G %s tcp-data-split on", d.ifname)}
	}
	switch {
	case r.HDSThresh == nil:
		hds.Status, hds.Detail = StatusInfo, "not reported (kernel before 6.14 or a driver without it): nothing to set"
	case *r.HDSThresh == 0:
		hds.Status, hds.Detail = StatusOK, "0"
	default:
		hds.Status = StatusWarn
		hds.Detail = fmt.Sprintf("%d; bind-rx refuses a non-zero threshold (ncdevmem sets 0 unless --no-setup)", *r.HDSThresh)
		hds.Fix = []string{fmt.Sprintf("ethtool -G %s hds-thresh 0", d.ifname)}
	}
	if r.HDSThreshMax != nil && hds.Status != StatusInfo {
		hds.Detail += fmt.Sprintf(" (max %d)", *r.HDSThreshMax)
	}
	d.add(split)
	d.add(hds)
}

func (d *run) ntuple() {
	c := Check{ID: "ntuple", Title: "ntuple rule slot", RX: true}
	nt, err := d.sys.Ntuple(d.ifname)
	if unreadable(&c, err, "ntuple", "no ntuple rules: flows cannot be steered to the devmem queues",
		fmt.Sprintf("ethtool -K %s ntuple on (if the NIC has flow steering), or steer another way and run with --no-setup", d.ifname)) {
		d.add(c)
		return
	}
	used := len(nt.Rules)
	d.rep.Facts.Ntuple = &NtupleFacts{Slots: nt.TableSize, Used: used, LocAny: nt.LocAny}
	c.Status, c.Detail = StatusOK, fmt.Sprintf("%d of %d slots used", used, nt.TableSize)
	if nt.LocAny {
		c.Detail += ", driver picks slots"
	}
	if nt.TableSize > 0 && used >= int(nt.TableSize) {
		c.Status = StatusFail
		c.Detail += "; no free slot"
		c.Fix = []string{fmt.Sprintf("ethtool -N %s delete %d (ethtool -n %s lists the rules)", d.ifname, nt.Rules[0].Location, d.ifname)}
	}
	d.add(c)
}

// unreadable fills c when a fact could not be read and reports whether it did: a fail with lack
// and fix when the driver does not support it, a warn with the error otherwise.
func unreadable(c *Check, err error, what, lack, fix string) bool {
	switch {
	case err == nil:
		return false
	case notSupported(err):
		c.Status, c.Detail, c.Fix = StatusFail, lack, []string{fix}
	default:
		c.Status, c.Detail = StatusWarn, what+": "+err.Error()
	}
	return true
}

func (d *run) rss() {
	c := Check{ID: "rss", Title: "RSS control", RX: true}
	r, err := d.sys.RSS(d.ifname)
	if unreadable(&c, err, "rss", "no RSS control: traffic cannot be kept off the devmem queues",
		"a NIC whose driver supports ethtool -X, or keep RSS off the devmem queues another way and run with --no-setup") {
		d.add(c)
		return
	}
	d.rep.Facts.RSS = &RSSFacts{RXRings: r.RXRings, TableSize: len(r.Indir), Contexts: r.Contexts}
	c.Status, c.Detail = StatusOK, fmt.Sprintf("%d RX rings, indirection table of %d entries", r.RXRings, len(r.Indir))
	if r.Contexts {
		c.Detail += ", RSS contexts supported"
	} else {
		c.Detail += ", no RSS contexts (ncdevmem narrows the main table instead)"
	}
	if len(r.Indir) == 0 {
		c.Status = StatusFail
		c.Detail += "; the driver has no indirection table"
	}
	d.add(c)
}

// link asks rtnetlink once, for the up check here and the XDP check later.
func (d *run) link() {
	c := Check{ID: "link", Title: "link up", RX: true, TX: true}
	ln, err := d.sys.Link(d.ifindex)
	switch {
	case err != nil:
		c.Status, c.Detail = StatusWarn, "rtnetlink: "+err.Error()
	case ln.Up:
		d.ln = &ln
		c.Status, c.Detail = StatusOK, "up"
	default:
		d.ln = &ln
		c.Status = StatusFail
		c.Detail = "down: no traffic, and the kernel lists no queues or NAPIs of a down device"
		c.Fix = []string{fmt.Sprintf("ip link set %s up", d.ifname)}
	}
	d.rep.Facts.Up = d.ln != nil && d.ln.Up
	d.add(c)
}

func (d *run) xdp() {
	c := Check{ID: "xdp", Title: "no XDP program", RX: true}
	if d.ln != nil {
		d.rep.Facts.XDP = &XDPFacts{Attached: d.ln.XDP, ProgID: d.ln.ProgID}
	}
	switch {
	case d.ln == nil:
		c.Status, c.Detail = StatusWarn, "unknown: rtnetlink did not answer"
	case d.ln.XDP:
		c.Status = StatusFail
		c.Detail = fmt.Sprintf("XDP program %d attached: bind-rx refuses a device with XDP", d.ln.ProgID)
		c.Fix = []string{fmt.Sprintf("ip link set %s xdp off", d.ifname)}
	default:
		c.Status, c.Detail = StatusOK, "none"
	}
	d.add(c)
}

// probeRX sends bind-rx with a memfd on the last free RX queue. Kernels from about 6.18 check the
// driver's queue API, the queue range and the DMA device before the fd, so a refusal of the fd
// there means the device passed them; older kernels check the fd first and teach nothing.
func (d *run) probeRX() {
	c := Check{ID: "bind-rx-probe", Title: "bind-rx probe", RX: true}
	q, ok := d.probeQueue()
	switch {
	case !d.hasOp("bind-rx"):
		c.Status, c.Detail = StatusSkip, "no bind-rx op"
	case !d.cap:
		c.Status, c.Detail = StatusSkip, "needs CAP_NET_ADMIN"
	case !ok:
		c.Status, c.Detail = StatusSkip, "no free RX queue to probe"
	default:
		d.interpretProbe(&c, d.sys.ProbeBindRX(d.ifindex, q), fmt.Sprintf("queue %d", q))
	}
	d.add(c)
}

func (d *run) probeTX() {
	c := Check{ID: "bind-tx-probe", Title: "bind-tx probe", TX: true}
	op, ok := d.has("bind-tx")
	switch {
	case !ok:
		c.Status, c.Detail = StatusFail, "no bind-tx op"
		c.Fix = []string{"devmem TX needs Linux 6.15 or newer"}
	case op.Admin() && !d.cap:
		c.Status, c.Detail = StatusSkip, "needs CAP_NET_ADMIN"
	default:
		d.interpretProbe(&c, d.sys.ProbeBindTX(d.ifindex), "")
	}
	d.add(c)
}

func (d *run) hasOp(name string) bool { _, ok := d.has(name); return ok }

func (d *run) probeQueue() (uint32, bool) {
	for i := len(d.rep.Queues) - 1; i >= 0; i-- {
		if q := d.rep.Queues[i]; q.Holder == "" && !q.AFXDP {
			return q.ID, true
		}
	}
	if d.rxCount < 0 {
		return 0, true // queue-get failed: probe queue 0 anyway, the answer may still help
	}
	return 0, false
}

// interpretProbe reads a bind refusal: a refusal of the memfd itself (EBADF/EINVAL without the
// kernel pointing at the device or a queue) means every device check before the fd passed.
func (d *run) interpretProbe(c *Check, err error, what string) {
	if what != "" {
		what = " on " + what
	}
	var be *bind.Error
	if err == nil {
		c.Status, c.Detail = StatusWarn, "the kernel accepted a memfd as a dma-buf"+what+"; unexpected, the binding was dropped at once"
		return
	}
	if !errors.As(err, &be) {
		c.Status, c.Detail = StatusWarn, "probe failed: "+err.Error()
		return
	}
	fdRefused := (be.Errno == unix.EBADF || be.Errno == unix.EINVAL) && be.Message == "" &&
		(be.Attr == "" || be.Attr == "fd") && be.MissingAttr == ""
	switch {
	case fdRefused && be.Op == "bind-tx":
		c.Status = StatusOK
		c.Detail = "the driver supports netmem TX: the kernel got as far as the (deliberately invalid) dma-buf"
	case fdRefused && fdCheckedLast(d.release):
		c.Status = StatusOK
		c.Detail = "the driver has the queue API and a DMA device" + what + ": the kernel got as far as the (deliberately invalid) dma-buf"
	case fdRefused:
		c.Status = StatusInfo
		c.Detail = "inconclusive: kernel " + d.release + " checks the dma-buf before the device; only a real dma-buf tests the driver"
	default:
		c.Status = StatusFail
		words := be.Message
		if words == "" {
			words = be.Errno.Error()
		}
		if be.Attr != "" {
			words += " [attribute " + be.Attr + "]"
		}
		c.Detail = be.Op + what + ": " + words
		if be.Advice != "" {
			c.Fix = []string{be.Advice}
		}
	}
}

// fdCheckedLast reports whether bind-rx on this kernel release checks the device and queues before
// the dma-buf fd: from 6.18 (netdev_queue_get_dma_dev, before dma_buf_get); 6.12 checks the fd
// first. Versions between are treated as fd-first, which only makes the probe inconclusive.
func fdCheckedLast(release string) bool {
	maj, minor, ok := parseRelease(release)
	return ok && (maj > 6 || maj == 6 && minor >= 18)
}

func parseRelease(s string) (major, minor int, ok bool) {
	a, rest, found := strings.Cut(s, ".")
	if !found {
		return 0, 0, false
	}
	b := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		b = rest[:i]
	}
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	return major, minor, err1 == nil && err2 == nil
}

func (d *run) memory() {
	u := Check{ID: "udmabuf", Title: "udmabuf", RX: true, TX: true}
	present, limit, err := d.sys.Udmabuf()
	if err == nil {
		d.rep.Facts.Udmabuf = &UdmabufFacts{Present: present, SizeLimitMB: limit}
	}
	cudaBuilt := d.sys.CUDABuilt()
	var cudaErr error
	if cudaBuilt {
		cudaErr = d.sys.CUDA()
	}
	gpuOK := cudaBuilt && cudaErr == nil
	switch {
	case err != nil:
		u.Status, u.Detail = StatusWarn, err.Error()
	case present:
		u.Status = StatusOK
		u.Detail = "/dev/udmabuf present"
		if limit > 0 {
			u.Detail += fmt.Sprintf(", size_limit_mb %d (dma-bufs up to %d MiB; raise with udmabuf.size_limit_mb=N on the kernel command line)", limit, limit)
		}
	case gpuOK:
		u.Status, u.Detail = StatusWarn, "/dev/udmabuf missing; GPU memory can still back the dma-buf"
		u.Fix = []string{"modprobe udmabuf (CONFIG_UDMABUF) for host memory"}
	default:
		u.Status, u.Detail = StatusFail, "/dev/udmabuf missing: no dma-buf for host memory"
		u.Fix = []string{"modprobe udmabuf (a kernel built with CONFIG_UDMABUF)"}
	}
	d.add(u)
	if !cudaBuilt {
		return
	}
	c := Check{ID: "cuda", Title: "CUDA dma-buf"}
	if cudaErr != nil {
		c.Status, c.Detail = StatusWarn, cudaErr.Error()
	} else {
		c.Status, c.Detail = StatusOK, "libcuda loads and a device exports dma-buf"
	}
	d.add(c)
}

func (d *run) verdicts() {
	for _, c := range d.rep.Checks {
		for _, v := range []struct {
			gate bool
			vd   *Verdict
		}{{c.RX, &d.rep.RX}, {c.TX, &d.rep.TX}, {c.ZC, d.rep.ZCRX}} {
			if !v.gate || v.vd == nil {
				continue
			}
			switch c.Status {
			case StatusFail:
				v.vd.Reasons = append(v.vd.Reasons, c.Title+": "+c.Detail)
			case StatusWarn:
				v.vd.Fixes = append(v.vd.Fixes, c.Fix...)
			}
		}
	}
	d.rep.RX.Ready = len(d.rep.RX.Reasons) == 0
	d.rep.TX.Ready = len(d.rep.TX.Reasons) == 0
	if d.rep.ZCRX != nil {
		d.rep.ZCRX.Ready = len(d.rep.ZCRX.Reasons) == 0
	}
}
