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

func (s *scriptSys) GetsockoptInt(fd, level, name int) (int, error) { return 0, s.napiErr }

func scriptEngine(t *testing.T, s *scriptSys) (*Devmem, error) {
	t.Helper()
	h, _ := dmabuf.NewHost(1 << 20)
	e, err := NewDevmem(DevmemConfig{Buf: h, DmabufID: 1, ReadSize: 64 << 10, Sys: s, HoldBytes: 1})
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
		"MSG_CTRUNC":          {&scriptSys{replaySys: replaySys{oob: oob, n: 4 * 4096}, flags: unix.MSG_CTRUNC}, "MSG_CTRUNC"},
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
		unix.ENOPROTOOPT: "Linux 6.12", unix.EBADF: "not TCP", unix.EINVAL: "128 ranges", unix.ENOMEM: "out of memory",
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
