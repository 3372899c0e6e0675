// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/proto"
)

func dialPeer(t *testing.T, addr string, key []byte) *PeerClient {
	t.Helper()
	p, err := DialPeer(context.Background(), addr, key, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// listenLocal accepts one connection on 127.0.0.1 and returns its bytes and remote address.
func listenLocal(t *testing.T) (port int, got chan [2]string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got = make(chan [2]string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- [2]string{"", err.Error()}
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- [2]string{string(b), c.RemoteAddr().String()}
	}()
	return ln.Addr().(*net.TCPAddr).Port, got
}

func yes7Bytes(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = yes7Line[i%7]
	}
	return out
}

func TestPeerSend(t *testing.T) {
	addr, _ := startServer(t, &Server{})
	p := dialPeer(t, addr, nil)
	for _, tt := range []struct {
		pattern string
		size    int64
		block   int
		want    []byte
	}{
		{PatternYes7, 1024, 0, yes7Bytes(1024)},
		{PatternYes7, 100003, 1000, yes7Bytes(100003)},
		{PatternZero, 8192, 8192, make([]byte, 8192)},
		{PatternZero, 1, 1, []byte{0}},
		{PatternYes7, 0, 0, nil},
	} {
		port, got := listenLocal(t)
		// The source port is the destination port, as devmem.py binds it (127.0.0.2 so the
		// 4-tuple differs from the listener's).
		res, err := p.Send(context.Background(), PeerRequest{Addr: "127.0.0.1", Local: "127.0.0.2", Port: port,
			Size: tt.size, Pattern: tt.pattern, Block: tt.block, NoDelay: tt.block == 1})
		if err != nil {
			t.Fatalf("%s %d: %v", tt.pattern, tt.size, err)
		}
		g := <-got
		if res.Sent != tt.size || !bytes.Equal([]byte(g[0]), tt.want) {
			t.Errorf("%s %d: sent %d, received %d bytes (equal %v)", tt.pattern, tt.size, res.Sent, len(g[0]), bytes.Equal([]byte(g[0]), tt.want))
		}
		if want := "127.0.0.2:" + strconv.Itoa(port); g[1] != want {
			t.Errorf("connection came from %s, want %s", g[1], want)
		}
	}
}

func TestPeerListen(t *testing.T) {
	addr, _ := startServer(t, &Server{})
	p := dialPeer(t, addr, nil)
	for _, size := range []int{0, 12, PeerMaxKeep + 12345} {
		port := freeTCPPort(t)
		l, err := p.Listen(context.Background(), PeerRequest{Addr: "127.0.0.1", Port: port})
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatal(err)
		}
		payload := yes7Bytes(size)
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		c.Close()
		res, err := l.Wait()
		if err != nil {
			t.Fatal(err)
		}
		keep := min(size, PeerMaxKeep)
		if res.Count != int64(size) || !bytes.Equal(res.Data, payload[:keep]) || res.From == "" {
			t.Errorf("size %d: count %d, %d bytes kept (want %d), from %q", size, res.Count, len(res.Data), keep, res.From)
		}
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestPeerErrorsKeepTheConnection(t *testing.T) {
	addr, _ := startServer(t, &Server{})
	p := dialPeer(t, addr, nil)
	closed := freeTCPPort(t)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldPort := held.Addr().(*net.TCPAddr).Port
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		run  func() error
		want string
	}{
		{"refused", func() error {
			_, err := p.Send(ctx, PeerRequest{Addr: "127.0.0.1", Port: closed, Size: 1, Pattern: PatternZero})
			return err
		}, "connection refused"},
		{"bad pattern", func() error {
			_, err := p.Send(ctx, PeerRequest{Addr: "127.0.0.1", Port: 1, Pattern: "random"})
			return err
		}, `unknown pattern "random"`},
		{"too large", func() error {
			_, err := p.Send(ctx, PeerRequest{Addr: "127.0.0.1", Port: 1, Size: PeerMaxSize + 1, Pattern: PatternZero})
			return err
		}, "size 1073741825 out of range"},
		{"bad address", func() error {
			_, err := p.Send(ctx, PeerRequest{Addr: "peer.example", Port: 1, Pattern: PatternZero})
			return err
		}, `destination "peer.example" is not an IP address`},
		{"mixed families", func() error {
			_, err := p.Send(ctx, PeerRequest{Addr: "::1", Local: "127.0.0.1", Port: 1, Pattern: PatternZero})
			return err
		}, "different families"},
		{"bad port", func() error {
			_, err := p.Send(ctx, PeerRequest{Addr: "127.0.0.1", Port: 70000, Pattern: PatternZero})
			return err
		}, "port 70000 out of range"},
		{"port in use", func() error {
			_, err := p.Listen(ctx, PeerRequest{Addr: "127.0.0.1", Port: heldPort})
			return err
		}, "address already in use (another socket holds the port"},
		{"nobody connects", func() error {
			l, err := p.Listen(ctx, PeerRequest{Addr: "127.0.0.1", Port: freeTCPPort(t), Timeout: 200 * time.Millisecond})
			if err != nil {
				return err
			}
			_, err = l.Wait()
			return err
		}, "no connection within 200ms"},
		{"timeout too long", func() error {
			_, err := p.Listen(ctx, PeerRequest{Port: 1, Timeout: time.Hour})
			return err
		}, "timeout 1h0m0s out of range"},
	} {
		err := tt.run()
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "peer server "+addr) {
			t.Errorf("%s: got %v, want an error with %q", tt.name, err, tt.want)
		}
	}
	// After all that the same connection still serves.
	port, got := listenLocal(t)
	if _, err := p.Send(ctx, PeerRequest{Addr: "127.0.0.1", Port: port, Size: 3, Pattern: PatternYes7}); err != nil {
		t.Fatalf("send after errors: %v", err)
	}
	if g := <-got; g[0] != "\x01\x02\x03" {
		t.Errorf("received %q", g[0])
	}
}

// rawSend writes a frame of any bytes on an authenticated control connection.
func rawSend(t *testing.T, c *proto.Conn, b []byte) {
	t.Helper()
	hdr := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	if _, err := c.NetConn().Write(append(hdr, b...)); err != nil {
		t.Fatal(err)
	}
}

func TestPeerGarbage(t *testing.T) {
	addr, _ := startServer(t, &Server{})
	p := dialPeer(t, addr, nil)
	for _, body := range []string{
		`{"type":"peer"}`,
		`{"type":"peer","body":[1,2]}`,
		`{"type":"peer","body":{"op":"send","port":"x"}}`,
		`{"type":"peer","body":{"op":"format-disk","port":1}}`,
		`{"type":"peer","body":{"op":"listen","port":1,"timeout_ns":-5}}`,
	} {
		rawSend(t, p.c, []byte(body))
		_, err := p.c.Recv()
		var re *proto.RemoteError
		if !errors.As(err, &re) {
			t.Errorf("%s: got %v, want an error message", body, err)
		}
	}
	port, got := listenLocal(t)
	if _, err := p.Send(context.Background(), PeerRequest{Addr: "127.0.0.1", Port: port, Size: 7, Pattern: PatternYes7}); err != nil {
		t.Fatalf("send after garbage: %v", err)
	}
	<-got
}

func TestPeerKeyAndBusy(t *testing.T) {
	key := []byte("0123456789abcdef0123")
	addr, _ := startServer(t, &Server{Key: key})
	if _, err := DialPeer(context.Background(), addr, []byte("another key of 16+ bytes"), "test"); err == nil {
		t.Fatal("dial with the wrong key succeeded")
	}
	p := dialPeer(t, addr, key)
	// One test at a time: a second client is told the server is busy.
	port, got := listenLocal(t)
	second, derr := DialPeer(context.Background(), addr, key, "test")
	if derr != nil {
		t.Fatal(derr)
	}
	{
		_, serr := second.Send(context.Background(), PeerRequest{Addr: "127.0.0.1", Port: port, Size: 1, Pattern: PatternZero})
		second.Close()
		if serr == nil || !strings.Contains(serr.Error(), "server busy") {
			t.Errorf("second client's op: %v, want server busy", serr)
		}
	}
	if _, err := p.Send(context.Background(), PeerRequest{Addr: "127.0.0.1", Port: port, Size: 1, Pattern: PatternZero}); err != nil {
		t.Fatal(err)
	}
	<-got
}

func TestPeerCancel(t *testing.T) {
	addr, _ := startServer(t, &Server{})
	p := dialPeer(t, addr, nil)
	ctx, cancel := context.WithCancel(context.Background())
	l, err := p.Listen(ctx, PeerRequest{Addr: "127.0.0.1", Port: freeTCPPort(t)})
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, err := l.Wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("wait after cancel: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
}

func TestPeerAbort(t *testing.T) {
	addr, _ := startServer(t, &Server{})
	p := dialPeer(t, addr, nil)
	port := freeTCPPort(t)
	l, err := p.Listen(context.Background(), PeerRequest{Addr: "127.0.0.1", Port: port})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := l.Abort(); err != nil {
		t.Fatalf("abort: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("abort took %v", d)
	}
	// The port is free again and the connection serves the next op.
	l, err = p.Listen(context.Background(), PeerRequest{Addr: "127.0.0.1", Port: port})
	if err != nil {
		t.Fatalf("listen after abort: %v", err)
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello\nworld\n"))
	c.Close()
	if res, err := l.Wait(); err != nil || string(res.Data) != "hello\nworld\n" {
		t.Fatalf("after abort: %v %+v", err, res)
	}
}

func TestPeerClientGoneEndsListen(t *testing.T) {
	addr, _ := startServer(t, &Server{})
	p, err := DialPeer(context.Background(), addr, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Listen(context.Background(), PeerRequest{Addr: "127.0.0.1", Port: freeTCPPort(t)}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	// The server notices at once and is free for the next client (within its busy grace).
	q := dialPeer(t, addr, nil)
	port, got := listenLocal(t)
	if _, err := q.Send(context.Background(), PeerRequest{Addr: "127.0.0.1", Port: port, Size: 1, Pattern: PatternZero}); err != nil {
		t.Fatalf("next client: %v", err)
	}
	<-got
}

func FuzzPeerRequest(f *testing.F) {
	f.Add([]byte(`{"type":"peer","body":{"op":"send","addr":"127.0.0.1","local":"127.0.0.2","port":5201,"size":1024,"pattern":"yes7"}}`))
	f.Add([]byte(`{"type":"peer","body":{"op":"listen","port":5201,"timeout_ns":1000000000}}`))
	f.Add([]byte(`{"type":"peer","body":{"op":"send","addr":"::ffff:1.2.3.4","port":1,"block":-1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := proto.DecodeFrame(b)
		if err != nil {
			return
		}
		op, err := parsePeerRequest(m)
		if err != nil {
			return
		}
		if op.Port < 1 || op.Port > 65535 || op.timeout <= 0 || op.timeout > PeerMaxTimeout {
			t.Fatalf("accepted %+v", op)
		}
		if op.Op == PeerSend && (op.Size < 0 || op.Size > PeerMaxSize || op.Block < 1 || op.Block > peerMaxBlock || !op.dst.IsValid()) {
			t.Fatalf("accepted send %+v", op)
		}
	})
}
