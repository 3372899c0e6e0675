// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nic

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/devmemtcp/ncdevmem/nic/ethtool"
	"golang.org/x/sys/unix"
)

// The journal is a text file, one record per line: "<crc32c hex> <kind> key=value ...". Each record
// says how to undo a change and is on disk (file and directory fsync'd) before the change is made,
// so after a crash at any point the journal covers every change. A torn last line (power cut
// mid-write) is ignored: its change was never started. "undone seq=N" marks record N (1-based)
// as already undone, so a restore interrupted by a second crash resumes where it stopped.

const (
	recBegin          = "begin"           // ifname, ifindex, pid
	recChannels       = "channels"        // old channel counts
	recRings          = "rings"           // old tcp-data-split / hds-thresh ("-" = untouched)
	recIndir          = "indir"           // old main table, or default
	recContextPending = "context-pending" // about to create a context; predicted id and its table
	recContext        = "context"         // created context id and its table
	recRulePending    = "rule-pending"    // about to insert a rule; locations that existed before
	recRule           = "rule"            // inserted rule at loc
	recUndone         = "undone"          // record seq has been undone
)

// ErrNoJournal is returned (wrapped) by Cleanup when there is nothing to clean up.
var ErrNoJournal = errors.New("no journal")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type record struct {
	Kind     string
	Ifname   string
	Ifindex  int
	PID      int
	Channels *Channels
	Split    *TCPDataSplit
	HDS      *uint32
	Default  bool
	Table    []uint32
	ID       uint32
	Loc      uint32
	Existing []uint32
	Rule     Rule
	Seq      int
}

// marshal renders the record as one line without the checksum.
func (r *record) marshal() string {
	var b strings.Builder
	b.WriteString(r.Kind)
	kv := func(k, v string) { b.WriteString(" " + k + "=" + v) }
	u := func(k string, v uint32) { kv(k, strconv.FormatUint(uint64(v), 10)) }
	switch r.Kind {
	case recBegin:
		kv("ifname", r.Ifname)
		kv("ifindex", strconv.Itoa(r.Ifindex))
		kv("pid", strconv.Itoa(r.PID))
	case recChannels:
		u("rx", r.Channels.RX)
		u("tx", r.Channels.TX)
		u("other", r.Channels.Other)
		u("combined", r.Channels.Combined)
	case recRings:
		if r.Split != nil {
			u("tcp-data-split", uint32(*r.Split))
		} else {
			kv("tcp-data-split", "-")
		}
		if r.HDS != nil {
			u("hds-thresh", *r.HDS)
		} else {
			kv("hds-thresh", "-")
		}
	case recIndir:
		if r.Default {
			kv("table", "default")
		} else {
			kv("table", joinU32(r.Table))
		}
	case recContextPending, recContext:
		u("id", r.ID)
		kv("table", joinU32(r.Table))
	case recRulePending, recRule:
		u("loc", r.Loc)
		if r.Kind == recRulePending {
			kv("existing", joinU32(r.Existing))
		}
		u("flow", r.Rule.FlowType)
		kv("src", addrString(r.Rule.Src.Addr()))
		u("sport", uint32(r.Rule.Src.Port()))
		kv("dst", addrString(r.Rule.Dst.Addr()))
		u("dport", uint32(r.Rule.Dst.Port()))
		kv("queue", strconv.FormatUint(r.Rule.Queue, 10))
		u("context", r.Rule.Context)
	case recUndone:
		kv("seq", strconv.Itoa(r.Seq))
	}
	return b.String()
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

func joinU32(v []uint32) string {
	if len(v) == 0 {
		return "-"
	}
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatUint(uint64(x), 10)
	}
	return strings.Join(s, ",")
}

// line is the record with its checksum and newline, as written.
func (r *record) line() []byte { return checksumLine(r.marshal()) }

func checksumLine(body string) []byte {
	return fmt.Appendf(nil, "%08x %s\n", crc32.Checksum([]byte(body), crcTable), body)
}

// parseJournal decodes a journal. A last line that is incomplete or fails its checksum is a torn
// write and is dropped; a bad line before the last is corruption. valid is the length of the good
// prefix: appends must start there.
func parseJournal(b []byte) (recs []record, valid int, err error) {
	lines := bytes.SplitAfter(b, []byte("\n"))
	for i, ln := range lines {
		if len(ln) == 0 {
			continue
		}
		last := i == len(lines)-1 || (i == len(lines)-2 && len(lines[len(lines)-1]) == 0)
		r, err := parseLine(ln)
		if err != nil {
			if last {
				break
			}
			return nil, 0, fmt.Errorf("journal line %d: %w", i+1, err)
		}
		if i == 0 && r.Kind != recBegin {
			return nil, 0, fmt.Errorf("journal line 1: starts with %q, want %q", r.Kind, recBegin)
		}
		if i > 0 && r.Kind == recBegin {
			return nil, 0, fmt.Errorf("journal line %d: second %q record", i+1, recBegin)
		}
		if r.Kind == recUndone && (r.Seq < 2 || r.Seq > len(recs)) {
			return nil, 0, fmt.Errorf("journal line %d: undone record %d does not exist", i+1, r.Seq)
		}
		recs = append(recs, r)
		valid += len(ln)
	}
	return recs, valid, nil
}

func parseLine(ln []byte) (record, error) {
	body, err := checkedBody(ln)
	if err != nil {
		return record{}, err
	}
	fields := strings.Split(string(body), " ")
	kv := map[string]string{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return record{Kind: fields[0]}, fmt.Errorf("field %q is not key=value", f)
		}
		if _, dup := kv[k]; dup {
			return record{Kind: fields[0]}, fmt.Errorf("field %q twice", k)
		}
		kv[k] = v
	}
	p := fieldParser{kv: kv}
	r, err := p.record(fields[0])
	if err != nil {
		return r, err
	}
	if p.err == nil && len(p.used) != len(kv) {
		p.fail("unexpected fields in %q record", r.Kind)
	}
	return r, p.err
}

// checkedBody returns the record text of a journal line after checking its newline and checksum.
func checkedBody(ln []byte) ([]byte, error) {
	if len(ln) == 0 || ln[len(ln)-1] != '\n' {
		return nil, errors.New("incomplete line")
	}
	ln = ln[:len(ln)-1]
	if len(ln) < 10 || ln[8] != ' ' {
		return nil, errors.New("no checksum")
	}
	sum, err := strconv.ParseUint(string(ln[:8]), 16, 32)
	if err != nil {
		return nil, errors.New("bad checksum field")
	}
	body := ln[9:]
	if crc32.Checksum(body, crcTable) != uint32(sum) {
		return nil, errors.New("checksum mismatch")
	}
	return body, nil
}

// record decodes the fields of a record of kind; field errors collect in p.err. Only an unknown
// kind is returned as an error.
func (p *fieldParser) record(kind string) (record, error) {
	r := record{Kind: kind}
	switch kind {
	case recBegin:
		r.Ifname = p.str("ifname")
		r.Ifindex = int(p.u32("ifindex"))
		r.PID = int(p.u32("pid"))
		if p.err == nil {
			p.err = checkIfname(r.Ifname)
		}
	case recChannels:
		r.Channels = &Channels{RX: p.u32("rx"), TX: p.u32("tx"), Other: p.u32("other"), Combined: p.u32("combined")}
	case recRings:
		if p.str("tcp-data-split") != "-" {
			v := TCPDataSplit(p.u32("tcp-data-split"))
			if v > TCPDataSplitEnabled {
				p.fail("tcp-data-split %d out of range", v)
			}
			r.Split = &v
		}
		if p.str("hds-thresh") != "-" {
			v := p.u32("hds-thresh")
			r.HDS = &v
		}
	case recIndir:
		if p.str("table") == "default" {
			r.Default = true
		} else if r.Table = p.list("table"); len(r.Table) == 0 {
			p.fail("empty table")
		}
	case recContextPending, recContext:
		r.ID = p.u32("id")
		r.Table = p.list("table")
	case recRulePending, recRule:
		r.Loc = p.u32("loc")
		if r.Kind == recRulePending {
			r.Existing = p.list("existing")
		}
		r.Rule = p.rule(r.Loc)
	case recUndone:
		r.Seq = int(p.u32("seq"))
	default:
		return r, fmt.Errorf("unknown record %q", r.Kind)
	}
	return r, nil
}

// rule decodes the match and destination of a rule record at loc.
func (p *fieldParser) rule(loc uint32) Rule {
	r := Rule{
		Location: loc,
		FlowType: p.u32("flow"),
		Src:      netip.AddrPortFrom(p.addr("src"), uint16(p.port("sport"))),
		Dst:      netip.AddrPortFrom(p.addr("dst"), uint16(p.port("dport"))),
		Queue:    p.u64("queue"),
		Context:  p.u32("context"),
	}
	if r.FlowType != unix.TCP_V4_FLOW && r.FlowType != unix.TCP_V6_FLOW {
		p.fail("flow type %d is not TCP", r.FlowType)
	}
	return r
}

type fieldParser struct {
	kv   map[string]string
	used map[string]bool
	err  error
}

func (p *fieldParser) fail(format string, a ...any) {
	if p.err == nil {
		p.err = fmt.Errorf(format, a...)
	}
}

func (p *fieldParser) str(k string) string {
	v, ok := p.kv[k]
	if !ok {
		p.fail("missing %s", k)
	}
	if p.used == nil {
		p.used = map[string]bool{}
	}
	p.used[k] = true
	return v
}

func (p *fieldParser) u64(k string) uint64 {
	s := p.str(k)
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		p.fail("%s=%q is not a number", k, s)
	}
	return v
}

func (p *fieldParser) u32(k string) uint32 {
	v := p.u64(k)
	if v > 1<<32-1 {
		p.fail("%s=%d out of range", k, v)
	}
	return uint32(v)
}

func (p *fieldParser) port(k string) uint32 {
	v := p.u32(k)
	if v > 1<<16-1 {
		p.fail("%s=%d is not a port", k, v)
	}
	return v
}

func (p *fieldParser) addr(k string) netip.Addr {
	s := p.str(k)
	if s == "-" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		p.fail("%s=%q is not an address", k, s)
	}
	return a
}

func (p *fieldParser) list(k string) []uint32 {
	s := p.str(k)
	if s == "-" {
		return nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > ethtool.MaxIndir {
		p.fail("%s has %d entries", k, len(parts))
		return nil
	}
	out := make([]uint32, 0, len(parts))
	for _, x := range parts {
		v, err := strconv.ParseUint(x, 10, 32)
		if err != nil {
			p.fail("%s entry %q is not a number", k, x)
			return nil
		}
		out = append(out, uint32(v))
	}
	return out
}

// JournalPath is where the journal of ifname lives under stateDir (empty = the default). Interface
// names are per network namespace, so outside the initial namespace the name carries the
// namespace's inode: "eth1@netns-4026532281.journal". Cleanup must run in the namespace of the run.
func JournalPath(stateDir, ifname string) string {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	name := ifname
	var st unix.Stat_t
	// thread-self: a caller may have switched only its locked OS thread into the namespace.
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err == nil && st.Ino != uapi.PROC_NET_INIT_INO {
		name += "@netns-" + strconv.FormatUint(st.Ino, 10)
	}
	return filepath.Join(stateDir, name+".journal")
}

func journalPath(dir, ifname string) string { return JournalPath(dir, ifname) }

// ForeignJournals lists journals for ifname under stateDir that belong to other network
// namespaces than the caller's: cleanup for those must run inside their namespace.
func ForeignJournals(stateDir, ifname string) []string {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	if checkIfname(ifname) != nil {
		return nil
	}
	mine := JournalPath(stateDir, ifname)
	var out []string
	for _, pat := range []string{ifname + ".journal", ifname + "@netns-*.journal"} {
		m, _ := filepath.Glob(filepath.Join(stateDir, pat))
		for _, p := range m {
			if p != mine {
				out = append(out, p)
			}
		}
	}
	return out
}

// journal is an open journal being appended to; it holds an exclusive flock so Cleanup can tell a
// live run from a crashed one.
type journal struct {
	f    *os.File
	path string
	n    int // records written, including begin
}

// createJournal makes the journal for ifname; it fails if one exists (another run, or a crash).
func createJournal(dir, ifname string) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w (changing the NIC needs root; or pick a writable --state-dir)", err)
	}
	path := journalPath(dir, ifname)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, dirtyError(dir, ifname)
	}
	if err != nil {
		return nil, fmt.Errorf("create journal: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("lock journal %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return &journal{f: f, path: path}, nil
}

// errDamaged is matched by openJournal's error for a journal that does not parse.
var errDamaged = errors.New("journal is damaged")

// journalBusyError says a live process holds the journal's lock.
type journalBusyError struct{ PID int }

func (e *journalBusyError) Error() string { return fmt.Sprintf("journal locked by pid %d", e.PID) }

// openJournal opens an existing journal to replay it: locked first (so the records read are final),
// parsed, a torn last line cut off so new records start on their own line, positioned at the end.
func openJournal(path string) (*journal, []record, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	j := &journal{f: f, path: path}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		busy := &journalBusyError{}
		if b, rerr := io.ReadAll(f); rerr == nil {
			if recs, _, perr := parseJournal(b); perr == nil && len(recs) > 0 {
				busy.PID = recs[0].PID
			}
		}
		j.close()
		return nil, nil, busy
	}
	b, err := io.ReadAll(f)
	if err != nil {
		j.close()
		return nil, nil, fmt.Errorf("read journal %s: %w", path, err)
	}
	recs, valid, err := parseJournal(b)
	if err != nil {
		j.close()
		return nil, nil, fmt.Errorf("%w: %s: %w", errDamaged, path, err)
	}
	if valid != len(b) {
		if err := f.Truncate(int64(valid)); err != nil {
			j.close()
			return nil, nil, fmt.Errorf("cut the torn last line of %s: %w", path, err)
		}
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		j.close()
		return nil, nil, fmt.Errorf("journal %s: %w", path, err)
	}
	// O_APPEND is not set (Truncate needs O_RDWR); the offset is at the end and only we write.
	j.n = len(recs)
	return j, recs, nil
}

// append writes r and makes it durable before returning.
func (j *journal) append(r record) error {
	if _, err := j.f.Write(r.line()); err != nil {
		return fmt.Errorf("write journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync journal %s: %w", j.path, err)
	}
	j.n++
	return nil
}

// remove deletes the journal: the NIC is back as it was.
func (j *journal) remove() error {
	if err := os.Remove(j.path); err != nil {
		return fmt.Errorf("remove journal: %w", err)
	}
	err := syncDir(filepath.Dir(j.path))
	j.f.Close()
	return err
}

func (j *journal) close() { j.f.Close() }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync state directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync state directory %s: %w", dir, err)
	}
	return nil
}

// dirtyError says a journal exists for ifname and what to do.
func dirtyError(dir, ifname string) error {
	cmd := "ncdevmem cleanup -f " + ifname
	if dir != DefaultStateDir {
		cmd += " --state-dir " + dir
	}
	return fmt.Errorf("prepare %s: a journal of an earlier run exists (%s): that run crashed or is still running; run `%s`", ifname, journalPath(dir, ifname), cmd)
}

// CheckClean returns nil when no journal exists for ifname under stateDir (empty = the default),
// and otherwise an error saying to run `ncdevmem cleanup -f IF`.
func CheckClean(stateDir, ifname string) error {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	if err := checkIfname(ifname); err != nil {
		return err
	}
	_, err := os.Stat(journalPath(stateDir, ifname))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("check journal of %s: %w", ifname, err)
	}
	return dirtyError(stateDir, ifname)
}
