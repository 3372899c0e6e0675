// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// scriptSys answers recvmsg with a fixed batch (and flags), and DONTNEED with a fixed shortfall.
type scriptSys struct {
	replaySys
	flags   int32
	short   int // frags each DONTNEED call leaves unfreed
	err     error
	calls   int
	napiErr error
	napi    int
}

func (s *scriptSys) Recvmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.replaySys.Recvmsg(fd, msg, flags)
	msg.Flags = s.flags
	return n, err
}

func (s *scriptSys) Setsockopt(fd, level, name int, val []byte) (int, error) {
	s.calls++
	n, _ := s.replaySys.Setsockopt(fd, level, name, val)
	return max(n-s.short, 0), nil
}

func (s *scriptSys) GetsockoptInt(fd, level, name int) (int, error) { return s.napi, s.napiErr }

func scriptEngine(t *testing.T, s *scriptSys) (*Devmem, error) {
	t.Helper()
	return scriptEngineCfg(t, s, DevmemConfig{HoldBytes: 1})
}

// scriptEngineCfg runs one Read callback of an engine built from cfg over a 1 MiB host buffer.
func scriptEngineCfg(t *testing.T, s *scriptSys, cfg DevmemConfig) (*Devmem, error) {
	t.Helper()
	h, _ := dmabuf.NewHost(1 << 20)
	cfg.Buf, cfg.DmabufID, cfg.ReadSize, cfg.Sys = h, 1, 64<<10, s
	e, err := NewDevmem(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	e.st = &st
	var rc syscall.RawConn = fakeRC{}
	rc.Read(e.readFn)
	return e, e.err
}

func fourFrags() []frag {
	var f []frag
	for i := range 4 {
		f = append(f, frag{kind: fragDmabuf, offset: uint64(i) * 4096, size: 4096, token: uint32(10 + i), id: 1})
	}
	return f
}

func TestDevmemKernelOddities(t *testing.T) {
	oob := buildCmsgs(fourFrags())
	for name, tc := range map[string]struct {
		sys  *scriptSys
		want string
	}{
		"bytes unaccounted":   {&scriptSys{replaySys: replaySys{oob: oob, n: 5 * 4096}}, "account for 16384"},
		"frag outside buffer": {&scriptSys{replaySys: replaySys{oob: buildCmsgs([]frag{{kind: fragDmabuf, offset: 1<<20 - 100, size: 4096, id: 1}}), n: 4096}}, "outside the 1048576-byte dma-buf"},
		"EFAULT":              {&scriptSys{err: unix.EFAULT}, "without MSG_SOCK_DEVMEM"},
		"ENODEV":              {&scriptSys{err: unix.ENODEV}, "another memory provider"},
		"napi lookup fails": {&scriptSys{replaySys: replaySys{oob: buildCmsgs([]frag{{kind: fragDmabuf, size: 10, id: 9}}), n: 10}, napiErr: unix.ENOPROTOOPT},
			"SO_INCOMING_NAPI_ID"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := scriptEngine(t, tc.sys)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestDevmemCtruncNotFatal: devmem cmsgs never truncate (put_cmsg_notrunc), so MSG_CTRUNC comes
// from another cmsg; the frags that did arrive are all there and none is lost (fidelity row 4).
func TestDevmemCtruncNotFatal(t *testing.T) {
	e, err := scriptEngine(t, &scriptSys{replaySys: replaySys{oob: buildCmsgs(fourFrags()), n: 4 * 4096}, flags: unix.MSG_CTRUNC})
	if err != nil {
		t.Fatal(err)
	}
	if e.Stats.Ctrunc.Load() != 1 || e.Stats.Frags.Load() != 4 || e.Stats.Freed.Load() != 4 {
		t.Errorf("ctrunc %d, frags %d, freed %d; want 1, 4, 4", e.Stats.Ctrunc.Load(), e.Stats.Frags.Load(), e.Stats.Freed.Load())
	}
}

// TestDevmemPlainBytesOnBoundQueue: an skb without a dma-buf frag (a packet the NIC did not split)
// arrives on a bound queue as plain bytes with no cmsg. That is linear payload, validated and
// counted, not a steering error; on an unbound queue it is one (fidelity row 1).
func TestDevmemPlainBytesOnBoundQueue(t *testing.T) {
	napiQueue := func(id uint32) (int, error) { return int(id) - 100, nil } // napi 102 serves queue 2
	var checked []uint64
	verify := func(p []byte, off uint64) error { checked = append(checked, off, uint64(len(p))); return nil }
	e, err := scriptEngineCfg(t, &scriptSys{replaySys: replaySys{n: 700}, napi: 102},
		DevmemConfig{Queues: []uint32{2, 3}, QueueOfNapi: napiQueue, Verify: verify})
	if err != nil {
		t.Fatalf("plain bytes on bound queue 2: %v", err)
	}
	if e.Stats.LinearBytes.Load() != 700 || e.Stats.Unsplit.Load() != 1 || e.Offset() != 700 || len(checked) != 2 || checked[1] != 700 {
		t.Errorf("linear %d, unsplit %d, offset %d, validated %v; want 700 bytes counted and checked at offset 0",
			e.Stats.LinearBytes.Load(), e.Stats.Unsplit.Load(), e.Offset(), checked)
	}

	_, err = scriptEngineCfg(t, &scriptSys{replaySys: replaySys{n: 700}, napi: 100},
		DevmemConfig{Queues: []uint32{2, 3}, QueueOfNapi: napiQueue})
	var se *SteeringError
	if !errors.As(err, &se) || se.Queue != 0 {
		t.Errorf("plain bytes on unbound queue 0: %v, want a steering error naming queue 0", err)
	}
	// No NAPI id (or no way to map it): the engine cannot tell, and says so as a steering error.
	_, err = scriptEngineCfg(t, &scriptSys{replaySys: replaySys{n: 700}},
		DevmemConfig{Queues: []uint32{2, 3}, QueueOfNapi: napiQueue})
	if !errors.As(err, &se) {
		t.Errorf("plain bytes, napi 0: %v, want a steering error", err)
	}
	// --fail-linear: unsplit bytes reached host memory, so they fail it too.
	_, err = scriptEngineCfg(t, &scriptSys{replaySys: replaySys{n: 700}, napi: 103},
		DevmemConfig{Queues: []uint32{2, 3}, QueueOfNapi: napiQueue, FailLinear: true})
	var le *LinearError
	if !errors.As(err, &le) || !le.Unsplit || !strings.Contains(err.Error(), "unsplit packet") {
		t.Errorf("--fail-linear with unsplit bytes: %v", err)
	}
}

// TestDevmemNiovSize: with a larger rx-page-size, frags share a niov; the hold budget charges it
// once and "aligned" means aligned to it (fidelity rows 5 and 15).
func TestDevmemNiovSize(t *testing.T) {
	e, err := scriptEngineCfg(t, &scriptSys{replaySys: replaySys{oob: buildCmsgs(fourFrags()), n: 4 * 4096}},
		DevmemConfig{NiovSize: 16384, HoldBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if e.held != 16384 || e.Stats.PageAlignedFrags.Load() != 1 {
		t.Errorf("4 frags in one 16 KiB niov: held %d, aligned %d; want 16384, 1", e.held, e.Stats.PageAlignedFrags.Load())
	}
	e, _ = scriptEngineCfg(t, &scriptSys{replaySys: replaySys{oob: buildCmsgs(fourFrags()), n: 4 * 4096}},
		DevmemConfig{HoldBytes: 1 << 20})
	if e.held != 4*4096 || e.Stats.PageAlignedFrags.Load() != 4 {
		t.Errorf("4 frags in 4 KiB niovs: held %d, aligned %d", e.held, e.Stats.PageAlignedFrags.Load())
	}
	h, _ := dmabuf.NewHost(1 << 20)
	if _, err := NewDevmem(DevmemConfig{Buf: h, ReadSize: 1, NiovSize: 6000}); err == nil || !strings.Contains(err.Error(), "rx-page-size") {
		t.Errorf("niov size 6000: %v", err)
	}
}

func TestDevmemShortDontneed(t *testing.T) {
	s := &scriptSys{replaySys: replaySys{oob: buildCmsgs(fourFrags()), n: 4 * 4096}, short: 1}
	e, err := scriptEngine(t, s)
	if err != nil {
		t.Fatal(err)
	}
	// 4 tokens in one range; the fake kernel frees 3, so the engine retries, and the retry makes
	// up the rest: not a short batch.
	if e.Stats.DontneedCalls.Load() != 2 || e.Stats.Freed.Load() < 4 || e.Stats.ShortDontneed.Load() != 0 {
		t.Errorf("calls %d, freed %d: want a retry after the short return", e.Stats.DontneedCalls.Load(), e.Stats.Freed.Load())
	}

	s = &scriptSys{replaySys: replaySys{oob: buildCmsgs(fourFrags()), n: 4 * 4096}, short: 4}
	e, err = scriptEngine(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if e.Stats.ShortDontneed.Load() != 1 || e.Stats.DontneedCalls.Load() != 2 {
		t.Errorf("short %d, calls %d: want one short batch after one retry", e.Stats.ShortDontneed.Load(), e.Stats.DontneedCalls.Load())
	}
}

func TestDontneedError(t *testing.T) {
	for errno, want := range map[unix.Errno]string{
		unix.ENOPROTOOPT: "CONFIG_PAGE_POOL", unix.EBADF: "not TCP", unix.EINVAL: "128 ranges", unix.ENOMEM: "out of memory",
	} {
		err := dontneedError(5, 2, errno)
		if !errors.Is(err, errno) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "5 tokens in 2 ranges") {
			t.Errorf("%v: %v", errno, err)
		}
	}
}

func TestTokenBatch(t *testing.T) {
	b := newTokenBatch(true)
	for _, tok := range []uint32{5, 6, 7, 9, 10, 3} {
		b.Add(tok)
	}
	want := []uapi.DmabufToken{{TokenStart: 5, TokenCount: 3}, {TokenStart: 9, TokenCount: 2}, {TokenStart: 3, TokenCount: 1}}
	if len(b.ranges) != len(want) || b.count != 6 {
		t.Fatalf("ranges %+v, count %d", b.ranges, b.count)
	}
	for i := range want {
		if b.ranges[i] != want[i] {
			t.Errorf("range %d = %+v, want %+v", i, b.ranges[i], want[i])
		}
	}
	// Full at 1024 tokens even in one range, and at 128 ranges.
	b.Reset()
	for tok := uint32(0); !b.Full(); tok++ {
		b.Add(tok)
	}
	if b.count != uapi.MAX_DONTNEED_FRAGS || len(b.ranges) != 1 {
		t.Errorf("consecutive: full at %d tokens in %d ranges", b.count, len(b.ranges))
	}
	b = newTokenBatch(false)
	for tok := uint32(0); !b.Full(); tok++ {
		b.Add(tok)
	}
	if len(b.ranges) != uapi.MAX_DONTNEED_TOKENS {
		t.Errorf("uncoalesced: full at %d ranges", len(b.ranges))
	}
}

func TestTokenBatchRangeLimitAndOption(t *testing.T) {
	b := NewTokenBatch(false, 1)
	b.Add(4)
	if !b.Full() || b.Count() != 1 || b.Ranges() != 1 {
		t.Fatalf("one-range batch: full %v, %d tokens in %d ranges", b.Full(), b.Count(), b.Ranges())
	}
	if got := b.Option(); len(got) != uapi.SizeofDmabufToken || got[0] != 4 || got[4] != 1 {
		t.Fatalf("option bytes % x", got)
	}
	if c := NewTokenBatch(true, 0); c.maxRanges != 1 {
		t.Errorf("limit 0 clamped to %d, want 1", c.maxRanges)
	}
	if c := NewTokenBatch(true, 1000); c.maxRanges != uapi.MAX_DONTNEED_TOKENS {
		t.Errorf("limit 1000 clamped to %d", c.maxRanges)
	}
}
