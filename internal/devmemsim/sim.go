// Package devmemsim is a devmem TCP socket simulator for tests: it stands at the rx/tx engines'
// kernel seam (recvmsg, sendmsg, setsockopt, getsockopt on one fd) and behaves like a kernel with a
// devmem-capable NIC whose queues are bound to a dma-buf.
//
// RX: it reads the real bytes of the (real) TCP socket under it and presents them as devmem frags:
// the payload is written into a memfd-backed buffer at niov-granular (4 KiB) offsets taken from a
// freelist, each frag gets an SCM_DEVMEM_DMABUF cmsg with a token, SO_DEVMEM_DONTNEED follows the
// kernel's limits and return value, a too-small control buffer gets ETOOSMALL, and when tokens are
// not returned the freelist drains and receive stalls. Faults (LINEAR frags, wrong dma-buf ids,
// short reads, corrupted bytes) are injected on request.
//
// TX: sendmsg with SCM_DEVMEM_DMABUF and MSG_ZEROCOPY reads the buffer at the iovecs' offsets,
// writes those bytes to the socket and queues zerocopy completions on a simulated error queue.
//
// Where the host kernel can answer (devmem calls on a plain TCP socket), the root tests in rx and
// tx check that the simulator gives the same errno. Import it from tests only.
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

// NiovSize is the simulated NIC's buffer granule (PAGE_SIZE, as bind-rx uses by default).
const NiovSize = 4096

// Config describes the simulated binding and the faults to inject. Counts are 1-based: LinearEvery
// 3 makes frags 3, 6, 9... LINEAR.
type Config struct {
	// Size is the dma-buf size, a multiple of NiovSize.
	Size int64
	// RXID is the dma-buf id RX frags carry (bind-rx's answer); TXID the id sendmsg must name (0:
	// no bind-tx on this socket, so SCM_DEVMEM_DMABUF sendmsg fails with EINVAL as on plain TCP).
	RXID, TXID uint32
	// FragSize is the largest frag (NiovSize when 0); FragOffset puts frags that far into their
	// niov (0: page aligned). FragSize+FragOffset must fit one niov.
	FragSize, FragOffset int
	// NapiID is what SO_INCOMING_NAPI_ID answers.
	NapiID uint32
	// Plain makes the socket behave like one whose flow landed on an unbound queue (or a kernel
	// path without devmem): recvmsg(MSG_SOCK_DEVMEM) returns the bytes in the iov and no cmsg.
	Plain bool
	// LinearEvery delivers every Nth frag as SCM_DEVMEM_LINEAR, copied into the iov.
	LinearEvery int
	// WrongIDAt gives the Nth frag dma-buf id RXID+1.
	WrongIDAt int
	// CorruptAt flips the byte at this stream offset (1-based: 0 disables; stream offset
	// CorruptAt-1 is corrupted).
	CorruptAt int64
	// ShortEvery cuts every Nth recvmsg to one frag and every Nth sendmsg to half its bytes.
	ShortEvery int
	// StallDelay is how long a recvmsg waits on a drained freelist before EAGAIN (1 ms when 0).
	StallDelay time.Duration
	// HoldCompletions keeps zerocopy completions off the error queue until Complete is called.
	HoldCompletions bool
	// CopiedEvery marks every Nth completion SO_EE_CODE_ZEROCOPY_COPIED.
	CopiedEvery int
	// NobufsEvery refuses every Nth sendmsg with ENOBUFS while completions are queued, as the
	// kernel does when the socket's optmem is used up by zerocopy state.
	NobufsEvery int
	// RouteDev is the device the route to the peer leaves by; sendmsg fails with ENODEV when it is
	// set and differs from the device SO_BINDTODEVICE named.
	RouteDev string
}

// Sim is one simulated devmem socket plus its dma-buf. Safe for concurrent use.
type Sim struct {
	cfg   Config
	memfd int
	mem   []byte
	mmap  bool

	mu       sync.Mutex
	free     []uint32 // niov freelist (a stack, like the page pool's cache)
	tokNiov  []int32  // token -> niov, -1 when free
	lowTok   int      // no free token below this (the kernel's xarray hands out the lowest)
	held     int
	scratch  []byte
	frags    int
	recvs    int
	sends    int
	attempts int
	stream   int64

	stalls, dontneedCalls, freed int

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
	if cfg.Size <= 0 || cfg.Size%NiovSize != 0 {
		return nil, fmt.Errorf("devmemsim: size %d must be a positive multiple of %d", cfg.Size, NiovSize)
	}
	if cfg.FragSize == 0 {
		cfg.FragSize = NiovSize - cfg.FragOffset
	}
	if cfg.FragSize < 1 || cfg.FragOffset < 0 || cfg.FragSize+cfg.FragOffset > NiovSize {
		return nil, fmt.Errorf("devmemsim: frag size %d at offset %d does not fit a %d-byte niov", cfg.FragSize, cfg.FragOffset, NiovSize)
	}
	if cfg.RXID == 0 {
		cfg.RXID = 1
	}
	if cfg.StallDelay == 0 {
		cfg.StallDelay = time.Millisecond
	}
	s := &Sim{cfg: cfg, memfd: -1}
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
	n := int(cfg.Size / NiovSize)
	s.free = make([]uint32, n)
	for i := range s.free {
		s.free[i] = uint32(n - 1 - i) // pop order 0, 1, 2...
	}
	s.tokNiov = make([]int32, n)
	for i := range s.tokNiov {
		s.tokNiov[i] = -1
	}
	s.scratch = make([]byte, 1<<20)
	return s, nil
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
	Stalls        int // recvmsg calls that found the freelist empty
	DontneedCalls int
	Freed         int // frags freed by DONTNEED
	Sends         int // successful sendmsg calls
	Stream        int64
}

// Counters returns a snapshot.
func (s *Sim) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Counters{Frags: s.frags, Held: s.held, FreeNiovs: len(s.free), Stalls: s.stalls,
		DontneedCalls: s.dontneedCalls, Freed: s.freed, Sends: s.sends, Stream: s.stream}
}

var cmsgSpace = unix.CmsgSpace(uapi.SizeofDmabufCmsg)

// Recvmsg implements the engines' seam: recvmsg(MSG_SOCK_DEVMEM) as a devmem kernel answers it,
// and recvmsg(MSG_ERRQUEUE) for zerocopy completions.
func (s *Sim) Recvmsg(fd int, msg *unix.Msghdr, flags int) (int, error) {
	if flags&uapi.MSG_ERRQUEUE != 0 {
		return s.recvErrqueue(msg)
	}
	if msg.Iov == nil || msg.Iovlen < 1 {
		return 0, unix.EFAULT
	}
	iov := unsafe.Slice(msg.Iov.Base, msg.Iov.Len)
	s.mu.Lock()
	if s.cfg.Plain {
		s.mu.Unlock()
		n, err := unix.Read(fd, iov)
		msg.Controllen, msg.Flags = 0, 0
		return n, err
	}
	if flags&uapi.MSG_SOCK_DEVMEM == 0 {
		// An unreadable skb read without MSG_SOCK_DEVMEM.
		s.mu.Unlock()
		return 0, unix.EFAULT
	}
	if msg.Control == nil || int(msg.Controllen) < cmsgSpace {
		s.mu.Unlock()
		return 0, unix.Errno(uapi.ETOOSMALL)
	}
	ctl := unsafe.Slice(msg.Control, msg.Controllen)
	if len(s.free) == 0 {
		// The NIC has no buffers: nothing arrives until tokens come back.
		s.stalls++
		s.mu.Unlock()
		time.Sleep(s.cfg.StallDelay)
		return 0, unix.EAGAIN
	}
	fs := s.cfg.FragSize
	want := min(len(iov), len(ctl)/cmsgSpace*fs, len(s.free)*fs, len(s.scratch))
	s.recvs++
	if s.cfg.ShortEvery > 0 && s.recvs%s.cfg.ShortEvery == 0 {
		want = min(want, fs)
	}
	n, err := unix.Read(fd, s.scratch[:want])
	if err != nil || n <= 0 {
		s.mu.Unlock()
		if err == nil && n == 0 {
			msg.Controllen, msg.Flags = 0, 0
		}
		return max(n, 0), err
	}
	var pos, co int
	for done := 0; done < n; {
		size := min(fs, n-done)
		data := s.scratch[done : done+size]
		s.frags++
		if c := s.cfg.CorruptAt - 1; c >= s.stream && c < s.stream+int64(size) {
			data[c-s.stream] ^= 0xff
		}
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[co]))
		h.Level = uapi.SOL_SOCKET
		h.SetLen(unix.CmsgLen(uapi.SizeofDmabufCmsg))
		d := ctl[co+unix.CmsgLen(0) : co+unix.CmsgLen(uapi.SizeofDmabufCmsg)]
		clear(d)
		if s.cfg.LinearEvery > 0 && s.frags%s.cfg.LinearEvery == 0 {
			// The kernel advances the iov only by copied bytes: linear bytes pack at its front.
			h.Type = uapi.SCM_DEVMEM_LINEAR
			copy(iov[pos:], data)
			pos += size
			binary.NativeEndian.PutUint32(d[8:], uint32(size))
		} else {
			niov := s.free[len(s.free)-1]
			s.free = s.free[:len(s.free)-1]
			off := int(niov)*NiovSize + s.cfg.FragOffset
			copy(s.mem[off:], data)
			tok := s.allocToken(niov)
			id := s.cfg.RXID
			if s.frags == s.cfg.WrongIDAt {
				id++
			}
			h.Type = uapi.SCM_DEVMEM_DMABUF
			binary.NativeEndian.PutUint64(d[0:], uint64(off))
			binary.NativeEndian.PutUint32(d[8:], uint32(size))
			binary.NativeEndian.PutUint32(d[12:], tok)
			binary.NativeEndian.PutUint32(d[16:], id)
		}
		co += cmsgSpace
		done += size
		s.stream += int64(size)
	}
	s.mu.Unlock()
	msg.SetControllen(co)
	msg.Flags = 0
	return n, nil
}

func (s *Sim) allocToken(niov uint32) uint32 {
	for t := s.lowTok; t < len(s.tokNiov); t++ {
		if s.tokNiov[t] < 0 {
			s.tokNiov[t] = int32(niov)
			s.lowTok = t + 1
			s.held++
			return uint32(t)
		}
	}
	// Cannot happen: there are as many token slots as niovs and each token pins one.
	panic("devmemsim: token space exhausted")
}

// Setsockopt implements the seam: SO_DEVMEM_DONTNEED with the kernel's limits and return value,
// and the options the TX engine sets.
func (s *Sim) Setsockopt(fd, level, name int, val []byte) (int, error) {
	if level != uapi.SOL_SOCKET {
		return 0, unix.ENOPROTOOPT
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch name {
	case uapi.SO_DEVMEM_DONTNEED:
		if len(val)%uapi.SizeofDmabufToken != 0 || len(val) > uapi.MAX_DONTNEED_TOKENS*uapi.SizeofDmabufToken {
			return 0, unix.EINVAL
		}
		s.dontneedCalls++
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
				if t >= uint64(len(s.tokNiov)) || s.tokNiov[t] < 0 {
					continue // unknown tokens are skipped silently
				}
				s.free = append(s.free, uint32(s.tokNiov[t]))
				s.tokNiov[t] = -1
				s.lowTok = min(s.lowTok, int(t))
				s.held--
				freed++
			}
		}
		s.freed += freed
		return freed, nil
	case uapi.SO_ZEROCOPY:
		if len(val) < 4 {
			return 0, unix.EINVAL
		}
		s.zerocopy = binary.NativeEndian.Uint32(val) != 0
		return 0, nil
	case uapi.SO_BINDTODEVICE:
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
	if level == uapi.SOL_SOCKET && name == uapi.SO_INCOMING_NAPI_ID {
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
	id, ok := devmemID(msg)
	if !ok {
		return 0, unix.EINVAL // this simulator only speaks devmem TX
	}
	if flags&uapi.MSG_ZEROCOPY == 0 || !s.zerocopy {
		return 0, unix.EINVAL
	}
	if s.cfg.TXID == 0 || id != s.cfg.TXID {
		return 0, unix.EINVAL
	}
	if s.cfg.RouteDev != "" && s.cfg.RouteDev != s.bound {
		return 0, unix.ENODEV
	}
	s.attempts++
	if s.cfg.NobufsEvery > 0 && s.attempts%s.cfg.NobufsEvery == 0 && len(s.compl) > 0 {
		return 0, unix.ENOBUFS
	}
	var iovs []rawIovec
	if msg.Iov != nil && msg.Iovlen > 0 {
		iovs = unsafe.Slice((*rawIovec)(unsafe.Pointer(msg.Iov)), msg.Iovlen)
	}
	total := 0
	for _, v := range iovs {
		if uint64(v.Base) >= uint64(len(s.mem)) || v.Len > uint64(len(s.mem))-uint64(v.Base) {
			return 0, unix.EFAULT
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
	if k := len(s.compl); k > 0 && s.compl[k-1].hi+1 == seq && s.compl[k-1].copied == copied {
		s.compl[k-1].hi = seq
	} else {
		s.compl = append(s.compl, completion{lo: seq, hi: seq, copied: copied})
	}
	return n, nil
}

func devmemID(msg *unix.Msghdr) (uint32, bool) {
	if msg.Control == nil || msg.Controllen == 0 {
		return 0, false
	}
	rem := unsafe.Slice(msg.Control, msg.Controllen)
	for len(rem) >= unix.SizeofCmsghdr {
		h, data, r, err := unix.ParseOneSocketControlMessage(rem)
		if err != nil {
			return 0, false
		}
		if h.Level == uapi.SOL_SOCKET && h.Type == uapi.SCM_DEVMEM_DMABUF && len(data) >= 4 {
			return binary.NativeEndian.Uint32(data), true
		}
		rem = r
	}
	return 0, false
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
	space := unix.CmsgSpace(uapi.SizeofSockExtendedErr)
	if msg.Control == nil || int(msg.Controllen) < space {
		msg.Controllen = 0
		msg.Flags = uapi.MSG_ERRQUEUE | unix.MSG_CTRUNC
		return 0, nil
	}
	c := s.compl[0]
	s.compl = s.compl[:copy(s.compl, s.compl[1:])]
	ctl := unsafe.Slice(msg.Control, msg.Controllen)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
	h.Level, h.Type = uapi.SOL_IP, uapi.IP_RECVERR
	h.SetLen(unix.CmsgLen(uapi.SizeofSockExtendedErr))
	ee := (*uapi.SockExtendedErr)(unsafe.Pointer(&ctl[unix.CmsgLen(0)]))
	*ee = uapi.SockExtendedErr{Origin: uapi.SO_EE_ORIGIN_ZEROCOPY, Info: c.lo, Data: c.hi}
	if c.copied {
		ee.Code = uapi.SO_EE_CODE_ZEROCOPY_COPIED
	}
	msg.SetControllen(space)
	msg.Flags = uapi.MSG_ERRQUEUE
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
