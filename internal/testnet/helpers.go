// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package testnet

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/sockcall"
)

// TCPPair returns both ends of a loopback TCP connection (no root needed), closed when t ends.
func TCPPair(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	c, s, err := tcpPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// TCPPair returns both ends of a TCP connection on the loopback of ns, closed when t ends. control,
// when not nil, is the client's net.Dialer Control (socket options set before connect).
func (ns *NS) TCPPair(t testing.TB, control func(network, address string, c syscall.RawConn) error) (client, server *net.TCPConn) {
	t.Helper()
	var c, s *net.TCPConn
	if err := ns.Do(func() (err error) {
		c, s, err = tcpPair(control)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func tcpPair(control func(network, address string, c syscall.RawConn) error) (client, server *net.TCPConn, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	d := net.Dialer{Control: control}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c.(*net.TCPConn), s.(*net.TCPConn), nil
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// BinEnv names the binary under test; make test-root sets it to bin/ncdevmem.
const BinEnv = "NCDEVMEM_BIN"

// Binary returns the ncdevmem binary under test: $NCDEVMEM_BIN, else a static build of this tree
// made once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv(BinEnv); b != "" {
		return b
	}
	binOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "ncdevmem-test")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "ncdevmem")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/ncdevmem")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatalf("%s unset and building ncdevmem failed: %v", BinEnv, binErr)
	}
	return binPath
}

// Log is a buffer safe for a child process writing while a test reads it.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Server is a real `ncdevmem server` running inside a namespace.
type Server struct {
	Addr string // HOST:PORT of its control port
	Log  *Log   // its stdout and stderr
	cmd  *exec.Cmd
	done chan struct{}
}

// StartServer runs `bin server --listen ADDR:PORT args...` inside ns (env added to the
// environment), waits until the control port accepts connections, and stops the server when t
// ends (SIGTERM, then SIGKILL after 10 s; by its PID: ip netns exec execs the binary).
func (ns *NS) StartServer(t testing.TB, bin string, port int, env []string, args ...string) *Server {
	t.Helper()
	s := &Server{Addr: net.JoinHostPort(ns.Addr.String(), strconv.Itoa(port)), Log: &Log{}, done: make(chan struct{})}
	s.cmd = ns.Command(bin, append([]string{"server", "--listen", s.Addr}, args...)...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.Log, s.Log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start server in %s: %v", ns.Name, err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.stop(syscall.SIGTERM, 10*time.Second)
		if t.Failed() {
			t.Logf("server %s in %s:\n%s", s.Addr, ns.Name, s.Log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ns.Do(func() error {
			c, err := net.DialTimeout("tcp", s.Addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("server in %s not listening on %s after 30 s: %v\n%s", ns.Name, s.Addr, err, s.Log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL (a crash, not a shutdown) and waits for it.
func (s *Server) Kill() { s.stop(syscall.SIGKILL, 0) }

func (s *Server) stop(sig syscall.Signal, grace time.Duration) {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-s.done:
			return
		case <-time.After(grace):
			s.cmd.Process.Kill()
		}
	}
	<-s.done
}

// LinkState is everything a refused devmem setup must leave as it was on link, as the tools print
// it: the link with its details, its addresses, and ethtool's channels, rings and features.
// Compare the strings before and after. It fails t when ethtool(8) is missing.
func (ns *NS) LinkState(t testing.TB, link string) string {
	t.Helper()
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Fatal("ethtool(8) is needed to compare the link before and after: apt-get install ethtool")
	}
	var b bytes.Buffer
	for _, c := range [][]string{
		{"ip", "-d", "link", "show", link}, {"ip", "addr", "show", link},
		{"ethtool", "-l", link}, {"ethtool", "-g", link}, {"ethtool", "-k", link},
	} {
		out, _ := ns.Command(c[0], c[1:]...).CombinedOutput()
		b.Write(out)
	}
	return b.String()
}

// Connect returns a TCP connection from namespace from to a listener on to's veth address (the
// pair of Pair), both ends closed when t ends.
func Connect(t testing.TB, from, to *NS) (client, server *net.TCPConn) {
	t.Helper()
	var ln net.Listener
	if err := to.Do(func() (err error) {
		ln, err = net.Listen("tcp", to.Addr.String()+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var c net.Conn
	if err := from.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// RawConn returns c's syscall.RawConn, failing t if it has none.
func RawConn(t testing.TB, c syscall.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// BlockingFd puts c in blocking mode with the given SO_RCVTIMEO/SO_SNDTIMEO poll
// (sockcall.SetBlocking) and returns its descriptor; c keeps owning it, so use it only while c is
// open.
func BlockingFd(t testing.TB, c *net.TCPConn, poll time.Duration) int {
	t.Helper()
	var fd int
	var serr error
	if err := RawConn(t, c).Control(func(f uintptr) {
		fd = int(f)
		serr = sockcall.SetBlocking(fd, poll)
	}); err != nil || serr != nil {
		t.Fatalf("set blocking: %v %v", err, serr)
	}
	return fd
}

// OpenFDs counts this process's open file descriptors, so a test can prove a failure leaks none.
func OpenFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
