// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package devmemsim is a devmem TCP socket simulator for tests: it stands at the rx/tx engines'
// kernel seam (recvmsg, sendmsg, setsockopt, getsockopt on one fd) and behaves like a kernel with a
// devmem-capable NIC whose queues are bound to a dma-buf.
//
// RX: it reads the real bytes of the (real) TCP socket under it as the NIC's arriving packets. A
// packet the NIC splits lands in the memfd-backed buffer in a niov (NiovSize, 4 KiB unless an
// rx-page-size is modelled) taken from a freelist, and waits in the receive queue; recvmsg hands
// queued frags out as SCM_DEVMEM_DMABUF cmsgs with tokens (starting at 1, lowest free first, as
// the kernel's xarray does). Each frag holds a reference on its niov, which goes back to the
// freelist when the last frag in it is returned with SO_DEVMEM_DONTNEED (PackFrags puts several
// frags in one niov). A packet the NIC did not split (UnsplitEvery) arrives on the bound queue as
// plain bytes with no cmsg, never in the same recvmsg as devmem frags. Queued data stays readable
// when the freelist runs dry; new packets are then dropped, and nothing new arrives until the
// sender's retransmit timer (RTO, 200 ms) fires. ETOOSMALL comes only when a devmem frag must be
// reported and not one cmsg fits. Faults (LINEAR frags, wrong dma-buf ids, short reads, corrupted
// bytes) are injected on request.
//
// TX: sendmsg with SCM_DEVMEM_DMABUF and MSG_ZEROCOPY checks what tcp_sendmsg_locked checks, reads
// the buffer at the iovecs' offsets, writes those bytes to the socket and queues zerocopy
// completions on a simulated error queue, merged as the kernel merges them (regardless of code).
//
// Where the host kernel can answer (devmem calls on a plain TCP socket), the root tests in rx and
// tx check that the simulator gives the same errno; the guest tier runs the same cases against a
// real devmem socket on softnic. Import it from tests only.
package devmemsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// NiovSize is the simulated NIC's default buffer granule (PAGE_SIZE, as bind-rx uses by default).
const NiovSize = 4096

// DefaultRTO is how long a dropped packet takes to come back: TCP's minimum retransmit timeout.
const DefaultRTO = 200 * time.Millisecond

// Config describes the simulated binding and the faults to inject. Counts are 1-based: LinearEvery
// 3 makes frags 3, 6, 9... LINEAR.
type Config struct {
	// Size is the dma-buf size, a multiple of the niov size.
	Size int64
	// Niov is the binding's niov size (the rx-page-size given to bind-rx): a power of two of at
	// least NiovSize; NiovSize when 0.
	Niov int
	// RXID is the dma-buf id RX frags carry (bind-rx's answer); TXID the id sendmsg must name (0:
	// no bind-tx on this socket, so SCM_DEVMEM_DMABUF sendmsg fails with EINVAL as on plain TCP).
	RXID, TXID uint32
	// FragSize is the largest frag (the niov size less FragOffset when 0); FragOffset puts each
	// niov's first frag that far into it (0: page aligned). FragSize+FragOffset must fit a niov.
	FragSize, FragOffset int
	// PackFrags places consecutive frags in one niov while they fit, as a NIC whose buffers are
	// smaller than its niovs does; each frag holds a reference and the niov is free only when all
	// are returned. Off: one niov per frag.
	PackFrags bool
	// NapiID is what SO_INCOMING_NAPI_ID answers.
	NapiID uint32
	// Plain makes the socket behave like one whose flow landed on an unbound queue (or a kernel
	// path without devmem): recvmsg(MSG_SOCK_DEVMEM) returns the bytes in the iov and no cmsg.
	Plain bool
	// UnsplitEvery makes every Nth packet one the NIC did not split (below hds-thresh, or not
	// splittable): it arrives on the bound queue as plain bytes with no cmsg.
	UnsplitEvery int
	// LinearEvery delivers every Nth frag as SCM_DEVMEM_LINEAR, copied into the iov.
	LinearEvery int
	// WrongIDAt gives the Nth frag dma-buf id RXID+1.
	WrongIDAt int
	// CorruptAt flips the byte at this stream offset (1-based: 0 disables; stream offset
	// CorruptAt-1 is corrupted).
	CorruptAt int64
	// ShortEvery cuts every Nth recvmsg to one frag and every Nth sendmsg to half its bytes.
	ShortEvery int
	// Window is how many bytes the NIC may queue ahead of the reader (half the buffer, at most
	// 256 KiB, when 0).
	Window int
	// RTO is how long after a drop the sender's retransmit arrives (DefaultRTO when 0).
	RTO time.Duration
	// HoldCompletions keeps zerocopy completions off the error queue until Complete is called.
	HoldCompletions bool
	// CopiedEvery marks every Nth completion SO_EE_CODE_ZEROCOPY_COPIED.
	CopiedEvery int
	// NobufsEvery refuses every Nth sendmsg with ENOBUFS while completions are queued, as the
	// kernel does when the socket's optmem is used up by zerocopy state.
	NobufsEvery int
	// RouteDev is the device the route to the peer leaves by, BindDev the device the TX binding
	// was made on; sendmsg fails with ENODEV when both are set and differ (SO_BINDTODEVICE plays
	// no part, as in the kernel).
	RouteDev, BindDev string
	// IPv6 makes completions arrive as SOL_IPV6/IPV6_RECVERR, as on an AF_INET6 socket.
	IPv6 bool
}

// pkt is one frag waiting in the receive queue.
type pkt struct {
	kind   uint8 // pktDmabuf, pktLinear, pktPlain
	niov   uint32
	off    int // dma-buf offset (pktDmabuf) or host-queue offset (others)
	size   int
	stream int64 // stream offset of its first byte
	id     uint32
}

const (
	pktDmabuf uint8 = iota
	pktLinear
	pktPlain
)

// sock is the per-socket state: its receive queue and its tokens (sk_user_frags).
type sock struct {
	tokNiov []int32 // token -> niov, -1 when free; token 0 is never used
	lowTok  int     // no free token below this (the kernel's xarray hands out the lowest)
	held    int
	host    []byte // bytes of queued LINEAR and unsplit packets
	hostLen int
	queue   []pkt
	qhead   int
	queued  int // bytes in the queue
	// queuedBuf is the buffer memory the queued packets stand for, what Window limits.
	queuedBuf int
	eof       bool
	dropped   time.Time // when the NIC last dropped a packet of this flow for want of buffers
	told      bool      // EAGAIN given since the drop
	pkts      int
	stream    int64  // bytes taken off the wire
	scratch   []byte // staging for blocking reads
}

// Sim is one simulated devmem binding (its dma-buf and niov pool) and the devmem sockets on it
// (state per fd). Safe for concurrent use.
type Sim struct {
	cfg   Config
	niov  int
	memfd int
	mem   []byte
	mmap  bool

	mu        sync.Mutex
	free      []uint32 // niov freelist (a stack, like the page pool's cache)
	refs      []int32  // frags (tokens or queued) holding each niov
	socks     map[int]*sock
	scratch   []byte // TX
	rxScratch []byte
	cur       int // niov being packed (PackFrags), -1 none
	curOff    int
	frags     int
	recvs     int
	sends     int
	attempts  int
	stream    int64 // bytes sent (TX)

	stalls, drops, dontneedCalls, freed int
	completed, copied                   int // sends reported complete (and copied) on the error queue

	zerocopy bool
	bound    string
	zcSeq    uint32
	compl    []completion
	released bool
}

type completion struct {
	lo, hi uint32
	copied bool
}

// New builds a simulator with a fresh buffer.
func New(cfg Config) (*Sim, error) {
	if cfg.Niov == 0 {
		cfg.Niov = NiovSize
	}
	if cfg.Niov < NiovSize || cfg.Niov&(cfg.Niov-1) != 0 {
		return nil, fmt.Errorf("devmemsim: niov size %d must be a power of two of at least %d", cfg.Niov, NiovSize)
	}
	if cfg.Size <= 0 || cfg.Size%int64(cfg.Niov) != 0 {
		return nil, fmt.Errorf("devmemsim: size %d must be a positive multiple of %d", cfg.Size, cfg.Niov)
	}
	if cfg.FragSize == 0 {
		cfg.FragSize = cfg.Niov - cfg.FragOffset
	}
	if cfg.FragSize < 1 || cfg.FragOffset < 0 || cfg.FragSize+cfg.FragOffset > cfg.Niov {
		return nil, fmt.Errorf("devmemsim: frag size %d at offset %d does not fit a %d-byte niov", cfg.FragSize, cfg.FragOffset, cfg.Niov)
	}
	if cfg.RXID == 0 {
		cfg.RXID = 1
	}
	if cfg.RTO == 0 {
		cfg.RTO = DefaultRTO
	}
	if cfg.Window == 0 {
		// Like TCP's receive window, it keeps a reader that returns its tokens from running the
		// NIC dry: only a reader that holds more than the other half does.
		cfg.Window = int(min(256<<10, cfg.Size/2))
	}
	s := &Sim{cfg: cfg, niov: cfg.Niov, memfd: -1, cur: -1}
	// Back the buffer with a memfd, as udmabuf does, so the engines read mmap'd shared memory.
	if fd, err := unix.MemfdCreate("devmemsim", unix.MFD_CLOEXEC); err == nil {
		if err := unix.Ftruncate(fd, cfg.Size); err == nil {
			if m, err := unix.Mmap(fd, 0, int(cfg.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
				s.memfd, s.mem, s.mmap = fd, m, true
			}
		}
		if !s.mmap {
			unix.Close(fd)
		}
	}
	if !s.mmap {
		s.mem = make([]byte, cfg.Size)
	}
	n := int(cfg.Size / int64(cfg.Niov))
	s.free = make([]uint32, n)
	for i := range s.free {
		s.free[i] = uint32(n - 1 - i) // pop order 0, 1, 2...
	}
	s.refs = make([]int32, n)
	s.scratch = make([]byte, 1<<20)
	s.rxScratch = make([]byte, 1<<20)
	s.socks = map[int]*sock{}
	return s, nil
}

// sock returns fd's state, made on first use.
func (s *Sim) sock(fd int) *sock {
	k := s.socks[fd]
	if k == nil {
		frags := len(s.refs) * (s.niov / s.cfg.FragSize)
		k = &sock{tokNiov: make([]int32, 1, frags+1), lowTok: 1,
			host: make([]byte, s.cfg.Window+s.niov), queue: make([]pkt, 0, frags+s.cfg.Window/s.cfg.FragSize+2)}
		k.tokNiov[0] = -2 // token 0 is never handed out (XA_FLAGS_ALLOC1)
		s.socks[fd] = k
	}
	return k
}

// Close releases the buffer.
func (s *Sim) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.mmap {
		err = unix.Munmap(s.mem)
		if cerr := unix.Close(s.memfd); err == nil {
			err = cerr
		}
		s.mmap = false
	}
	s.mem = nil
	return err
}

// Counters is a snapshot of what the simulated kernel saw.
type Counters struct {
	Frags         int // frags delivered (both kinds)
	Held          int // tokens the user still holds
	FreeNiovs     int
	Stalls        int // recvmsg calls answered EAGAIN while packets waited for buffers or a retransmit
	Drops         int // times the NIC dropped packets for want of a free niov
	Queued        int // bytes received by the NIC, not yet read
	DontneedCalls int
	Freed         int // frags freed by DONTNEED
	Sends         int // successful sendmsg calls
	Stream        int64
	// Completed counts the sends whose zerocopy completion was read off the error queue in full;
	// Copied counts those of them whose notification carried SO_EE_CODE_ZEROCOPY_COPIED.
	Completed, Copied int
}

// Counters returns a snapshot.
func (s *Sim) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Counters{Frags: s.frags, FreeNiovs: len(s.free), Stalls: s.stalls, Drops: s.drops,
		DontneedCalls: s.dontneedCalls, Freed: s.freed, Sends: s.sends, Stream: s.stream,
		Completed: s.completed, Copied: s.copied}
	for _, k := range s.socks {
		c.Held += k.held
		c.Queued += k.queued
		c.Stream += k.stream
	}
	return c
}

var cmsgSpace = unix.CmsgSpace(uapi.SizeofDmabufCmsg)

// Recvmsg implements the engines' seam: recvmsg(MSG_SOCK_DEVMEM) as a devmem kernel answers it,
// and recvmsg(MSG_ERRQUEUE) for zerocopy completions. A blocking caller (no MSG_DONTWAIT) on a
// blocking fd waits for data as recvmsg would, except while the NIC waits for a retransmit: then
// it gets EAGAIN, as if SO_RCVTIMEO had expired.
func (s *Sim) Recvmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	if flags&unix.MSG_ERRQUEUE != 0 {
		return s.recvErrqueue(msg)
	}
	if msg.Iov == nil || msg.Iovlen < 1 {
		return 0, unix.EFAULT
	}
	iov := unsafe.Slice(msg.Iov.Base, msg.Iov.Len)
	if s.cfg.Plain {
		n, err := unix.Read(fd, iov)
		msg.Controllen, msg.Flags = 0, 0
		return n, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.sock(fd)
	if err := s.arrive(k, fd, flags&unix.MSG_DONTWAIT == 0); err != nil && k.qhead == len(k.queue) {
		return 0, err
	}
	if k.qhead == len(k.queue) {
		if end, err := s.awaitData(k, fd, msg); end {
			return 0, err
		}
	}
	if k.queue[k.qhead].kind == pktPlain {
		// An skb without a dma-buf frag: ordinary bytes, no cmsg, whatever the flags.
		return s.recvPlain(k, iov, msg), nil
	}
	if flags&unix.MSG_SOCK_DEVMEM == 0 {
		// An unreadable skb read without MSG_SOCK_DEVMEM.
		return 0, unix.EFAULT
	}
	if msg.Control == nil || int(msg.Controllen) < cmsgSpace {
		// Not even one devmem cmsg fits, and nothing was copied.
		return 0, unix.Errno(uapi.ETOOSMALL)
	}
	return s.recvFrags(k, iov, msg), nil
}

// awaitData handles a recvmsg that finds k's queue empty: end says the call returns (0, err) now;
// otherwise data has come in after a wait for a retransmit.
func (s *Sim) awaitData(k *sock, fd int, msg *unix.Msghdr) (end bool, err error) {
	if k.eof {
		msg.Controllen, msg.Flags = 0, 0
		return true, nil
	}
	if k.dropped.IsZero() {
		return true, unix.EAGAIN
	}
	s.stalls++
	if k.held > 0 && !k.told {
		// The reader holds tokens it can return: say so once, as the kernel's empty queue does,
		// so it hands them back.
		k.told = true
		return true, unix.EAGAIN
	}
	// Nothing the reader can do but wait for the retransmit. A real socket would get the
	// retransmitted packet and wake the reader; the real socket under the simulator gives no new
	// wakeup for data already in it, so the wait happens here (bounded, in case other sockets keep
	// every buffer).
	for try := 0; k.qhead == len(k.queue) && !k.dropped.IsZero() && !(k.held > 0 && !k.told) && try < 50; try++ {
		if wait := s.cfg.RTO - time.Since(k.dropped); wait > 0 {
			s.mu.Unlock()
			time.Sleep(wait)
			s.mu.Lock()
		}
		if err := s.arrive(k, fd, false); err != nil && k.qhead == len(k.queue) {
			return true, err
		}
	}
	if k.qhead == len(k.queue) {
		if k.eof {
			msg.Controllen, msg.Flags = 0, 0
			return true, nil
		}
		return true, unix.EAGAIN
	}
	return false, nil
}

// recvPlain copies the plain packets at the head of k's queue into iov, with no cmsg.
func (s *Sim) recvPlain(k *sock, iov []byte, msg *unix.Msghdr) int {
	n := 0
	for k.qhead < len(k.queue) && n < len(iov) {
		p := &k.queue[k.qhead]
		if p.kind != pktPlain {
			break
		}
		m := min(p.size, len(iov)-n)
		copy(iov[n:], k.host[p.off:p.off+m])
		n += m
		s.consume(k, p, m)
	}
	s.compactHost(k)
	msg.Controllen, msg.Flags = 0, 0
	return n
}

// recvFrags hands out the devmem frags at the head of k's queue, one cmsg each (linear bytes
// copied to the front of iov), as many as iov and the control buffer hold.
func (s *Sim) recvFrags(k *sock, iov []byte, msg *unix.Msghdr) int {
	ctl := unsafe.Slice(msg.Control, msg.Controllen)
	s.recvs++
	maxFrags := len(ctl) / cmsgSpace
	if s.cfg.ShortEvery > 0 && s.recvs%s.cfg.ShortEvery == 0 {
		maxFrags = 1
	}
	var n, pos, co, nf int
	for k.qhead < len(k.queue) && n < len(iov) && nf < maxFrags {
		p := &k.queue[k.qhead]
		if p.kind == pktPlain {
			break // one recvmsg never mixes readable and unreadable skbs
		}
		m := min(p.size, len(iov)-n)
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[co]))
		h.Level = unix.SOL_SOCKET
		h.SetLen(unix.CmsgLen(uapi.SizeofDmabufCmsg))
		d := ctl[co+unix.CmsgLen(0) : co+unix.CmsgLen(uapi.SizeofDmabufCmsg)]
		clear(d)
		s.frags++
		if p.kind == pktLinear {
			// The kernel advances the iov only by copied bytes: linear bytes pack at its front.
			h.Type = unix.SCM_DEVMEM_LINEAR
			copy(iov[pos:], k.host[p.off:p.off+m])
			pos += m
		} else {
			h.Type = unix.SCM_DEVMEM_DMABUF
			binary.NativeEndian.PutUint64(d[0:], uint64(p.off))
			binary.NativeEndian.PutUint32(d[12:], s.allocToken(k, p.niov))
			binary.NativeEndian.PutUint32(d[16:], p.id)
		}
		binary.NativeEndian.PutUint32(d[8:], uint32(m))
		co += cmsgSpace
		nf++
		n += m
		s.consume(k, p, m)
	}
	s.compactHost(k)
	msg.SetControllen(co)
	msg.Flags = 0
	return n
}

// consume takes m bytes off the front of queued packet p (the head), dropping it when empty. A
// partly read dma-buf frag keeps its niov reference; the token handed out took another.
func (s *Sim) consume(k *sock, p *pkt, m int) {
	k.queued -= m
	if m < p.size {
		p.off += m
		p.size -= m
		p.stream += int64(m)
		return
	}
	if p.kind == pktDmabuf {
		s.unref(p.niov) // the token holds it now
	}
	k.queuedBuf -= s.perFrag()
	k.qhead++
	if k.qhead == len(k.queue) {
		k.queue, k.qhead = k.queue[:0], 0
	}
}

// compactHost drops the host-queue bytes no queued packet refers to any more.
func (s *Sim) compactHost(k *sock) {
	lo := k.hostLen
	for i := k.qhead; i < len(k.queue); i++ {
		if p := &k.queue[i]; p.kind != pktDmabuf {
			lo = p.off
			break
		}
	}
	if lo == 0 {
		return
	}
	copy(k.host, k.host[lo:k.hostLen])
	k.hostLen -= lo
	for i := k.qhead; i < len(k.queue); i++ {
		if p := &k.queue[i]; p.kind != pktDmabuf {
			p.off -= lo
		}
	}
}

// arrive is the NIC: it takes bytes off the real socket as packets, while there is room in the
// receive window and a buffer for each, and queues them. With no free niov the packets wait in the
// "wire" (the real socket) as dropped ones do, and come back one RTO later.
func (s *Sim) arrive(k *sock, fd int, block bool) error {
	if k.eof {
		return nil
	}
	if !k.dropped.IsZero() {
		if time.Since(k.dropped) < s.cfg.RTO {
			return nil
		}
		k.dropped = time.Time{}
	}
	perFrag := s.perFrag()
	room := (s.cfg.Window - k.queuedBuf) / perFrag * s.cfg.FragSize
	if room <= 0 {
		return nil
	}
	// Room in the buffers, in whole frags: a frag never straddles niovs.
	perNiov := 1
	if s.cfg.PackFrags {
		perNiov = (s.niov - s.cfg.FragOffset) / s.cfg.FragSize
	}
	bufs := len(s.free) * perNiov
	if s.cur >= 0 {
		bufs += (s.niov - s.curOff) / s.cfg.FragSize
	}
	bufs *= s.cfg.FragSize
	want := min(room, len(s.rxScratch))
	if s.cfg.UnsplitEvery != 1 {
		if bufs == 0 {
			// Is anything on the wire? Then the NIC drops it.
			var one [1]byte
			if n, _, err := unix.Recvfrom(fd, one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT); err == nil && n > 0 {
				k.dropped, k.told = time.Now(), false
				s.drops++
			}
			return nil
		}
		want = min(want, bufs)
	}
	// A non-blocking read runs under the lock; a blocking one (tests driving a blocking fd by
	// hand) releases it and reads into the socket's own staging buffer.
	buf := s.rxScratch
	var n int
	var err error
	if block && k.qhead == len(k.queue) {
		if k.scratch == nil {
			k.scratch = make([]byte, len(s.rxScratch))
		}
		buf = k.scratch
		s.mu.Unlock()
		n, _, err = unix.Recvfrom(fd, buf[:want], 0)
		s.mu.Lock()
	} else {
		n, _, err = unix.Recvfrom(fd, buf[:want], unix.MSG_DONTWAIT)
	}
	if err != nil {
		if err == unix.EAGAIN {
			return nil
		}
		return err
	}
	if n == 0 {
		k.eof = true
		return nil
	}
	for done := 0; done < n; {
		size := min(s.cfg.FragSize, n-done)
		s.enqueue(k, buf[done:done+size], perFrag)
		done += size
	}
	return nil
}

// enqueue is the NIC taking one packet of data off the wire: plain, linear or into a niov of the
// dma-buf, then onto k's queue.
func (s *Sim) enqueue(k *sock, data []byte, perFrag int) {
	size := len(data)
	if c := s.cfg.CorruptAt - 1; c >= k.stream && c < k.stream+int64(size) {
		data[c-k.stream] ^= 0xff
	}
	k.pkts++
	p := pkt{size: size, stream: k.stream, id: s.cfg.RXID}
	switch {
	case s.cfg.UnsplitEvery > 0 && k.pkts%s.cfg.UnsplitEvery == 0:
		p.kind = pktPlain
	case s.cfg.LinearEvery > 0 && k.pkts%s.cfg.LinearEvery == 0:
		p.kind = pktLinear
	}
	if p.kind != pktDmabuf {
		p.off = k.hostLen
		k.hostLen += copy(k.host[k.hostLen:], data)
	} else {
		if s.cur < 0 || !s.cfg.PackFrags || s.curOff+size > s.niov {
			if s.cur >= 0 {
				s.unref(uint32(s.cur)) // the NIC is done filling it
			}
			if len(s.free) == 0 {
				// Cannot happen: want was capped by the free buffer room.
				panic("devmemsim: no free niov for an accepted packet")
			}
			s.cur = int(s.free[len(s.free)-1])
			s.free = s.free[:len(s.free)-1]
			s.refs[s.cur] = 1 // the NIC's own reference while it fills the niov
			s.curOff = s.cfg.FragOffset
		}
		p.niov = uint32(s.cur)
		p.off = s.cur*s.niov + s.curOff
		copy(s.mem[p.off:], data)
		s.refs[s.cur]++
		s.curOff += size
		if !s.cfg.PackFrags {
			s.unref(uint32(s.cur))
			s.cur = -1
		}
		if k.pkts == s.cfg.WrongIDAt {
			p.id++
		}
	}
	if len(k.queue) == cap(k.queue) && k.qhead > 0 {
		k.queue = k.queue[:copy(k.queue, k.queue[k.qhead:])]
		k.qhead = 0
	}
	k.queue = append(k.queue, p)
	k.queued += size
	k.queuedBuf += perFrag
	k.stream += int64(size)
}

// perFrag is the buffer memory one queued frag stands for, what the window counts: a whole niov
// unless frags are packed.
func (s *Sim) perFrag() int {
	if s.cfg.PackFrags {
		return s.cfg.FragSize
	}
	return s.niov
}

// unref drops one reference on niov, returning it to the freelist at zero.
func (s *Sim) unref(niov uint32) {
	if s.refs[niov]--; s.refs[niov] == 0 {
		s.free = append(s.free, niov)
	}
}

func (s *Sim) allocToken(k *sock, niov uint32) uint32 {
	k.held++
	s.refs[niov]++
	for t := k.lowTok; t < len(k.tokNiov); t++ {
		if k.tokNiov[t] == -1 {
			k.tokNiov[t] = int32(niov)
			k.lowTok = t + 1
			return uint32(t)
		}
	}
	k.tokNiov = append(k.tokNiov, int32(niov))
	k.lowTok = len(k.tokNiov)
	return uint32(len(k.tokNiov) - 1)
}

// Setsockopt implements the seam: SO_DEVMEM_DONTNEED with the kernel's limits and return value,
// and the options the TX engine sets.
func (s *Sim) Setsockopt(fd, level, name int, val []byte) (int, error) {
	if level != unix.SOL_SOCKET {
		return 0, unix.ENOPROTOOPT
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != unix.SO_BINDTODEVICE && len(val) < 4 {
		return 0, unix.EINVAL // sk_setsockopt: optlen < sizeof(int), before any option
	}
	switch name {
	case unix.SO_DEVMEM_DONTNEED:
		if len(val)%uapi.SizeofDmabufToken != 0 || len(val) > uapi.MAX_DONTNEED_TOKENS*uapi.SizeofDmabufToken {
			return 0, unix.EINVAL
		}
		s.dontneedCalls++
		k := s.sock(fd)
		inspected, freed := 0, 0
	ranges:
		for i := 0; i+uapi.SizeofDmabufToken <= len(val); i += uapi.SizeofDmabufToken {
			start := binary.NativeEndian.Uint32(val[i:])
			count := binary.NativeEndian.Uint32(val[i+4:])
			for j := uint32(0); j < count; j++ {
				if inspected++; inspected > uapi.MAX_DONTNEED_FRAGS {
					break ranges
				}
				t := uint64(start) + uint64(j)
				if t >= uint64(len(k.tokNiov)) || k.tokNiov[t] < 0 {
					continue // unknown tokens are skipped silently
				}
				s.unref(uint32(k.tokNiov[t]))
				k.tokNiov[t] = -1
				k.lowTok = min(k.lowTok, int(t))
				k.held--
				freed++
			}
		}
		s.freed += freed
		return freed, nil
	case unix.SO_ZEROCOPY:
		v := int32(binary.NativeEndian.Uint32(val))
		if v < 0 || v > 1 {
			return 0, unix.EINVAL
		}
		s.zerocopy = v == 1
		return 0, nil
	case unix.SO_BINDTODEVICE:
		s.bound = string(val)
		for i := 0; i < len(s.bound); i++ {
			if s.bound[i] == 0 {
				s.bound = s.bound[:i]
				break
			}
		}
		return 0, nil
	}
	return 0, unix.ENOPROTOOPT
}

// GetsockoptInt implements the seam: SO_INCOMING_NAPI_ID answers Config.NapiID, anything else goes
// to the real socket.
func (s *Sim) GetsockoptInt(fd, level, name int) (int, error) {
	if level == unix.SOL_SOCKET && name == unix.SO_INCOMING_NAPI_ID {
		return int(s.cfg.NapiID), nil
	}
	return unix.GetsockoptInt(fd, level, name)
}

// rawIovec is struct iovec with the base as a plain integer: devmem TX iovecs carry dma-buf
// offsets, not pointers.
type rawIovec struct {
	Base uintptr
	Len  uint64
}

// Sendmsg implements the seam: devmem TX as tcp_sendmsg_locked checks it, then the bytes at the
// iovecs' offsets go out on the real socket and a zerocopy completion is queued.
func (s *Sim) Sendmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, cmsgErr, ok := devmemID(msg)
	if !ok {
		return 0, unix.EINVAL // this simulator only speaks devmem TX
	}
	zc := flags&unix.MSG_ZEROCOPY != 0 && s.zerocopy
	if zc && cmsgErr == nil {
		// net_devmem_get_binding: an unknown id, then the route's device against the binding's.
		if s.cfg.TXID == 0 || id != s.cfg.TXID {
			return 0, unix.EINVAL
		}
		if s.cfg.RouteDev != "" && s.cfg.BindDev != "" && s.cfg.RouteDev != s.cfg.BindDev {
			return 0, unix.ENODEV
		}
	}
	if cmsgErr != nil || !zc {
		return 0, unix.EINVAL
	}
	s.attempts++
	if s.cfg.NobufsEvery > 0 && s.attempts%s.cfg.NobufsEvery == 0 && len(s.compl) > 0 {
		return 0, unix.ENOBUFS
	}
	var iovs []rawIovec
	if msg.Iov != nil && msg.Iovlen > 0 {
		iovs = unsafe.Slice((*rawIovec)(unsafe.Pointer(msg.Iov)), msg.Iovlen)
	}
	// An iovec outside the buffer ends the send there: EFAULT only when nothing came before it.
	total := 0
	for _, v := range iovs {
		if uint64(v.Base) >= uint64(len(s.mem)) || v.Len > uint64(len(s.mem))-uint64(v.Base) {
			if total == 0 {
				return 0, unix.EFAULT
			}
			break
		}
		total += int(v.Len)
	}
	total = min(total, len(s.scratch))
	if s.cfg.ShortEvery > 0 && (s.sends+1)%s.cfg.ShortEvery == 0 && total > 1 {
		total /= 2
	}
	got := 0
	for _, v := range iovs {
		if got == total {
			break
		}
		got += copy(s.scratch[got:total], s.mem[v.Base:v.Base+uintptr(v.Len)])
	}
	if c := s.cfg.CorruptAt - 1; c >= s.stream && c < s.stream+int64(total) {
		s.scratch[c-s.stream] ^= 0xff
	}
	n, err := unix.Write(fd, s.scratch[:total])
	if err != nil || n <= 0 {
		return 0, err
	}
	s.stream += int64(n)
	s.sends++
	seq := s.zcSeq
	s.zcSeq++
	copied := s.cfg.CopiedEvery > 0 && s.sends%s.cfg.CopiedEvery == 0
	// The kernel extends the last queued notification without comparing codes
	// (skb_zerocopy_notify_extend), so a COPIED flag can be absorbed into a range.
	if k := len(s.compl); k > 0 && s.compl[k-1].hi+1 == seq {
		s.compl[k-1].hi = seq
	} else {
		s.compl = append(s.compl, completion{lo: seq, hi: seq, copied: copied})
	}
	return n, nil
}

// devmemID finds the SCM_DEVMEM_DMABUF cmsg. ok is false without one; err is EINVAL when its
// length is not CMSG_LEN(4), as sock_cmsg_send requires.
func devmemID(msg *unix.Msghdr) (id uint32, err error, ok bool) {
	if msg.Control == nil || msg.Controllen == 0 {
		return 0, nil, false
	}
	rem := unsafe.Slice(msg.Control, msg.Controllen)
	for len(rem) >= unix.SizeofCmsghdr {
		h, data, r, err := unix.ParseOneSocketControlMessage(rem)
		if err != nil {
			return 0, nil, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_DEVMEM_DMABUF {
			if h.Len != uint64(unix.CmsgLen(4)) {
				return 0, unix.EINVAL, true
			}
			return binary.NativeEndian.Uint32(data), nil, true
		}
		rem = r
	}
	return 0, nil, false
}

// Complete releases completions held by HoldCompletions.
func (s *Sim) Complete() {
	s.mu.Lock()
	s.released = true
	s.mu.Unlock()
}

func (s *Sim) recvErrqueue(msg *unix.Msghdr) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.compl) == 0 || (s.cfg.HoldCompletions && !s.released) {
		return 0, unix.EAGAIN
	}
	// ip_recv_error dequeues the entry before copying: a truncated read loses it.
	c := s.compl[0]
	s.compl = s.compl[:copy(s.compl, s.compl[1:])]
	space := unix.CmsgSpace(uapi.SizeofSockExtendedErr)
	if msg.Control == nil || int(msg.Controllen) < space {
		msg.Controllen = 0
		msg.Flags = unix.MSG_ERRQUEUE | unix.MSG_CTRUNC
		return 0, nil
	}
	ctl := unsafe.Slice(msg.Control, msg.Controllen)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
	h.Level, h.Type = unix.SOL_IP, unix.IP_RECVERR
	if s.cfg.IPv6 {
		h.Level, h.Type = unix.SOL_IPV6, unix.IPV6_RECVERR
	}
	h.SetLen(unix.CmsgLen(uapi.SizeofSockExtendedErr))
	ee := (*unix.SockExtendedErr)(unsafe.Pointer(&ctl[unix.CmsgLen(0)]))
	*ee = unix.SockExtendedErr{Origin: unix.SO_EE_ORIGIN_ZEROCOPY, Info: c.lo, Data: c.hi}
	n := int(c.hi-c.lo) + 1
	s.completed += n
	if c.copied {
		ee.Code = unix.SO_EE_CODE_ZEROCOPY_COPIED
		s.copied += n
	}
	msg.SetControllen(space)
	msg.Flags = unix.MSG_ERRQUEUE
	return 0, nil
}

// Buffer is the simulator's dma-buf as the engines see it (a dmabuf.Mapped).
func (s *Sim) Buffer() *Buffer { return &Buffer{s: s} }

// Buffer adapts a Sim's memory to dmabuf.Buffer and dmabuf.Mapped.
type Buffer struct{ s *Sim }

// FD is the backing memfd (not a dma-buf: nothing can bind it).
func (b *Buffer) FD() int { return b.s.memfd }

// Size is the buffer's length.
func (b *Buffer) Size() int64 { return int64(len(b.s.mem)) }

// Kind names the provider.
func (b *Buffer) Kind() string { return "devmemsim" }

// Bytes is the mapped memory.
func (b *Buffer) Bytes() []byte { return b.s.mem }

// BeginCPU is a no-op: the memfd needs no cache maintenance.
func (b *Buffer) BeginCPU(bool) error { return nil }

// EndCPU is a no-op.
func (b *Buffer) EndCPU(bool) error { return nil }

// Close does nothing; close the Sim.
func (b *Buffer) Close() error { return nil }

// ReadAt copies out of the buffer.
func (b *Buffer) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b.s.mem)) {
		return 0, errors.New("devmemsim: read outside the buffer")
	}
	n := copy(p, b.s.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt copies into the buffer.
func (b *Buffer) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(b.s.mem)) {
		return 0, errors.New("devmemsim: write outside the buffer")
	}
	return copy(b.s.mem[off:], p), nil
}

// Unmapped hides Bytes, so an engine must validate through ReadAt as it does for GPU memory.
func (b *Buffer) Unmapped() *UnmappedBuffer { return &UnmappedBuffer{b: b} }

// UnmappedBuffer is a Buffer without the Mapped methods.
type UnmappedBuffer struct{ b *Buffer }

// FD implements dmabuf.Buffer.
func (u *UnmappedBuffer) FD() int { return u.b.FD() }

// Size implements dmabuf.Buffer.
func (u *UnmappedBuffer) Size() int64 { return u.b.Size() }

// Kind implements dmabuf.Buffer.
func (u *UnmappedBuffer) Kind() string { return "devmemsim-unmapped" }

// Close implements dmabuf.Buffer.
func (u *UnmappedBuffer) Close() error { return nil }

// ReadAt implements dmabuf.Buffer.
func (u *UnmappedBuffer) ReadAt(p []byte, off int64) (int, error) { return u.b.ReadAt(p, off) }

// WriteAt implements dmabuf.Buffer.
func (u *UnmappedBuffer) WriteAt(p []byte, off int64) (int, error) { return u.b.WriteAt(p, off) }
