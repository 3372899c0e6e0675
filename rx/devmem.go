// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// Defaults of DevmemConfig.
const (
	// DefaultMaxFrags is the control buffer's room in frags: 2000 * CMSG_SPACE(24) = 80000 bytes,
	// what the C ncdevmem passes.
	DefaultMaxFrags = 2000
	// DefaultChunk is the ReadAt size for validating buffers the CPU cannot map (GPU memory).
	DefaultChunk = 1 << 20
	// maxControl caps the control buffer when ETOOSMALL keeps asking for more.
	maxControl = 4 << 20
	// DefaultNiovSize is the granule the kernel hands out dma-buf memory in: PAGE_SIZE, unless
	// bind-rx asked for a larger rx-page-size (7.3+), which DevmemConfig.NiovSize then carries.
	DefaultNiovSize = 4096
)

// DevmemConfig describes one flow's devmem receive.
type DevmemConfig struct {
	// Buf is the dma-buf bound to the flow's queues; DmabufID the id bind-rx returned for it.
	Buf      dmabuf.Buffer
	DmabufID uint32
	// ReadSize is the iov length of one recvmsg: the most payload bytes one call returns.
	ReadSize int
	// MaxFrags sizes the control buffer (DefaultMaxFrags when 0).
	MaxFrags int
	// Verify checks p, which holds the payload stream's bytes from offset off on. Nil: no
	// validation. Every > 1 checks one frag in Every (--validate sample:N).
	Verify func(p []byte, off uint64) error
	Every  int
	// FailLinear makes any SCM_DEVMEM_LINEAR frag fatal (--fail-linear).
	FailLinear bool
	// NoCoalesce returns each token as its own range (for measuring what coalescing saves).
	NoCoalesce bool
	// HoldBytes is how much dma-buf memory the flow's unreturned tokens may pin before they are
	// handed back; the flows sharing a buffer must together stay below its size, or the NIC runs
	// out of buffers and RX stalls. 0: a quarter of the buffer.
	HoldBytes int64
	// Chunk is the ReadAt size for buffers that are not Mapped (DefaultChunk when 0).
	Chunk int
	// NiovSize is the binding's buffer granule: the rx-page-size bind-rx was given, or
	// DefaultNiovSize when 0. Several frags may share one niov; held-bytes accounting charges each
	// niov once, and "page aligned" means aligned to it.
	NiovSize int
	// Sys is the kernel seam (Kernel{} when nil).
	Sys DevmemSys

	// For telling linear payload from a steering error, and for the diagnosis: the device, its bound
	// queues, the rule that should steer the flow there, and a mapping of NAPI ids to queue indexes
	// (bind.QueueOfNapi). A recvmsg that returns bytes without any devmem cmsg came from an skb
	// with no dma-buf frag: on a bound queue (SO_INCOMING_NAPI_ID maps into Queues) that is a
	// packet the NIC did not split, its payload linear and legal; anywhere else it is a steering
	// error. Without QueueOfNapi the engine cannot tell and reports a steering error.
	Ifname      string
	Queues      []uint32
	Rule        string
	QueueOfNapi func(napiID uint32) (int, error)
}

// Devmem is the devmem RX engine of one flow: recvmsg(MSG_SOCK_DEVMEM) into preallocated iov and
// control buffers, cmsgs parsed in place, payload validated straight from the dma-buf, tokens
// coalesced and returned in batches. It allocates nothing per recvmsg.
type Devmem struct {
	cfg     DevmemConfig
	sys     DevmemSys
	mapped  dmabuf.Mapped // nil when the CPU cannot address the buffer
	bufSize uint64
	hold    int64

	// Stats are the flow's devmem counters.
	Stats DevmemStats

	iov   []byte
	oob   []byte
	msg   unix.Msghdr
	iovec unix.Iovec
	chunk []byte // ReadAt staging for unmapped buffers

	batch TokenBatch
	held  int64  // dma-buf bytes pinned by tokens in batch (each niov charged once)
	niov  uint64 // the binding's niov size
	// lastNiov is the niov the previous held frag sat in: consecutive frags of one niov (shared
	// by several small frags) pin it once.
	lastNiov uint64
	// napiID and napiBound cache the last SO_INCOMING_NAPI_ID seen with plain bytes and whether
	// it maps to a bound queue, so the queue lookup runs once per NAPI, not per recvmsg.
	napiID    uint32
	napiBound bool
	off       uint64 // stream offset of the next payload byte
	fragN     uint64 // payload frags seen, for sampling

	// run is a stretch of dma-buf frags contiguous in both buffer and stream, validated with one
	// ReadAt (unmapped buffers only).
	runBuf, runStream uint64
	runLen            int

	// Per Read callback state; readFn is bound once so the loop does not allocate.
	readFn func(fd uintptr) bool
	fd     int
	st     *Stats
	eof    bool
	err    error
}

// NewDevmem checks cfg and allocates the flow's buffers.
func NewDevmem(cfg DevmemConfig) (*Devmem, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	e := &Devmem{
		cfg:     cfg,
		sys:     cfg.Sys,
		bufSize: uint64(cfg.Buf.Size()),
		hold:    cfg.HoldBytes,
		iov:     make([]byte, cfg.ReadSize),
		oob:     make([]byte, cfg.MaxFrags*cmsgSpace),
		batch:   newTokenBatch(!cfg.NoCoalesce),
		niov:    uint64(cfg.NiovSize),
	}
	if e.hold <= 0 {
		e.hold = cfg.Buf.Size() / 4
	}
	if m, ok := cfg.Buf.(dmabuf.Mapped); ok && len(m.Bytes()) >= int(e.bufSize) {
		e.mapped = m
	} else if cfg.Verify != nil {
		e.chunk = make([]byte, cfg.Chunk)
	}
	e.readFn = e.read
	return e, nil
}

// check validates cfg and fills in its defaults (Sys: the running kernel).
func (cfg *DevmemConfig) check() error {
	if cfg.Sys == nil {
		cfg.Sys = Kernel{}
	}
	if cfg.Buf == nil {
		return errors.New("devmem rx: no dma-buf")
	}
	if cfg.ReadSize < 1 {
		return fmt.Errorf("devmem rx: read size %d must be positive", cfg.ReadSize)
	}
	if cfg.MaxFrags == 0 {
		cfg.MaxFrags = DefaultMaxFrags
	}
	if cfg.MaxFrags < 1 || cfg.MaxFrags*cmsgSpace > maxControl {
		return fmt.Errorf("devmem rx: room for %d frags per recvmsg: want 1..%d", cfg.MaxFrags, maxControl/cmsgSpace)
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = DefaultChunk
	}
	if cfg.Every < 1 {
		cfg.Every = 1
	}
	if cfg.NiovSize == 0 {
		cfg.NiovSize = DefaultNiovSize
	}
	if cfg.NiovSize < DefaultNiovSize || cfg.NiovSize&(cfg.NiovSize-1) != 0 {
		return fmt.Errorf("devmem rx: niov size %d: want a power of two of at least %d (the rx-page-size bind-rx was given)", cfg.NiovSize, DefaultNiovSize)
	}
	return nil
}

// Offset is the number of payload bytes received so far (the stream offset).
func (e *Devmem) Offset() uint64 { return e.off }

// Receive drains the flow until EOF (nil), the read deadline (an error wrapping
// os.ErrDeadlineExceeded) or a failure. Tokens still held are returned before it does.
func (e *Devmem) Receive(rc syscall.RawConn, st *Stats) error {
	e.st = st
	for {
		e.eof, e.err = false, nil
		if err := rc.Read(e.readFn); err != nil {
			return errors.Join(fmt.Errorf("devmem rx: %w", err), e.release(rc))
		}
		if e.err != nil {
			if rerr := e.release(rc); rerr != nil {
				return errors.Join(e.err, rerr)
			}
			return e.err
		}
		if e.eof {
			return e.release(rc)
		}
	}
}

// release hands back every held token (the kernel would also free them at close, but the
// counters should say what the engine did).
func (e *Devmem) release(rc syscall.RawConn) error {
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		e.fd = int(fd)
		ferr = e.flush()
	}); err != nil {
		return fmt.Errorf("devmem rx: return tokens: %w", err)
	}
	return ferr
}

// read is the rc.Read callback: one recvmsg and everything it delivered. It returns false only to
// wait for data, after returning held tokens so none pins the buffer while the flow is idle.
func (e *Devmem) read(fd uintptr) bool {
	e.fd = int(fd)
	for {
		setIov(&e.msg, &e.iovec, e.iov, e.oob)
		n, err := e.sys.Recvmsg(e.fd, &e.msg, unix.MSG_SOCK_DEVMEM|unix.MSG_DONTWAIT)
		switch err {
		case nil:
		case unix.EAGAIN:
			if e.batch.count == 0 {
				return false
			}
			// Return the held tokens before waiting, and look again: if the NIC ran out of
			// buffers, the ones just freed let data in without a new wakeup.
			if e.err = e.flush(); e.err != nil {
				return true
			}
			continue
		case unix.EINTR:
			continue
		case unix.Errno(uapi.ETOOSMALL):
			if e.err = e.grow(); e.err != nil {
				return true
			}
			continue
		default:
			e.err = recvError(err)
			return true
		}
		if n == 0 {
			e.eof = true
			return true
		}
		e.err = e.process(n)
		return true
	}
}

// grow doubles the control buffer after ETOOSMALL: not even one cmsg fit.
func (e *Devmem) grow() error {
	if len(e.oob) >= maxControl {
		return fmt.Errorf("devmem rx: recvmsg(MSG_SOCK_DEVMEM): control buffer too small (ETOOSMALL) even at %d bytes", len(e.oob))
	}
	e.oob = make([]byte, min(2*len(e.oob), maxControl))
	e.Stats.ControlGrows.Add(1)
	return nil
}

func recvError(err error) error {
	switch err {
	case unix.EFAULT:
		return fmt.Errorf("devmem rx: recvmsg(MSG_SOCK_DEVMEM): %w (the kernel could not hand over frags: a bad iov or control buffer, or dma-buf payload read without MSG_SOCK_DEVMEM)", err)
	case unix.ENODEV:
		return fmt.Errorf("devmem rx: recvmsg(MSG_SOCK_DEVMEM): %w (a frag came from another memory provider, e.g. io_uring zcrx holds the queue)", err)
	}
	return fmt.Errorf("devmem rx: recvmsg(MSG_SOCK_DEVMEM): %w", err)
}

// check reports whether the next payload frag is validated.
func (e *Devmem) check() bool {
	n := e.fragN
	e.fragN++
	return e.cfg.Verify != nil && (e.cfg.Every == 1 || n%uint64(e.cfg.Every) == 0)
}

// process accounts for, validates and queues the tokens of one recvmsg's n bytes.
func (e *Devmem) process(n int) error {
	e.Stats.Recvmsgs.Add(1)
	if e.msg.Flags&unix.MSG_CTRUNC != 0 {
		// Devmem cmsgs never truncate (put_cmsg_notrunc since the first 6.12 series: a frag
		// that does not fit ends the recvmsg short, or is ETOOSMALL when it is the first), so
		// this flag comes from another cmsg and no token is lost. Counted, not fatal.
		e.Stats.Ctrunc.Add(1)
	}
	it := newCmsgIter(e.oob[:e.msg.Controllen])
	var pos, seen int // linear bytes placed in the iov; payload bytes the cmsgs account for
	devmem, began := false, false
	// Counted locally and published once per recvmsg: an atomic add per frag and counter would
	// cost more than parsing the frag.
	var c fragCounts
	err := func() error {
		for {
			f, ok, err := it.next()
			if err != nil {
				return fmt.Errorf("devmem rx: %w", err)
			}
			if !ok {
				return nil
			}
			switch f.kind {
			case fragLinear:
				devmem = true
				if err := e.linearFrag(f, pos, n, &c); err != nil {
					return err
				}
				pos += int(f.size)
				seen += int(f.size)
			case fragDmabuf:
				devmem = true
				if err := e.dmabufFrag(f, n, &began, &c); err != nil {
					return err
				}
				seen += int(f.size)
			}
		}
	}()
	if err == nil && !devmem {
		err = e.plain(n, &c)
	}
	e.Stats.publish(&c)
	if began {
		if serr := e.mapped.EndCPU(false); serr != nil && err == nil {
			err = fmt.Errorf("devmem rx: end CPU access to dma-buf: %w", serr)
		}
	}
	if err == nil {
		err = e.flushRun()
	}
	if err != nil {
		return err
	}
	if devmem && seen != n {
		return fmt.Errorf("devmem rx: recvmsg returned %d bytes but its devmem cmsgs account for %d", n, seen)
	}
	e.st.Bytes.Add(uint64(n))
	if e.held >= e.hold {
		return e.flush()
	}
	return nil
}

// linearFrag takes an SCM_DEVMEM_LINEAR frag whose bytes sit at iov byte pos of the n bytes
// recvmsg returned: the kernel advances the iov only by the bytes it copies, so linear bytes sit
// back to back at the front of the iov.
func (e *Devmem) linearFrag(f frag, pos, n int, c *fragCounts) error {
	if e.cfg.FailLinear {
		return &LinearError{Size: f.size, Offset: e.off, Ifname: e.cfg.Ifname}
	}
	if uint64(pos)+uint64(f.size) > uint64(n) {
		return fmt.Errorf("devmem rx: SCM_DEVMEM_LINEAR frag of %d bytes at iov byte %d overruns the %d bytes recvmsg returned", f.size, pos, n)
	}
	if e.check() {
		if err := e.flushRun(); err != nil {
			return err
		}
		c.validated++
		if err := e.cfg.Verify(e.iov[pos:pos+int(f.size)], e.off); err != nil {
			return fmt.Errorf("devmem rx: linear frag: %w", err)
		}
	}
	c.linearFrags++
	c.linearBytes += uint64(f.size)
	e.off += uint64(f.size)
	return nil
}

// dmabufFrag takes an SCM_DEVMEM_DMABUF frag of a recvmsg that returned n bytes: checks its
// binding and bounds, validates it (beginning CPU access to a mapped dma-buf once per recvmsg,
// recorded in began) and queues its token.
func (e *Devmem) dmabufFrag(f frag, n int, began *bool, c *fragCounts) error {
	if f.id != e.cfg.DmabufID {
		return e.steering(fmt.Sprintf("frag of dma-buf id %d", f.id), n)
	}
	if f.offset > e.bufSize || uint64(f.size) > e.bufSize-f.offset {
		return fmt.Errorf("devmem rx: frag [%d, +%d) lies outside the %d-byte dma-buf (token %d)", f.offset, f.size, e.bufSize, f.token)
	}
	if e.check() {
		c.validated++
		if e.mapped != nil {
			if !*began {
				if err := e.mapped.BeginCPU(false); err != nil {
					return fmt.Errorf("devmem rx: sync dma-buf for CPU read: %w", err)
				}
				*began = true
			}
			if err := e.cfg.Verify(e.mapped.Bytes()[f.offset:f.offset+uint64(f.size)], e.off); err != nil {
				return fmt.Errorf("devmem rx: dma-buf frag at buffer offset %d: %w", f.offset, err)
			}
		} else if err := e.addRun(f.offset, f.size); err != nil {
			return err
		}
	}
	if e.batch.Full() {
		if err := e.flush(); err != nil {
			return err
		}
	}
	e.batch.Add(f.token)
	e.hold1(f.offset, f.size)
	c.frags++
	c.dmabufBytes += uint64(f.size)
	if f.offset%e.niov == 0 {
		c.aligned++
	}
	c.hist[histBucket(f.size)]++
	e.off += uint64(f.size)
	return nil
}

// hold1 charges a held frag at dma-buf offset off to the hold budget: each niov it touches once,
// except one the previous held frag already charged (small frags share a niov, and it returns to
// the pool only when all of them are dropped).
func (e *Devmem) hold1(off uint64, size uint32) {
	first := off / e.niov
	last := first
	if size > 0 {
		last = (off + uint64(size) - 1) / e.niov
	}
	n := last - first + 1
	if e.held > 0 && first+1 == e.lastNiov {
		n--
	}
	e.lastNiov = last + 1 // +1 so that niov 0 differs from "none"
	e.held += int64(n * e.niov)
}

// plain handles a recvmsg whose n bytes came with no devmem cmsg: an skb without a dma-buf frag.
// The kernel never mixes the two kinds in one call. On a bound queue that is a packet the NIC did
// not split (small, or one it cannot split): linear payload, validated and counted. Anywhere else
// the flow missed the binding: a steering error.
func (e *Devmem) plain(n int, c *fragCounts) error {
	id, err := e.sys.GetsockoptInt(e.fd, unix.SOL_SOCKET, unix.SO_INCOMING_NAPI_ID)
	if err != nil || id == 0 || e.cfg.QueueOfNapi == nil {
		return e.steering("data without a devmem cmsg", n)
	}
	if uint32(id) != e.napiID {
		q, qerr := e.cfg.QueueOfNapi(uint32(id))
		e.napiID, e.napiBound = uint32(id), qerr == nil && q >= 0 && containsQueue(e.cfg.Queues, uint32(q))
	}
	if !e.napiBound {
		return e.steering("data without a devmem cmsg", n)
	}
	if e.cfg.FailLinear {
		return &LinearError{Size: uint32(n), Offset: e.off, Ifname: e.cfg.Ifname, Unsplit: true}
	}
	if e.check() {
		c.validated++
		if err := e.cfg.Verify(e.iov[:n], e.off); err != nil {
			return fmt.Errorf("devmem rx: unsplit packet bytes on bound queue (napi %d): %w", id, err)
		}
	}
	c.linearBytes += uint64(n)
	c.unsplit++
	e.off += uint64(n)
	return nil
}

func containsQueue(qs []uint32, q uint32) bool {
	for _, x := range qs {
		if x == q {
			return true
		}
	}
	return false
}

// addRun queues a dma-buf frag for chunked validation, reading the run so far first when the frag
// does not continue it.
func (e *Devmem) addRun(bufOff uint64, size uint32) error {
	if e.runLen > 0 && (bufOff != e.runBuf+uint64(e.runLen) || e.off != e.runStream+uint64(e.runLen) ||
		e.runLen+int(size) > len(e.chunk)) {
		if err := e.flushRun(); err != nil {
			return err
		}
	}
	if e.runLen == 0 {
		e.runBuf, e.runStream = bufOff, e.off
	}
	if int(size) > len(e.chunk) {
		// A frag larger than the staging buffer is validated in pieces.
		for done := 0; done < int(size); {
			k := min(int(size)-done, len(e.chunk))
			if err := e.readVerify(bufOff+uint64(done), e.off+uint64(done), k); err != nil {
				return err
			}
			done += k
		}
		return nil
	}
	e.runLen += int(size)
	return nil
}

func (e *Devmem) flushRun() error {
	if e.runLen == 0 {
		return nil
	}
	n := e.runLen
	e.runLen = 0
	return e.readVerify(e.runBuf, e.runStream, n)
}

func (e *Devmem) readVerify(bufOff, stream uint64, n int) error {
	p := e.chunk[:n]
	if _, err := e.cfg.Buf.ReadAt(p, int64(bufOff)); err != nil {
		return fmt.Errorf("devmem rx: read %d bytes at dma-buf offset %d for validation: %w", n, bufOff, err)
	}
	if err := e.cfg.Verify(p, stream); err != nil {
		return fmt.Errorf("devmem rx: dma-buf bytes at buffer offset %d: %w", bufOff, err)
	}
	return nil
}

// flush validates what is pending and hands the held tokens back with SO_DEVMEM_DONTNEED.
func (e *Devmem) flush() error {
	if err := e.flushRun(); err != nil {
		return err
	}
	if e.batch.count == 0 {
		return nil
	}
	want := e.batch.count
	got, err := e.dontneed()
	if err == nil && got < want {
		// Retry once for the remainder. Safe: no recvmsg ran since, so no token was reissued,
		// and the kernel skips the ones it already freed.
		var more int
		more, err = e.dontneed()
		got += more
		if got < want {
			e.Stats.ShortDontneed.Add(1)
		}
	}
	e.Stats.Freed.Add(uint64(got))
	ranges := len(e.batch.ranges)
	e.batch.Reset()
	e.held, e.lastNiov = 0, 0
	if err != nil {
		return dontneedError(want, ranges, err)
	}
	return nil
}

func (e *Devmem) dontneed() (int, error) {
	e.Stats.DontneedCalls.Add(1)
	e.Stats.DontneedTokens.Add(uint64(e.batch.count))
	for {
		n, err := e.sys.Setsockopt(e.fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, tokenBytes(e.batch.ranges))
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

func dontneedError(tokens, ranges int, err error) error {
	var why string
	switch err {
	case unix.ENOPROTOOPT:
		why = " (this kernel lacks SO_DEVMEM_DONTNEED: it needs Linux 6.12 or later built with CONFIG_PAGE_POOL)"
	case unix.EBADF:
		why = " (the socket is not TCP)"
	case unix.EINVAL:
		why = " (the kernel refused the token list: more than 128 ranges or a bad length)"
	case unix.ENOMEM:
		why = " (the kernel is out of memory)"
	}
	return fmt.Errorf("devmem rx: SO_DEVMEM_DONTNEED %d tokens in %d ranges: %w%s", tokens, ranges, err, why)
}

// steering builds the flow-steering diagnosis, asking the socket which NAPI (queue) the flow used.
func (e *Devmem) steering(reason string, n int) error {
	se := &SteeringError{
		Reason: reason, Bytes: n, Queue: -1, Ifname: e.cfg.Ifname,
		Bound: e.cfg.Queues, DmabufID: e.cfg.DmabufID, Rule: e.cfg.Rule,
	}
	id, err := e.sys.GetsockoptInt(e.fd, unix.SOL_SOCKET, unix.SO_INCOMING_NAPI_ID)
	switch {
	case err != nil:
		se.QueueErr = fmt.Errorf("SO_INCOMING_NAPI_ID: %w", err)
	case id != 0:
		se.NapiID = uint32(id)
		if e.cfg.QueueOfNapi == nil {
			se.QueueErr = errors.New("no NAPI-to-queue mapping")
		} else if q, err := e.cfg.QueueOfNapi(uint32(id)); err != nil {
			se.QueueErr = err
		} else {
			se.Queue = q
		}
	}
	return se
}
