// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/devmemtcp/ncdevmem/proto"
)

// handshakeTimeout bounds how long a connection may take to authenticate, so a silent client
// cannot hold a server goroutine.
const handshakeTimeout = 10 * time.Second

// maxConns bounds the control connections a server holds at once (one client needs two).
const maxConns = 64

// idleTimeout is how long a session waits for the client's next message between tests.
const idleTimeout = 10 * time.Minute

// Server runs tests for clients, one at a time: `ncdevmem server` and the embedded default.
type Server struct {
	// Key is the pre-shared key; nil serves without authentication.
	Key []byte
	// Software names this build in the handshake (version.String()).
	Software string
	// Logf receives one line per event worth a log line; nil discards.
	Logf func(format string, args ...any)
	// CorruptAt, when non-zero, makes this server (as source) flip the byte at stream offset
	// CorruptAt-1 of flow 0. A test hook, set only from NCDEVMEM_TEST_CORRUPT_AT.
	CorruptAt uint64

	// Test options. sys is the kernel the datapaths work on (nil: the running one); dps replaces
	// builtinDatapaths (host memory still serves what none of them handles).
	sys *devmemKernel
	dps []Datapath

	mu       sync.Mutex
	busy     string        // who holds the server, "" when idle
	busyID   []byte        // the holder's client id (proto.Hello.Client)
	busyRefs int           // the holder's connections (2 when this server is both source and target)
	freed    chan struct{} // closed when the holder releases the server (made by a waiter)
	wg       sync.WaitGroup
	closing  bool
	// conns maps each open control connection to whether it is inside a measurement window.
	conns map[net.Conn]*atomic.Bool
}

// shutdownGrace is how long a stopping server lets a test in its window end on its own (stop the
// flows, send the result with kind shutdown) before closing its connection.
const shutdownGrace = 600 * time.Millisecond

func (s *Server) datapaths() []Datapath {
	if s.dps != nil {
		return s.dps
	}
	return builtinDatapaths()
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// Serve accepts control connections on ln until ctx ends or ln fails, then closes ln and every
// open connection and waits for their sessions to tear down.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer s.shutdown()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept control connection: %w", err)
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			c.Close()
			continue
		}
		if len(s.conns) >= maxConns {
			// A flood of connections must not cost unbounded goroutines and memory.
			s.mu.Unlock()
			s.logf("%s: refused: %d control connections open already", c.RemoteAddr(), maxConns)
			c.Close()
			continue
		}
		if s.conns == nil {
			s.conns = map[net.Conn]*atomic.Bool{}
		}
		inWindow := new(atomic.Bool)
		s.conns[c] = inWindow
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.handle(ctx, c, inWindow)
		}()
	}
}

// shutdown ends every session: idle ones and ones still setting up at once (closing their
// connection), tests in their window after they stopped their flows and reported (they see ctx
// end), or after shutdownGrace at the latest. Each session's datapath is closed (the NIC restored)
// before shutdown returns.
func (s *Server) shutdown() {
	s.mu.Lock()
	s.closing = true
	for c, inWindow := range s.conns {
		if !inWindow.Load() {
			c.Close()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(shutdownGrace):
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-done
}

func (s *Server) handle(ctx context.Context, nc net.Conn, inWindow *atomic.Bool) {
	peer := nc.RemoteAddr().String()
	c := proto.NewConn(nc)
	c.Timeout = handshakeTimeout
	// The busy decision is made before the welcome, so of two clients racing in, the first to
	// authenticate holds the server.
	var holds bool
	var busyWith string
	_, err := proto.ServerHandshakeWith(c, s.Key, s.Software, func(h *proto.Hello) {
		holds, busyWith = s.acquire(peer, h.Client)
	})
	if holds {
		defer s.release()
	}
	if err != nil {
		// A connection that closes without a word is a port probe, not worth a line.
		if !errors.Is(err, io.EOF) {
			s.logf("%s: %v", peer, err)
		}
		return
	}
	if !holds {
		c.SendError(fmt.Sprintf("server busy: running a test for %s; one test at a time, try again when it ends", busyWith))
		s.logf("%s: refused, busy with %s", peer, busyWith)
		return
	}
	s.logf("%s: connected", peer)
	c.Timeout = proto.DefaultTimeout
	s.serve(ctx, c, peer, inWindow)
}

// serve runs the held session's tests (and peer operations) until the client leaves or the
// connection can no longer be used.
func (s *Server) serve(ctx context.Context, c *proto.Conn, peer string, inWindow *atomic.Bool) {
	for {
		m, err := c.RecvWithin(idleTimeout)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				s.logf("%s: %v", peer, err)
			}
			s.logf("%s: disconnected", peer)
			return
		}
		switch m.Type {
		case typePeer:
			s.servePeer(ctx, c, peer, m)
			continue
		case typeAbort:
			continue
		case typePrepare:
		default:
			c.SendError(fmt.Sprintf("protocol error: unexpected %q message, want %q", m.Type, typePrepare))
			return
		}
		var p prepareMsg
		if err := m.Decode(&p); err != nil {
			c.SendError(err.Error())
			return
		}
		sess := &session{srv: s, c: c, peer: peer, p: p, inWindow: inWindow}
		if err := sess.run(ctx); err != nil {
			s.logf("%s: %s: %v", peer, p.Role, err)
			if sess.fatal.Load() {
				return
			}
		}
	}
}

// busyGrace is how long a client is kept waiting for a busy server before it is refused: a
// holder that just finished may not have been noticed as gone yet.
const busyGrace = time.Second

// acquire claims the server for client id (a connection of the holder may share it) and reports
// whether it got it, or whom the server is busy with. A busy server is waited for (release
// wakes the waiters) for up to busyGrace.
func (s *Server) acquire(peer string, id []byte) (bool, string) {
	grace := time.NewTimer(busyGrace)
	defer grace.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.busy != "" && !(len(id) > 0 && bytes.Equal(id, s.busyID)) {
		if s.freed == nil {
			s.freed = make(chan struct{})
		}
		freed := s.freed
		s.mu.Unlock()
		select {
		case <-freed:
			s.mu.Lock()
		case <-grace.C:
			s.mu.Lock()
			return false, s.busy
		}
	}
	if s.busy == "" {
		s.busy = fmt.Sprintf("%s since %s", peer, time.Now().UTC().Format("15:04:05 UTC"))
		s.busyID = id
	}
	s.busyRefs++
	return true, ""
}

func (s *Server) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busyRefs--; s.busyRefs == 0 {
		s.busy, s.busyID = "", nil
		if s.freed != nil {
			close(s.freed)
			s.freed = nil
		}
	}
}

// hostname is the name servers put in their results.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "?"
	}
	return h
}

func numCPU() int { return runtime.NumCPU() }
