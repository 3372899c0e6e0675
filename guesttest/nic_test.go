// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/google/go-cmp/cmp"
)

// nicState is every NIC setting the preparation plan may change on netdevsim.
type nicState struct {
	Channels nic.Channels
	Rings    nic.Rings
	Indir    []uint32
}

func readNIC(t testing.TB, dev string) nicState {
	t.Helper()
	ch, err := nic.GetChannels(dev)
	if err != nil {
		t.Fatal(err)
	}
	r, err := nic.GetRings(dev)
	if err != nil {
		t.Fatal(err)
	}
	st := nicState{Channels: *ch, Rings: *r}
	// netdevsim in 7.3 has no ETHTOOL_GRXRINGS, so no RSS table to read; drivers that have one must
	// get it back too.
	if rss, err := nic.RSSInfo(dev); err == nil {
		st.Indir = rss.Indir
	} else if !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, nic.ErrNotSupported) {
		t.Fatal(err)
	}
	return st
}

// nsimForPrepare makes a netdevsim port whose settings all differ from what devmem on queues 2-3
// needs: 2 of 4 combined channels, header split off, hds-thresh 512. It returns the port and its
// state.
func nsimForPrepare(t *testing.T, id int) (string, nicState) {
	t.Helper()
	nsim := NewNetdevsim(t, id, 1, 4)
	dev := nsim.Ports[0]
	ipLink(t, "set", dev, "up")
	two := uint32(2)
	if err := nic.SetChannels(dev, nic.ChannelsUpdate{Combined: &two}); err != nil {
		t.Fatal(err)
	}
	off, thresh := nic.TCPDataSplitDisabled, uint32(512)
	if err := nic.SetRings(dev, nic.RingsUpdate{TCPDataSplit: &off, HDSThresh: &thresh}); err != nil {
		t.Fatal(err)
	}
	before := readNIC(t, dev)
	t.Logf("%s before: %+v, hds-thresh %v, indir %v", dev, before.Channels, deref(before.Rings.HDSThresh), before.Indir)
	if before.Channels.Combined != 2 || before.Rings.TCPDataSplit == nic.TCPDataSplitEnabled || deref(before.Rings.HDSThresh) != uint32(512) {
		t.Fatalf("netdevsim did not take the starting settings: %+v", before)
	}
	return dev, before
}

// checkHeaderSplit checks that header split is on with hds-thresh 0, and that nothing else moved.
func checkHeaderSplit(t *testing.T, dev string, before nicState) nicState {
	t.Helper()
	s := readNIC(t, dev)
	t.Logf("%s prepared: tcp-data-split %v, hds-thresh %v", dev, s.Rings.TCPDataSplit, deref(s.Rings.HDSThresh))
	if s.Rings.TCPDataSplit != nic.TCPDataSplitEnabled || deref(s.Rings.HDSThresh) != uint32(0) {
		t.Errorf("header split %v, hds-thresh %v after prepare, want on and 0", s.Rings.TCPDataSplit, deref(s.Rings.HDSThresh))
	}
	if d := cmp.Diff(before.Channels, s.Channels); d != "" {
		t.Errorf("a header-split-only plan changed the channels:\n%s", d)
	}
	return s
}

func deref(p *uint32) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestGuestNICPrepareRefused asks for the full devmem plan (channels for queues 2-3, header split,
// RSS away from them) on netdevsim, whose 7.3 driver has no RSS table: Prepare must refuse with the
// fix and leave every setting, and no journal, behind.
func TestGuestNICPrepareRefused(t *testing.T) {
	Require(t)
	dev, before := nsimForPrepare(t, 20)
	if len(before.Indir) > 0 {
		t.Skipf("this netdevsim has an RSS table (%v): the full plan can apply here", before.Indir)
	}
	dir := t.TempDir()
	_, err := nic.Prepare(context.Background(), nic.Request{Ifname: dev, Queues: []int{2, 3}, StateDir: dir})
	t.Logf("full plan on %s: %v", dev, err)
	if err == nil {
		t.Fatal("prepare succeeded on a NIC without RSS")
	}
	if !strings.Contains(err.Error(), "--no-setup") {
		t.Errorf("the refusal does not say what to do: %v", err)
	}
	if d := cmp.Diff(before, readNIC(t, dev)); d != "" {
		t.Errorf("a refused prepare changed %s:\n%s", dev, d)
	}
	if err := nic.CheckClean(dir, dev); err != nil {
		t.Errorf("a refused prepare left a journal: %v", err)
	}
}

// TestGuestNICPrepareRestore applies the header-split plan (what probe mode and TX use) to netdevsim
// (7.x) and restores it: tcp-data-split and hds-thresh come back exactly, nothing else moves.
func TestGuestNICPrepareRestore(t *testing.T) {
	Require(t)
	dev, before := nsimForPrepare(t, 21)
	var log bytes.Buffer
	s, err := nic.Prepare(context.Background(), nic.Request{Ifname: dev, Queues: []int{2, 3}, StateDir: t.TempDir(), Log: &log, HeaderSplitOnly: true})
	if err != nil {
		t.Fatalf("prepare %s: %v\n%s", dev, err, log.String())
	}
	t.Logf("plan:\n%v\nlog:\n%s", s.Plan(), log.String())
	checkHeaderSplit(t, dev, before)
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, readNIC(t, dev)); d != "" {
		t.Errorf("%s not restored exactly (-before +after):\n%s", dev, d)
	}
}

// TestGuestNICKilled prepares netdevsim in a child process, kills it with SIGKILL, and checks that
// `ncdevmem cleanup` refuses while the child lives and afterwards restores every setting.
func TestGuestNICKilled(t *testing.T) {
	Require(t)
	bin := ncdevmemBin(t)
	dev, before := nsimForPrepare(t, 22)
	dir := t.TempDir()

	child := exec.Command(os.Args[0], "-test.run=^TestGuestNICHelper$")
	child.Env = append(os.Environ(), "NCDEVMEM_GUEST_NIC_HELPER="+dev+"|"+dir)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		child.Process.Kill()
		child.Wait()
	}()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "prepared") {
				ready <- sc.Text()
			}
		}
		close(ready)
	}()
	select {
	case l, ok := <-ready:
		if !ok {
			t.Fatal("the helper exited before preparing the NIC")
		}
		t.Log("helper: " + l)
	case <-time.After(60 * time.Second):
		t.Fatal("the helper did not prepare the NIC within 60 s")
	}
	prepared := checkHeaderSplit(t, dev, before)

	cleanup := func() (string, error) {
		b, err := exec.Command(bin, "cleanup", "-f", dev, "--state-dir", dir).CombinedOutput()
		return string(b), err
	}
	o, err := cleanup()
	t.Logf("cleanup while the run lives: %v\n%s", err, o)
	if err == nil {
		t.Error("cleanup succeeded while the run that owns the journal is alive")
	}
	if d := cmp.Diff(prepared, readNIC(t, dev)); d != "" {
		t.Errorf("the refused cleanup changed %s:\n%s", dev, d)
	}

	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	if d := cmp.Diff(prepared, readNIC(t, dev)); d != "" {
		t.Fatalf("SIGKILL cannot restore anything, yet %s changed:\n%s", dev, d)
	}
	o, err = cleanup()
	t.Logf("cleanup after SIGKILL: %v\n%s", err, o)
	if err != nil {
		t.Fatalf("cleanup after SIGKILL: %v\n%s", err, o)
	}
	if d := cmp.Diff(before, readNIC(t, dev)); d != "" {
		t.Errorf("%s not restored exactly by cleanup (-before +after):\n%s", dev, d)
	}
	o, err = cleanup()
	if err != nil || !strings.Contains(o, "nothing to clean up") {
		t.Errorf("second cleanup: %v\n%s", err, o)
	}
}

// TestGuestNICHelper is the child of TestGuestNICKilled: it prepares the NIC, says so, and waits to
// be killed. It skips unless that test started it.
func TestGuestNICHelper(t *testing.T) {
	spec := os.Getenv("NCDEVMEM_GUEST_NIC_HELPER")
	if spec == "" {
		t.Skip("helper process of TestGuestNICKilled; runs only as its child")
	}
	dev, dir, _ := strings.Cut(spec, "|")
	if _, err := nic.Prepare(context.Background(), nic.Request{Ifname: dev, Queues: []int{2, 3}, StateDir: dir, HeaderSplitOnly: true}); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("prepared " + dev + "\n")
	time.Sleep(10 * time.Minute)
	t.Fatal("not killed within 10 minutes")
}

// ncdevmemBin is the ncdevmem binary the harness put in the guest.
func ncdevmemBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("NCDEVMEM_BIN")
	if bin == "" {
		t.Fatal("NCDEVMEM_BIN is not set: run-tests.sh puts bin/ncdevmem in the guest and names it")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// rssKernel is the real kernel except for the RSS indirection table, which netdevsim in 7.3 lacks:
// it keeps one in memory, so the full plan (channels, header split, RSS) can run against the real
// channel and ring settings.
type rssKernel struct {
	nic.Kernel
	table []uint32
}

func (k *rssKernel) RXRings(ifname string) (uint32, error) {
	ch, err := k.Channels(ifname)
	if err != nil {
		return 0, err
	}
	return ch.RXQueues(), nil
}

func (k *rssKernel) Indir(string) ([]uint32, error) { return slices.Clone(k.table), nil }

func (k *rssKernel) SetIndir(_ string, table []uint32) error {
	k.table = slices.Clone(table)
	return nil
}

// TestGuestNICPrepareChannels runs the full plan for queues 2-3 on netdevsim (7.x) with only the RSS
// table emulated: the channels go from 2 to 4 and header split on, for real, and Restore puts the
// channels, tcp-data-split, hds-thresh and the table back exactly.
func TestGuestNICPrepareChannels(t *testing.T) {
	Require(t)
	dev, before := nsimForPrepare(t, 23)
	k := &rssKernel{Kernel: nic.System(), table: []uint32{0, 1, 0, 1, 0, 1, 0, 1}}
	no := false
	var log bytes.Buffer
	s, err := nic.Prepare(context.Background(), nic.Request{Ifname: dev, Queues: []int{2, 3}, StateDir: t.TempDir(),
		Log: &log, UseRSSContext: &no, Kernel: k})
	if err != nil {
		t.Fatalf("prepare %s: %v\n%s", dev, err, log.String())
	}
	t.Logf("log:\n%s", log.String())
	after := readNIC(t, dev)
	if after.Channels.RXQueues() != 4 {
		t.Errorf("RX queues %d after prepare, want 4 for queues 2-3 plus others", after.Channels.RXQueues())
	}
	if after.Rings.TCPDataSplit != nic.TCPDataSplitEnabled || deref(after.Rings.HDSThresh) != uint32(0) {
		t.Errorf("header split %v, hds-thresh %v after prepare", after.Rings.TCPDataSplit, deref(after.Rings.HDSThresh))
	}
	if slices.Contains(k.table, 2) || slices.Contains(k.table, 3) {
		t.Errorf("RSS table %v still sends traffic to devmem queues 2-3", k.table)
	}
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, readNIC(t, dev)); d != "" {
		t.Errorf("%s not restored exactly (-before +after):\n%s", dev, d)
	}
	if want := []uint32{0, 1, 0, 1, 0, 1, 0, 1}; !slices.Equal(k.table, want) {
		t.Errorf("RSS table %v after restore, want %v", k.table, want)
	}
}
