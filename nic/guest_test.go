// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nic_test

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/guesttest"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// nsimState is what Prepare may change on netdevsim and Restore must put back exactly.
type nsimState struct {
	Split     nic.TCPDataSplit
	HDSThresh *uint32
	Channels  *nic.Channels
	Indir     []uint32
}

func nsimSnapshot(t *testing.T, ifname string) nsimState {
	t.Helper()
	r, err := nic.GetRings(ifname)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := nic.GetChannels(ifname)
	if err != nil {
		t.Fatal(err)
	}
	s := nsimState{Split: r.TCPDataSplit, HDSThresh: r.HDSThresh, Channels: ch}
	if rss, err := nic.RSSInfo(ifname); err == nil {
		s.Indir = rss.Indir
	} else if !errors.Is(err, nic.ErrNotSupported) {
		t.Fatal(err)
	}
	return s
}

// newNsim creates a netdevsim port with 8 queues, 4 of them enabled, so a plan for queues 4-5 has
// to raise the channel count. It reports whether this netdevsim has an RSS table (the full devmem
// plan needs one; Debian's 7.3 netdevsim has none).
func newNsim(t *testing.T, id int) (string, bool) {
	t.Helper()
	guesttest.Require(t)
	if !guesttest.KernelRelease(t).AtLeast(6, 14) {
		t.Skip("netdevsim has header split and hds-thresh from 6.14 on")
	}
	ifname := guesttest.NewNetdevsim(t, id, 1, 8).Ports[0]
	if err := nic.SetChannels(ifname, nic.ChannelsUpdate{Combined: new(uint32(4))}); err != nil {
		t.Fatal(err)
	}
	// Start from header split off and a non-zero threshold so Prepare has both to change.
	r, err := nic.GetRings(ifname)
	if err != nil {
		t.Fatal(err)
	}
	off := nic.TCPDataSplitDisabled
	u := nic.RingsUpdate{TCPDataSplit: &off}
	if r.HDSThreshMax != nil && *r.HDSThreshMax > 0 {
		u.HDSThresh = new(min(*r.HDSThreshMax, 256))
	}
	if err := nic.SetRings(ifname, u); err != nil {
		t.Fatal(err)
	}
	_, err = nic.RSSInfo(ifname)
	t.Logf("netdevsim %s: RSS table: %v", ifname, err)
	return ifname, err == nil
}

// request is the plan the tests run: the full one when the driver has an RSS table, header split
// only otherwise.
func request(ifname string, rss bool, dir string, log io.Writer) nic.Request {
	if rss {
		return nic.Request{Ifname: ifname, Queues: []int{4, 5}, StateDir: dir, Log: log}
	}
	return nic.Request{Ifname: ifname, HeaderSplitOnly: true, StateDir: dir, Log: log}
}

// TestGuestNetdevsimPrepareRestore applies tcp-data-split and hds-thresh (and, where netdevsim has
// RSS, channels and the RSS table) on a real driver and checks that Restore puts each back exactly.
func TestGuestNetdevsimPrepareRestore(t *testing.T) {
	ifname, rss := newNsim(t, 41)
	before := nsimSnapshot(t, ifname)
	t.Logf("before: tcp-data-split %v hds-thresh %s channels %+v", before.Split, fmtU32(before.HDSThresh), *before.Channels)
	var log strings.Builder
	s, err := nic.Prepare(context.Background(), request(ifname, rss, t.TempDir(), &log))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prepare:\n%s", log.String())
	during := nsimSnapshot(t, ifname)
	if during.Split != nic.TCPDataSplitEnabled || during.HDSThresh == nil || *during.HDSThresh != 0 {
		t.Errorf("after Prepare: tcp-data-split %v hds-thresh %s, want on and 0", during.Split, fmtU32(during.HDSThresh))
	}
	if rss {
		if during.Channels.RXQueues() < 6 {
			t.Errorf("after Prepare: %d RX queues, want at least 6", during.Channels.RXQueues())
		}
		if slices.ContainsFunc(during.Indir, func(q uint32) bool { return q == 4 || q == 5 }) {
			t.Errorf("after Prepare: RSS table %v still uses devmem queues 4-5", during.Indir)
		}
	}
	log.Reset()
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restore:\n%s", log.String())
	if diff := cmp.Diff(before, nsimSnapshot(t, ifname)); diff != "" {
		t.Fatalf("not restored (-before +after):\n%s", diff)
	}
}

func fmtU32(p *uint32) string {
	if p == nil {
		return "n/a"
	}
	return strconv.FormatUint(uint64(*p), 10)
}

// TestGuestNetdevsimCrashCleanup stops Prepare at every point a kill -9 could hit and has Cleanup
// restore the real device.
func TestGuestNetdevsimCrashCleanup(t *testing.T) {
	ifname, rss := newNsim(t, 42)
	before := nsimSnapshot(t, ifname)
	dir := t.TempDir()
	for point := 1; ; point++ {
		calls, off := 0, false
		crash := func() bool {
			if off {
				return false
			}
			calls++
			return calls == point
		}
		s, err := nic.Prepare(context.Background(), nic.WithCrash(request(ifname, rss, dir, io.Discard), crash))
		off = true
		if calls < point {
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Restore(); err != nil {
				t.Fatal(err)
			}
			t.Logf("crashed at each of %d points", point-1)
			break
		}
		if !nic.IsCrash(err) {
			t.Fatalf("point %d: %v", point, err)
		}
		if err := nic.Cleanup(dir, ifname, nil); err != nil {
			t.Fatalf("point %d: cleanup: %v", point, err)
		}
		if diff := cmp.Diff(before, nsimSnapshot(t, ifname)); diff != "" {
			t.Fatalf("point %d: not restored (-before +after):\n%s", point, diff)
		}
	}
}

// TestGuestNetdevsimChannels raises the channel count on the real driver with its undo journaled,
// as a run killed right after the change leaves it, and has Cleanup put it back.
func TestGuestNetdevsimChannels(t *testing.T) {
	ifname, _ := newNsim(t, 44)
	before := nsimSnapshot(t, ifname)
	dir := t.TempDir()
	if err := nic.WriteTestJournal(dir, ifname, before.Channels); err != nil {
		t.Fatal(err)
	}
	if err := nic.SetChannels(ifname, nic.ChannelsUpdate{Combined: new(before.Channels.Combined + 2)}); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	if err := nic.Cleanup(dir, ifname, &log); err != nil {
		t.Fatal(err)
	}
	t.Logf("cleanup:\n%s", log.String())
	if diff := cmp.Diff(before, nsimSnapshot(t, ifname)); diff != "" {
		t.Fatalf("not restored (-before +after):\n%s", diff)
	}
}

// TestGuestNetdevsimRefusals asks for what this netdevsim lacks (ntuple filters; an RSS table on
// Debian's 7.3) and checks the refusal gives advice and changes nothing. Where the driver has RSS
// contexts, it also drives the context ioctls.
func TestGuestNetdevsimRefusals(t *testing.T) {
	ifname, rss := newNsim(t, 43)
	before := nsimSnapshot(t, ifname)
	k := nic.System()
	if info, err := nic.RSSInfo(ifname); err == nil && info.Contexts {
		table := make([]uint32, len(info.Indir))
		for i := range table {
			table[i] = 2 + uint32(i%2)
		}
		id, err := k.CreateRSSContext(ifname, table)
		if err != nil {
			t.Fatal(err)
		}
		got, err := k.RSSContext(ifname, id)
		if err != nil || !slices.Equal(got, table) {
			t.Errorf("context %d reads back %v, %v; want %v", id, got, err, table)
		}
		if err := k.DeleteRSSContext(ifname, id); err != nil {
			t.Fatal(err)
		}
		if _, err := k.RSSContext(ifname, id); !errors.Is(err, unix.ENOENT) {
			t.Errorf("deleted context %d: %v, want ENOENT", id, err)
		}
	}
	_, err := nic.Prepare(context.Background(), nic.Request{Ifname: ifname, Queues: []int{2, 3}, StateDir: t.TempDir(),
		Flows: []nic.Flow{{Dst: netip.MustParseAddrPort("192.0.2.1:5201")}}})
	want := "ntuple"
	if !rss {
		want = "RSS"
	}
	if !errors.Is(err, nic.ErrNotSupported) || !strings.Contains(err.Error(), want) {
		t.Errorf("Prepare with a flow on netdevsim = %v, want EOPNOTSUPP with %s advice", err, want)
	}
	t.Logf("refusal: %v", err)
	if diff := cmp.Diff(before, nsimSnapshot(t, ifname)); diff != "" {
		t.Fatalf("refused Prepare changed the device (-before +after):\n%s", diff)
	}
}

// TestGuestNetdevsimDefaults prepares a netdevsim port as created (header split reads as on): the
// plan still configures it, and Restore leaves the port reading as it did.
func TestGuestNetdevsimDefaults(t *testing.T) {
	guesttest.Require(t)
	if !guesttest.KernelRelease(t).AtLeast(6, 14) {
		t.Skip("netdevsim has header split and hds-thresh from 6.14 on")
	}
	ifname := guesttest.NewNetdevsim(t, 45, 1, 4).Ports[0]
	before := nsimSnapshot(t, ifname)
	var log strings.Builder
	s, err := nic.Prepare(context.Background(), nic.Request{Ifname: ifname, HeaderSplitOnly: true, StateDir: t.TempDir(), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	t.Logf("prepare and restore:\n%s", log.String())
	if diff := cmp.Diff(before, nsimSnapshot(t, ifname)); diff != "" {
		t.Fatalf("not restored (-before +after):\n%s", diff)
	}
}
