// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nic

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

var addrPortEq = cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })

func sampleRecords() []record {
	off, h := TCPDataSplitDisabled, uint32(256)
	rule := Rule{Location: 1023, FlowType: unix.TCP_V6_FLOW, Src: netip.MustParseAddrPort("[2001:db8::2]:40000"),
		Dst: netip.MustParseAddrPort("[2001:db8::1]:5201"), Context: 1}
	return []record{
		{Kind: recBegin, Ifname: "eth1", Ifindex: 7, PID: 4242},
		{Kind: recChannels, Channels: &Channels{RX: 0, TX: 0, Other: 1, Combined: 8}},
		{Kind: recRings, Split: &off, HDS: &h},
		{Kind: recRings, Split: &off},
		{Kind: recIndir, Default: true},
		{Kind: recIndir, Table: []uint32{1, 0, 1, 0}},
		{Kind: recContextPending, ID: 1, Table: []uint32{6, 7, 6, 7}},
		{Kind: recContext, ID: 1, Table: []uint32{6, 7, 6, 7}},
		{Kind: recRulePending, Loc: 0xffffffff, Existing: []uint32{3, 9}, Rule: rule},
		{Kind: recRule, Loc: 1023, Rule: rule},
		{Kind: recRulePending, Loc: 2, Rule: Rule{Location: 2, FlowType: unix.TCP_V4_FLOW, Dst: netip.MustParseAddrPort("192.0.2.1:5201"), Queue: 7}},
		{Kind: recUndone, Seq: 10},
	}
}

func encodeAll(recs []record) []byte {
	var b bytes.Buffer
	for _, r := range recs {
		b.Write(r.line())
	}
	return b.Bytes()
}

func TestJournalRoundTrip(t *testing.T) {
	want := sampleRecords()
	b := encodeAll(want)
	got, valid, err := parseJournal(b)
	if err != nil {
		t.Fatal(err)
	}
	if valid != len(b) {
		t.Errorf("valid = %d, want %d", valid, len(b))
	}
	// Rule.Location of a pending rule comes back from loc=.
	want[8].Rule.Location = 0xffffffff
	want[9].Rule.Location = 1023
	if diff := cmp.Diff(want, got, addrPortEq); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
}

func TestJournalGolden(t *testing.T) {
	// The format is an on-disk contract between versions: a change here needs a new version. The
	// checksums are CRC-32C computed independently (a bitwise Python implementation).
	got := string(encodeAll(sampleRecords()[:3]))
	want := "7ca97ca8 begin ifname=eth1 ifindex=7 pid=4242\n" +
		"c458e2b8 channels rx=0 tx=0 other=1 combined=8\n" +
		"76192550 rings tcp-data-split=1 hds-thresh=256\n"
	if got != want {
		t.Fatalf("journal bytes:\n%s\nwant:\n%s", got, want)
	}
}

func TestJournalTornAndCorrupt(t *testing.T) {
	b := encodeAll(sampleRecords()[:4])
	full := len(b)
	// A torn last line (no newline) is dropped.
	torn := append(append([]byte{}, b...), "deadbeef rings tcp-da"...)
	recs, valid, err := parseJournal(torn)
	if err != nil || len(recs) != 4 || valid != full {
		t.Fatalf("torn: %d records, valid %d, err %v", len(recs), valid, err)
	}
	// A complete last line with a bad checksum is also a torn write.
	bad := append(append([]byte{}, b...), "00000000 indir table=default\n"...)
	if recs, _, err := parseJournal(bad); err != nil || len(recs) != 4 {
		t.Fatalf("bad last line: %d records, err %v", len(recs), err)
	}
	// The same damage before the last line is corruption.
	mid := append([]byte("00000000 begin ifname=eth1 ifindex=7 pid=1\n"), b...)
	if _, _, err := parseJournal(mid); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("corrupt first line: err %v", err)
	}
	flipped := bytes.Replace(b, []byte("combined=8"), []byte("combined=9"), 1)
	if _, _, err := parseJournal(flipped); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("flipped byte: err %v", err)
	}
	// Structure: begin must come first, once; undone must name an earlier record.
	for name, recs := range map[string][]record{
		"no begin":     {{Kind: recIndir, Default: true}, {Kind: recIndir, Default: true}},
		"two begins":   {{Kind: recBegin, Ifname: "a"}, {Kind: recBegin, Ifname: "a"}, {Kind: recIndir, Default: true}},
		"undone ahead": {{Kind: recBegin, Ifname: "a"}, {Kind: recUndone, Seq: 5}, {Kind: recIndir, Default: true}},
	} {
		if _, _, err := parseJournal(encodeAll(recs)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestParseLineRejects(t *testing.T) {
	for _, body := range []string{
		"begin ifname=eth1 ifindex=7",                                     // missing field
		"begin ifname=eth1 ifindex=7 pid=1 extra=1",                       // unknown field
		"begin ifname=../x ifindex=7 pid=1",                               // path escape
		"rings tcp-data-split=3 hds-thresh=-",                             // out of range
		"rule loc=1 flow=2 src=- sport=0 dst=- dport=0 queue=0 context=0", // UDP
		"rule loc=1 flow=1 src=1.2.3 sport=0 dst=- dport=0 queue=0 context=0",
		"indir table=1,,2",
		"bogus a=1",
		"channels rx=1 rx=2 tx=0 other=0 combined=0",
	} {
		if _, err := parseLine(checksumLine(body)); err == nil {
			t.Errorf("parseLine(%q) accepted", body)
		}
	}
}

func FuzzParseJournal(f *testing.F) {
	f.Add(encodeAll(sampleRecords()))
	f.Add(encodeAll(sampleRecords()[:2]))
	f.Add([]byte("00000000 begin\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, valid, err := parseJournal(b)
		if err != nil {
			return
		}
		if valid > len(b) {
			t.Fatalf("valid %d > len %d", valid, len(b))
		}
		// Whatever parses must re-encode to something that parses the same.
		again, _, err := parseJournal(encodeAll(recs))
		if err != nil {
			t.Fatalf("re-encoded journal does not parse: %v", err)
		}
		if diff := cmp.Diff(recs, again, addrPortEq); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
