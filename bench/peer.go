// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/proto"
)

// The peer role plays the remote side of the kernel's devmem selftest (devmem.py runs socat there)
// for `ncdevmem selftest`. On a control connection, between tests:
//
//	client -> server  peer {op: "send", addr, port, local, size, pattern, block, nodelay}
//	server -> client  peer_done {sent}                       or error {message}
//
//	client -> server  peer {op: "listen", addr, port}
//	server -> client  peer_listening                          or error {message}
//	server -> client  peer_data {data, count, from}           or error {message}
//
// A failed op is answered with an error message and the connection stays usable.
const (
	typePeer          = "peer"
	typePeerDone      = "peer_done"
	typePeerListening = "peer_listening"
	typePeerData      = "peer_data"
)

// Peer operations.
const (
	// PeerSend connects to Addr:Port (from Local:Port when Local is set, as devmem.py's
	// `socat ... TCP:ADDR:P,bind=LOCAL:P`), sends Size bytes of Pattern and closes.
	PeerSend = "send"
	// PeerListen listens on Addr:Port (every address when Addr is empty, as `socat TCP-LISTEN:P`),
	// accepts one connection and reads it to EOF.
	PeerListen = "listen"
)

// Payload patterns of PeerSend.
const (
	// PatternYes7 is `yes $(echo -e \x01\x02\x03\x04\x05\x06)`: bytes 01..06 then '\n', repeated;
	// what `ncdevmem -v 7` validates.
	PatternYes7 = "yes7"
	// PatternZero is /dev/zero.
	PatternZero = "zero"
)

// Bounds of a peer op. A request beyond them is refused before anything happens.
const (
	// PeerMaxSize bounds PeerSend's Size.
	PeerMaxSize = 1 << 30
	// PeerMaxKeep is how many received bytes PeerListen returns; the rest are only counted.
	PeerMaxKeep = 1 << 20
	// PeerMaxTimeout bounds an op's Timeout.
	PeerMaxTimeout = 10 * time.Minute
	// PeerDefaultTimeout is an op's time limit when the request gives none.
	PeerDefaultTimeout = 30 * time.Second
	// peerMaxBlock bounds the write size.
	peerMaxBlock = 1 << 20
	// peerDefaultBlock is socat's default block size (-b).
	peerDefaultBlock = 8192
	// peerRefusedRetry is how long PeerSend retries a refused connect: the listener on the other
	// side may be a moment late (devmem.py waits for the port to listen before starting socat).
	peerRefusedRetry = 3 * time.Second
)

// PeerRequest is the body of a peer message.
type PeerRequest struct {
	Op string `json:"op"`
	// Addr is the destination IP (send) or the IP to listen on (listen; "" = every address).
	Addr string `json:"addr,omitempty"`
	// Port is the destination port (send; also the source port when Local is set) or the port
	// to listen on.
	Port int `json:"port"`
	// Local is the source IP of a send ("" = the kernel's choice, with a kernel-chosen port).
	Local string `json:"local,omitempty"`
	// Size is how many bytes a send writes, of Pattern.
	Size    int64  `json:"size,omitempty"`
	Pattern string `json:"pattern,omitempty"`
	// Block is the size of each write (socat -b; 8192 when 0).
	Block int `json:"block,omitempty"`
	// NoDelay sets TCP_NODELAY (socat's nodelay option); off otherwise, as with socat.
	NoDelay bool `json:"nodelay,omitempty"`
	// Timeout bounds the whole op (PeerDefaultTimeout when 0, at most PeerMaxTimeout).
	Timeout time.Duration `json:"timeout_ns,omitempty"`
}

// PeerResult is the answer to a peer op.
type PeerResult struct {
	// Sent is the number of bytes a send wrote.
	Sent int64 `json:"sent,omitempty"`
	// Data is the first PeerMaxKeep bytes a listen received; Count all of them.
	Data  []byte `json:"data,omitempty"`
	Count int64  `json:"count,omitempty"`
	// From is the address the listen accepted.
	From string `json:"from,omitempty"`
}

// peerOp is a validated request.
type peerOp struct {
	PeerRequest
	dst, local netip.AddrPort
	timeout    time.Duration
}

// parsePeerRequest decodes and validates a peer message body. It is the parser of bytes from the
// network for this role; FuzzPeerRequest drives it.
func parsePeerRequest(m proto.Message) (*peerOp, error) {
	var r PeerRequest
	if err := m.Decode(&r); err != nil {
		return nil, err
	}
	op := &peerOp{PeerRequest: r, timeout: r.Timeout}
	if op.timeout == 0 {
		op.timeout = PeerDefaultTimeout
	}
	if op.timeout < 0 || op.timeout > PeerMaxTimeout {
		return nil, fmt.Errorf("peer %s: timeout %v out of range (0 < timeout <= %v)", r.Op, r.Timeout, PeerMaxTimeout)
	}
	if r.Port < 1 || r.Port > 65535 {
		return nil, fmt.Errorf("peer %s: port %d out of range 1..65535", r.Op, r.Port)
	}
	port := uint16(r.Port)
	switch r.Op {
	case PeerSend:
		a, err := netip.ParseAddr(r.Addr)
		if err != nil {
			return nil, fmt.Errorf("peer send: destination %q is not an IP address", r.Addr)
		}
		op.dst = netip.AddrPortFrom(a.Unmap(), port)
		if r.Local != "" {
			l, err := netip.ParseAddr(r.Local)
			if err != nil {
				return nil, fmt.Errorf("peer send: local address %q is not an IP address", r.Local)
			}
			if l.Unmap().Is4() != op.dst.Addr().Is4() {
				return nil, fmt.Errorf("peer send: local address %s and destination %s are of different families", l, a)
			}
			op.local = netip.AddrPortFrom(l.Unmap(), port)
		}
		if r.Size < 0 || r.Size > PeerMaxSize {
			return nil, fmt.Errorf("peer send: size %d out of range 0..%d", r.Size, PeerMaxSize)
		}
		if r.Pattern != PatternYes7 && r.Pattern != PatternZero {
			return nil, fmt.Errorf("peer send: unknown pattern %q (want %q or %q)", r.Pattern, PatternYes7, PatternZero)
		}
		if r.Block == 0 {
			op.Block = peerDefaultBlock
		}
		if op.Block < 1 || op.Block > peerMaxBlock {
			return nil, fmt.Errorf("peer send: block %d out of range 1..%d", r.Block, peerMaxBlock)
		}
	case PeerListen:
		if r.Addr != "" {
			a, err := netip.ParseAddr(r.Addr)
			if err != nil {
				return nil, fmt.Errorf("peer listen: address %q is not an IP address", r.Addr)
			}
			op.dst = netip.AddrPortFrom(a.Unmap(), port)
		}
	default:
		return nil, fmt.Errorf("peer: unknown op %q (want %q or %q; is the client a newer ncdevmem?)", r.Op, PeerSend, PeerListen)
	}
	return op, nil
}

// servePeer runs one peer op for the control connection c and answers it. Any failure, including
// a malformed request, is answered with an error message; the connection stays in the session
// loop, so a bad request never ends the server.
func (s *Server) servePeer(ctx context.Context, c *proto.Conn, who string, m proto.Message) {
	op, err := parsePeerRequest(m)
	if err != nil {
		s.logf("%s: %v", who, err)
		c.SendError(err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(ctx, op.timeout)
	defer cancel()
	var res *PeerResult
	switch op.Op {
	case PeerSend:
		res, err = peerSend(ctx, op)
		if err == nil {
			err = c.Send(typePeerDone, res)
		}
	case PeerListen:
		res, err = peerListen(ctx, c, op)
		if err == nil {
			err = c.Send(typePeerData, res)
		}
	}
	if err != nil {
		s.logf("%s: %v", who, err)
		c.SendError(err.Error())
		return
	}
	s.logf("%s: peer %s port %d: %d bytes", who, op.Op, op.Port, res.Sent+res.Count)
}

// reuseAddr lets a send bind its fixed source port while an earlier connection from it lingers in
// TIME_WAIT.
func reuseAddr(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}

func peerSend(ctx context.Context, op *peerOp) (*PeerResult, error) {
	what := fmt.Sprintf("peer send to %s", op.dst)
	d := net.Dialer{Control: reuseAddr}
	if op.local.IsValid() {
		what += " from " + op.local.String()
		d.LocalAddr = net.TCPAddrFromAddrPort(op.local)
	}
	retryUntil := time.Now().Add(peerRefusedRetry)
	var nc net.Conn
	for {
		var err error
		nc, err = d.DialContext(ctx, "tcp", op.dst.String())
		if err == nil {
			break
		}
		if errors.Is(err, unix.ECONNREFUSED) && time.Now().Before(retryUntil) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if errors.Is(err, unix.EADDRINUSE) || errors.Is(err, unix.EADDRNOTAVAIL) {
			return nil, fmt.Errorf("%s: %w (is the source address configured on the peer, and its port free?)", what, err)
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer nc.Close()
	tc := nc.(*net.TCPConn)
	if err := tc.SetNoDelay(op.NoDelay); err != nil {
		return nil, fmt.Errorf("%s: set TCP_NODELAY: %w", what, err)
	}
	stop := context.AfterFunc(ctx, func() { tc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, op.Block+len(yes7Line))
	if op.Pattern == PatternYes7 {
		for i := range buf {
			buf[i] = yes7Line[i%len(yes7Line)]
		}
	}
	var sent int64
	for sent < op.Size {
		n := min(int64(op.Block), op.Size-sent)
		off := 0
		if op.Pattern == PatternYes7 {
			off = int(sent % int64(len(yes7Line)))
		}
		w, err := tc.Write(buf[off : off+int(n)])
		sent += int64(w)
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (time limit %v)", ctx.Err(), op.timeout)
			}
			return nil, fmt.Errorf("%s: after %d of %d bytes: %w", what, sent, op.Size, err)
		}
	}
	// socat -u shuts its write side at EOF and closes; a plain close does the same here and
	// the receiver sees the stream end.
	if err := tc.Close(); err != nil {
		return nil, fmt.Errorf("%s: close: %w", what, err)
	}
	return &PeerResult{Sent: sent}, nil
}

// yes7Line is one period of PatternYes7.
var yes7Line = []byte{1, 2, 3, 4, 5, 6, '\n'}

func peerListen(ctx context.Context, c *proto.Conn, op *peerOp) (*PeerResult, error) {
	addr := net.JoinHostPort("", strconv.Itoa(op.Port))
	if op.dst.IsValid() {
		addr = op.dst.String()
	}
	what := "peer listen on " + addr
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, fmt.Errorf("%s: %w (another socket holds the port: choose another --port)", what, err)
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer ln.Close()
	if err := c.Send(typePeerListening, nil); err != nil {
		return nil, err
	}
	ctx, stopWatch := watchAbort(ctx, c, op.timeout)
	defer stopWatch()
	tl := ln.(*net.TCPListener)
	deadline, _ := ctx.Deadline()
	tl.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { tl.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	nc, err := tl.Accept()
	if err != nil {
		switch {
		case context.Cause(ctx) != nil && !errors.Is(context.Cause(ctx), context.DeadlineExceeded):
			err = context.Cause(ctx)
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = fmt.Errorf("no connection within %v (did the sender start, and can it reach this host?)", op.timeout)
		}
		return nil, fmt.Errorf("%s: accept: %w", what, err)
	}
	ln.Close()
	defer nc.Close()
	nc.SetDeadline(deadline)
	stopConn := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stopConn()
	res := &PeerResult{From: nc.RemoteAddr().String()}
	keep := make([]byte, PeerMaxKeep)
	kept := 0
	var scratch []byte
	for {
		b, keeping := keep[kept:], kept < len(keep)
		if !keeping {
			if scratch == nil {
				scratch = make([]byte, 64<<10)
			}
			b = scratch
		}
		n, err := nc.Read(b)
		if keeping {
			kept += n
		}
		res.Count += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			switch {
			case context.Cause(ctx) != nil && !errors.Is(context.Cause(ctx), context.DeadlineExceeded):
				err = context.Cause(ctx)
			case errors.Is(err, os.ErrDeadlineExceeded):
				err = fmt.Errorf("the stream did not end within %v", op.timeout)
			}
			return nil, fmt.Errorf("%s: read from %s after %d bytes: %w", what, res.From, res.Count, err)
		}
	}
	res.Data = keep[:kept]
	return res, nil
}

// errPeerAborted ends a listen the client gave up on (its sender failed).
var errPeerAborted = errors.New("aborted by the client")

// watchAbort reads the control connection while a listen runs, so an abort message or the client
// going away ends the listen at once instead of at its time limit. stop ends the watch before the
// answer is sent; the client sends nothing else during a listen, so no message is lost.
func watchAbort(ctx context.Context, c *proto.Conn, limit time.Duration) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m, err := c.RecvWithin(limit + time.Minute)
		switch {
		case err == nil && m.Type == typeAbort:
			cancel(errPeerAborted)
		case err == nil:
			cancel(fmt.Errorf("protocol error: got a %q message during a listen", m.Type))
		case errors.Is(err, os.ErrDeadlineExceeded):
		default:
			cancel(fmt.Errorf("control connection: %w", err))
		}
	}()
	return ctx, func() {
		// RecvWithin sets its own deadline when it starts: keep pushing it into the past until the
		// watcher has returned.
		for {
			c.NetConn().SetReadDeadline(time.Unix(1, 0))
			select {
			case <-done:
				c.NetConn().SetReadDeadline(time.Time{})
				cancel(nil)
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

// PeerClient drives the peer role of an `ncdevmem server` over one control connection. One op
// at a time; not safe for concurrent use.
type PeerClient struct {
	addr string
	c    *proto.Conn
}

// DialPeer connects and authenticates to the server at addr (host:port) with key (nil: none).
func DialPeer(ctx context.Context, addr string, key []byte, software string) (*PeerClient, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("peer server %s: %w (is `ncdevmem server` running there and port %s open?)", addr, err, portOf(addr))
	}
	p := &PeerClient{addr: addr, c: proto.NewConn(nc)}
	if _, err := proto.ClientHandshake(p.c, key, software); err != nil {
		nc.Close()
		return nil, p.wrap(err)
	}
	return p, nil
}

// Close ends the control connection.
func (p *PeerClient) Close() error { return p.c.Close() }

// LocalAddr is this host's address on the control connection: the source of the route to the peer.
func (p *PeerClient) LocalAddr() netip.Addr {
	return addrOf(p.c.NetConn().LocalAddr())
}

// RemoteAddr is the peer's address on the control connection.
func (p *PeerClient) RemoteAddr() netip.Addr {
	return addrOf(p.c.NetConn().RemoteAddr())
}

func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

func (p *PeerClient) wrap(err error) error {
	var re *proto.RemoteError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("peer server %s: %s", p.addr, re.Message)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("peer server %s: control connection closed (did the server stop, or is it an ncdevmem without the peer role?)", p.addr)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("peer server %s: no answer in time (is the server hung or the network down?)", p.addr)
	}
	return fmt.Errorf("peer server %s: %w", p.addr, err)
}

// opTimeout is the request's time limit plus a margin for the answer to arrive.
func opTimeout(r *PeerRequest) time.Duration {
	d := r.Timeout
	if d <= 0 {
		d = PeerDefaultTimeout
	}
	return d + 10*time.Second
}

// request sends the op r.
func (p *PeerClient) request(ctx context.Context, r PeerRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := p.c.Send(typePeer, &r); err != nil {
		return p.wrap(err)
	}
	return nil
}

// expect waits at most d for the answer of type typ; cancelling ctx closes the connection so the
// wait returns (the client is then unusable).
func (p *PeerClient) expect(ctx context.Context, d time.Duration, typ string, body any) error {
	stop := context.AfterFunc(ctx, func() { p.c.Close() })
	defer stop()
	if err := p.c.ExpectWithin(d, typ, body); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("peer server %s: %w", p.addr, ctx.Err())
		}
		return p.wrap(err)
	}
	return nil
}

// Send runs a PeerSend op (r.Op is set for the caller) and returns when the peer has sent and
// closed, or failed.
func (p *PeerClient) Send(ctx context.Context, r PeerRequest) (*PeerResult, error) {
	r.Op = PeerSend
	if err := p.request(ctx, r); err != nil {
		return nil, err
	}
	var res PeerResult
	if err := p.expect(ctx, opTimeout(&r), typePeerDone, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// PeerListening is a PeerListen op under way.
type PeerListening struct {
	p   *PeerClient
	ctx context.Context
	r   PeerRequest
}

// Listen starts a PeerListen op and returns once the peer listens; Wait then returns what it
// received when the connection ended.
func (p *PeerClient) Listen(ctx context.Context, r PeerRequest) (*PeerListening, error) {
	r.Op = PeerListen
	if err := p.request(ctx, r); err != nil {
		return nil, err
	}
	if err := p.expect(ctx, proto.DefaultTimeout, typePeerListening, nil); err != nil {
		return nil, err
	}
	return &PeerListening{p: p, ctx: ctx, r: r}, nil
}

// Wait returns what the peer received, once the sender closed the connection.
func (l *PeerListening) Wait() (*PeerResult, error) {
	var res PeerResult
	if err := l.p.expect(l.ctx, opTimeout(&l.r), typePeerData, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Abort ends the listen early (the local sender failed) and waits for the peer's answer, so the
// connection can carry the next op.
func (l *PeerListening) Abort() error {
	if err := l.p.c.Send(typeAbort, nil); err != nil {
		return l.p.wrap(err)
	}
	_, err := l.Wait()
	if err != nil && strings.Contains(err.Error(), errPeerAborted.Error()) {
		return nil
	}
	return err
}
