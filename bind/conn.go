// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"syscall"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// transport carries one generic netlink request and returns its replies. The kernel transport is a
// sockConn; tests plug in a genltest connection. Kernel refusals come back as *ackError.
type transport interface {
	execute(m genetlink.Message, family uint16, flags netlink.HeaderFlags) ([]genetlink.Message, error)
	Close() error
}

// ackError is a kernel refusal as the netlink error message (or a dump's NLMSG_DONE) carried it.
type ackError struct {
	Errno    syscall.Errno
	Message  string // NLMSGERR_ATTR_MSG
	Offset   int    // NLMSGERR_ATTR_OFFS: byte offset into the request, from its nlmsghdr; 0 = none
	MissType uint16 // NLMSGERR_ATTR_MISS_TYPE, valid when HasMiss
	MissNest int    // NLMSGERR_ATTR_MISS_NEST: offset of the nest lacking MissType; 0 = top level
	HasMiss  bool
}

func (e *ackError) Error() string {
	s := e.Errno.Error()
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Offset != 0 {
		s += fmt.Sprintf(" (offset %d)", e.Offset)
	}
	if e.HasMiss {
		s += fmt.Sprintf(" (missing attribute %d, nest offset %d)", e.MissType, e.MissNest)
	}
	return s
}

func (e *ackError) Unwrap() error { return e.Errno }

// errDumpInterrupted reports NLM_F_DUMP_INTR: the kernel's list changed during the dump, so the
// replies may be inconsistent and the dump is worth repeating.
var errDumpInterrupted = errors.New("dump interrupted by a concurrent change")

const (
	nlmsgHdrLen = unix.SizeofNlMsghdr // 16
	// genlHdrLen is the generic netlink header after nlmsghdr; extack offsets of request attributes
	// therefore start at nlmsgHdrLen+genlHdrLen.
	genlHdrLen = unix.GENL_HDRLEN
	// recvBufSize exceeds the largest datagram the kernel builds for a dump (32 KiB less skb
	// overhead), so a reply is never truncated.
	recvBufSize = 64 << 10
)

// sockConn is a NETLINK_GENERIC socket driven by hand instead of through mdlayher/netlink, whose ack
// parser drops NLMSGERR_ATTR_MISS_TYPE and MISS_NEST. It is safe for concurrent use; requests are
// serialised.
type sockConn struct {
	mu  sync.Mutex
	f   *os.File
	rc  syscall.RawConn
	seq uint32
	buf []byte
}

// dialKernel opens a generic netlink socket in the calling thread's network namespace with extended
// acks, capped acks (the kernel does not echo the request back) and strict attribute checking.
func dialKernel() (*sockConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("open generic netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind generic netlink socket: %w", err)
	}
	for _, opt := range []int{unix.NETLINK_EXT_ACK, unix.NETLINK_CAP_ACK, unix.NETLINK_GET_STRICT_CHK} {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, opt, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("set netlink socket option %d: %w", opt, err)
		}
	}
	return newSockConn(fd)
}

// newSockConn takes ownership of fd, a non-blocking datagram socket that speaks netlink framing: the
// kernel, or in tests one end of a socketpair.
func newSockConn(fd int) (*sockConn, error) {
	f := os.NewFile(uintptr(fd), "netlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	return &sockConn{f: f, rc: rc, seq: rand.Uint32(), buf: make([]byte, recvBufSize)}, nil
}

// Close closes the socket. For a socket that created dma-buf bindings this is the unbind.
func (c *sockConn) Close() error { return c.f.Close() }

func (c *sockConn) execute(m genetlink.Message, family uint16, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	if flags&(netlink.Acknowledge|netlink.Dump) == 0 {
		// Without either the end of the answer is not marked, and a do request that fails would
		// be indistinguishable from one still in flight.
		return nil, errors.New("netlink request needs the ack or dump flag")
	}
	body, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode generic netlink message: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	seq := c.seq
	req := make([]byte, nlmsgHdrLen+len(body))
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], family)
	binary.NativeEndian.PutUint16(req[6:], uint16(flags|netlink.Request))
	binary.NativeEndian.PutUint32(req[8:], seq)
	copy(req[nlmsgHdrLen:], body)
	if err := c.send(req); err != nil {
		return nil, err
	}
	return c.receive(seq, family)
}

func (c *sockConn) send(req []byte) error {
	var werr error
	err := c.rc.Write(func(fd uintptr) bool {
		var n int
		n, werr = unix.Write(int(fd), req)
		if werr == unix.EAGAIN {
			return false
		}
		if werr == nil && n != len(req) {
			werr = fmt.Errorf("short netlink write: %d of %d bytes", n, len(req))
		}
		return true
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("send netlink request: %w", err)
	}
	return nil
}

// receive reads datagrams until the answer to seq is complete: the ack of a do request or the
// NLMSG_DONE of a dump.
func (c *sockConn) receive(seq uint32, family uint16) ([]genetlink.Message, error) {
	var out []genetlink.Message
	interrupted := false
	for {
		var n, rflags int
		var rerr error
		err := c.rc.Read(func(fd uintptr) bool {
			n, _, rflags, _, rerr = unix.Recvmsg(int(fd), c.buf, nil, 0)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return nil, fmt.Errorf("receive netlink reply: %w", err)
		}
		if rflags&unix.MSG_TRUNC != 0 {
			return nil, fmt.Errorf("receive netlink reply: datagram larger than %d bytes", len(c.buf))
		}
		msgs, err := splitMessages(c.buf[:n])
		if err != nil {
			return nil, fmt.Errorf("receive netlink reply: %w", err)
		}
		for _, nm := range msgs {
			if nm.Header.Sequence != seq {
				continue // a late answer to an earlier request that gave up
			}
			switch nm.Header.Type {
			case netlink.Error, netlink.Done:
				// The ack of a do request or the end of a dump: either may carry an error.
				parse := parseAck
				if nm.Header.Type == netlink.Done {
					parse = parseDone
				}
				ae, err := parse(nm)
				if err != nil {
					return nil, fmt.Errorf("receive netlink reply: %w", err)
				}
				if ae != nil {
					return nil, ae
				}
				if interrupted {
					return nil, errDumpInterrupted
				}
				return out, nil
			case netlink.Noop:
				continue
			case netlink.Overrun:
				return nil, errors.New("receive netlink reply: overrun")
			}
			if nm.Header.Type != netlink.HeaderType(family) {
				return nil, fmt.Errorf("receive netlink reply: message type %d, want family %d", nm.Header.Type, family)
			}
			if nm.Header.Flags&netlink.DumpInterrupted != 0 {
				interrupted = true
			}
			var gm genetlink.Message
			// c.buf is reused by the next read; the reply must outlive it.
			if err := gm.UnmarshalBinary(slices.Clone(nm.Data)); err != nil {
				return nil, fmt.Errorf("receive netlink reply: %w", err)
			}
			out = append(out, gm)
		}
	}
}

// splitMessages cuts one datagram into netlink messages, refusing lengths that leave the buffer.
func splitMessages(b []byte) ([]netlink.Message, error) {
	var msgs []netlink.Message
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b[0:]))
		if l < nlmsgHdrLen || l > len(b) {
			return nil, fmt.Errorf("netlink message length %d outside the %d bytes left", l, len(b))
		}
		msgs = append(msgs, netlink.Message{
			Header: netlink.Header{
				Length:   uint32(l),
				Type:     netlink.HeaderType(binary.NativeEndian.Uint16(b[4:])),
				Flags:    netlink.HeaderFlags(binary.NativeEndian.Uint16(b[6:])),
				Sequence: binary.NativeEndian.Uint32(b[8:]),
				PID:      binary.NativeEndian.Uint32(b[12:]),
			},
			Data: b[nlmsgHdrLen:l],
		})
		al := nlmsgAlign(l)
		if al >= len(b) {
			break
		}
		b = b[al:]
	}
	if len(msgs) == 0 {
		return nil, errors.New("datagram shorter than a netlink header")
	}
	return msgs, nil
}

func nlmsgAlign(n int) int { return (n + 3) &^ 3 }

// parseAck decodes an NLMSG_ERROR payload: an errno (0 for a plain ack), the request's header (and,
// without NLM_F_CAPPED, its payload), then extended-ack TLVs when NLM_F_ACK_TLVS is set. It returns
// nil for a successful ack.
func parseAck(m netlink.Message) (*ackError, error) {
	d := m.Data
	if len(d) < 4+nlmsgHdrLen {
		return nil, fmt.Errorf("netlink error message of %d bytes, want at least %d", len(d), 4+nlmsgHdrLen)
	}
	code := int32(binary.NativeEndian.Uint32(d))
	if code == 0 {
		return nil, nil
	}
	ae := &ackError{Errno: errnoOf(code)}
	if m.Header.Flags&netlink.AcknowledgeTLVs == 0 {
		return ae, nil
	}
	off := 4 + nlmsgHdrLen
	if m.Header.Flags&netlink.Capped == 0 {
		// The whole request is echoed; its own length says where the TLVs begin.
		off = 4 + nlmsgAlign(int(binary.NativeEndian.Uint32(d[4:])))
	}
	if off > len(d) {
		return nil, fmt.Errorf("netlink error message: echoed request runs past the end (%d > %d)", off, len(d))
	}
	parseExtack(d[off:], ae)
	return ae, nil
}

// parseDone decodes an NLMSG_DONE payload: an errno when a dump failed part way, then extended-ack
// TLVs. A bare DONE (no payload, or errno 0) ends a dump successfully.
func parseDone(m netlink.Message) (*ackError, error) {
	d := m.Data
	if len(d) == 0 {
		return nil, nil
	}
	if len(d) < 4 {
		return nil, fmt.Errorf("netlink done message of %d bytes", len(d))
	}
	code := int32(binary.NativeEndian.Uint32(d))
	if code == 0 {
		return nil, nil
	}
	ae := &ackError{Errno: errnoOf(code)}
	if m.Header.Flags&netlink.AcknowledgeTLVs != 0 {
		parseExtack(d[4:], ae)
	}
	return ae, nil
}

// errnoOf turns the kernel's negative error code into an Errno.
func errnoOf(code int32) syscall.Errno {
	if code < 0 {
		code = -code
	}
	return syscall.Errno(code)
}

// parseExtack fills ae from extended-ack TLVs. Malformed TLVs end the walk: the errno alone is still
// a valid answer, and the kernel's words are a bonus.
func parseExtack(b []byte, ae *ackError) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NLMSGERR_ATTR_MSG:
			ae.Message = ad.String()
		case unix.NLMSGERR_ATTR_OFFS:
			if v, ok := u32Of(ad.Bytes()); ok {
				ae.Offset = int(v)
			}
		case uapi.NLMSGERR_ATTR_MISS_TYPE:
			if v, ok := u32Of(ad.Bytes()); ok {
				ae.MissType, ae.HasMiss = uint16(v), true
			}
		case uapi.NLMSGERR_ATTR_MISS_NEST:
			if v, ok := u32Of(ad.Bytes()); ok {
				ae.MissNest = int(v)
			}
		}
	}
}

func u32Of(b []byte) (uint32, bool) {
	if len(b) != 4 {
		return 0, false
	}
	return binary.NativeEndian.Uint32(b), true
}
