// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package legacy

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/devmem"
	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/tx"
)

// completionWait is how long the client waits for each send's zerocopy completion (the C tool's
// waittime_ms).
const completionWait = 500 * time.Millisecond

// fds are the sockets of one run; interrupt shuts them down so a blocked accept, connect or recvmsg
// returns when the run is cancelled (SIGINT, SIGTERM, SIGHUP).
type fds struct {
	mu     sync.Mutex
	open   []int
	closed bool
}

func (f *fds) add(fd int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open = append(f.open, fd)
	if f.closed {
		unix.Shutdown(fd, unix.SHUT_RDWR)
	}
}

func (f *fds) interrupt() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, fd := range f.open {
		unix.Shutdown(fd, unix.SHUT_RDWR)
	}
}

func (f *fds) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fd := range f.open {
		unix.Close(fd)
	}
	f.open = nil
}

// socket6 is the C tool's socket: AF_INET6 (dual stack), SO_REUSEADDR and SO_REUSEPORT.
func socket6(f *fds) (int, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("create socket: %w", err)
	}
	f.add(fd)
	for _, o := range []int{unix.SO_REUSEPORT, unix.SO_REUSEADDR} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o, 1); err != nil {
			return -1, fmt.Errorf("set SO_REUSEADDR/SO_REUSEPORT: %w", err)
		}
	}
	return fd, nil
}

func sockaddr(a netip.AddrPort) *unix.SockaddrInet6 {
	return &unix.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
}

func fromSockaddr(sa unix.Sockaddr) netip.AddrPort {
	if s, ok := sa.(*unix.SockaddrInet6); ok {
		return netip.AddrPortFrom(netip.AddrFrom16(s.Addr), uint16(s.Port))
	}
	return netip.AddrPort{}
}

// flowOf is the steering rule's flow: local address and port, and with -c the peer's address and
// source port (the selftest's peer binds its source port to -p, hence the 5-tuple).
func (t *tool) flowOf(server netip.AddrPort) (nic.Flow, error) {
	f := nic.Flow{Dst: server}
	if t.o.Client != "" {
		c, err := parseAddress(t.o.Client, t.o.Port)
		if err != nil {
			return f, fmt.Errorf("parse client address: %w", err)
		}
		f.Src = c
	}
	return f, nil
}

// server is the C tool's do_server: NIC setup (unless -n), bind-rx, accept one connection and
// receive until the peer closes it.
func (t *tool) server(ctx context.Context, mem dmabuf.Buffer) error {
	addr, err := parseAddress(t.o.Server, t.o.Port)
	if err != nil {
		return fmt.Errorf("parse server address: %w", err)
	}
	// The C tool never changes the channel count: a queue beyond the device's makes its bind-rx
	// fail (EINVAL at queues.id) and it exits 1. The shared setup would raise the channels.
	if t.devQueues >= 0 && t.start+t.num > t.devQueues {
		return ctool("Failed to bind", fmt.Errorf("rx queues %d..%d: %s has %d RX queues",
			t.start, t.start+t.num-1, t.o.Ifname, t.devQueues))
	}
	var flows []nic.Flow
	if !t.o.NoSetup {
		flow, err := t.flowOf(addr)
		if err != nil {
			return err
		}
		flows = []nic.Flow{flow}
	}
	setup, err := t.open(ctx, flows, mem, t.o.NoSetup, false)
	switch devmem.StepOf(err) {
	case "":
	case devmem.StepBind:
		return ctool("Failed to bind", err)
	default:
		return ctool(fmt.Sprintf("Failed to configure %s for devmem RX", t.o.Ifname), err)
	}
	defer t.close(setup)
	b := setup.Binding
	fmt.Fprintf(t.stderr, "got dmabuf id=%d\n", b.ID())
	t.summary.DmabufID = b.ID()

	var f fds
	defer f.close()
	stop := context.AfterFunc(ctx, f.interrupt)
	defer stop()
	lfd, err := socket6(&f)
	if err != nil {
		return err
	}
	fmt.Fprintf(t.stderr, "binding to address %s:%d\n", t.o.Server, addr.Port())
	if err := unix.Bind(lfd, sockaddr(addr)); err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return ctool(fmt.Sprintf("Failed to bind to %s", addr), fmt.Errorf("%w (another socket holds the port: choose another -p)", err))
		}
		return ctool(fmt.Sprintf("Failed to bind to %s", addr), fmt.Errorf("%w (is the address configured on this host?)", err))
	}
	if err := unix.Listen(lfd, 1); err != nil {
		return ctool("Failed to listen", err)
	}
	fmt.Fprintf(t.stderr, "Waiting or connection on %s:%d\n", addr.Addr(), addr.Port())
	cfd, sa, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	if err != nil {
		if ctx.Err() != nil {
			return ctool("Failed to accept", errInterrupted)
		}
		return ctool("Failed to accept", err)
	}
	f.add(cfd)
	peer := fromSockaddr(sa)
	fmt.Fprintf(t.stderr, "Got connection from %s:%d\n", peer.Addr(), peer.Port())

	l := newRXLoop(t.sys.rxSys(), cfd, mem, b.ID(), t.o, t.stdout, t.stderr)
	l.queues = t.queues()
	l.queueOfNapi = func(napi uint32) (int, error) { return t.sys.queueOfNapi(t.ifindex, napi) }
	err = l.run()
	t.summary.RX = &l.st
	if err == nil {
		// Only a clean end reaches the C tool's summary lines.
		fmt.Fprintln(t.stderr, "ncdevmem: ok")
		fmt.Fprintf(t.stderr, "page_aligned_frags=%d, non_page_aligned_frags=%d\n", l.st.PageAligned, l.st.NonPageAligned)
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", errInterrupted, err)
	}
	return err
}

// client is the C tool's do_client: bind-tx, connect through the NIC, then one zerocopy sendmsg
// from the dma-buf per line of stdin, each waited for.
func (t *tool) client(ctx context.Context, mem dmabuf.Buffer) error {
	srv, err := parseAddress(t.o.Server, t.o.Port)
	if err != nil {
		return fmt.Errorf("parse server address: %w", err)
	}
	var f fds
	defer f.close()
	stop := context.AfterFunc(ctx, f.interrupt)
	defer stop()
	fd, err := socket6(&f)
	if err != nil {
		return err
	}
	sys := t.sys.txSys()
	if _, err := sys.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, append([]byte(t.o.Ifname), 0)); err != nil {
		return fmt.Errorf("bindtodevice %s: %w", t.o.Ifname, err)
	}
	b, err := t.sys.bindTX(t.ifindex, mem.FD())
	if err != nil {
		return ctool("Failed to bind", err)
	}
	defer b.Close()
	fmt.Fprintf(t.stderr, "got tx dmabuf id=%d\n", b.ID())
	t.summary.DmabufID = b.ID()
	if t.o.Client != "" {
		c, err := parseAddress(t.o.Client, t.o.Port)
		if err != nil {
			return fmt.Errorf("parse client address: %w", err)
		}
		if err := unix.Bind(fd, sockaddr(c)); err != nil {
			return fmt.Errorf("bind to %s: %w", c, err)
		}
	}
	one := binary.NativeEndian.AppendUint32(nil, 1)
	if _, err := sys.Setsockopt(fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, one); err != nil {
		return fmt.Errorf("set sock opt SO_ZEROCOPY: %w", err)
	}
	fmt.Fprintf(t.stderr, "Connect to %s %d (via %s)\n", t.o.Server, srv.Port(), t.o.Ifname)
	if err := unix.Connect(fd, sockaddr(srv)); err != nil {
		if ctx.Err() != nil {
			err = errInterrupted
		}
		return fmt.Errorf("connect to %s: %w", srv, err)
	}

	cs := tx.NewChunkSender(sys, fd, b.ID())
	counts := &txCounts{}
	t.summary.TX = counts
	in := bufio.NewReaderSize(t.stdin, 64<<10)
	for {
		line, rerr := in.ReadBytes('\n')
		if len(line) > 0 {
			if int64(len(line)) > mem.Size() {
				return fmt.Errorf("a line of %d bytes does not fit the %d-byte dma-buf", len(line), mem.Size())
			}
			if _, err := mem.WriteAt(line, 0); err != nil {
				return fmt.Errorf("copy line into the dma-buf: %w", err)
			}
			n, err := cs.Send(0, len(line), t.o.TxChunk)
			if err != nil {
				return ctool("Failed sendmsg", err)
			}
			fmt.Fprintf(t.stderr, "sendmsg_ret=%d\n", n)
			if n != len(line) {
				return toolError(fmt.Sprintf("Did not send all bytes %d vs %d", n, len(line)))
			}
			lo, hi, err := cs.WaitCompletion(completionWait)
			if err != nil {
				return err
			}
			fmt.Fprintf(t.stderr, "tx complete [%d,%d]\n", lo, hi)
			counts.Lines++
			counts.Bytes += uint64(n)
			counts.Completions, counts.Copied = cs.Completions, cs.Copied
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read stdin: %w", rerr)
		}
		if ctx.Err() != nil {
			return errInterrupted
		}
	}
	fmt.Fprintln(t.stderr, "ncdevmem: tx ok")
	return nil
}
