// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/devmemtcp/ncdevmem/rx"
)

func TestPickSourcePorts(t *testing.T) {
	for _, n := range []int{1, 4, MaxFlows} {
		for range 50 {
			p := pickSourcePorts(n)
			if len(p) != n {
				t.Fatalf("pickSourcePorts(%d) = %d ports", n, len(p))
			}
			if err := checkSourcePorts(p, n); err != nil {
				t.Fatal(err)
			}
			for _, x := range p {
				if x < srcPortLo {
					t.Fatalf("port %d below %d", x, srcPortLo)
				}
			}
		}
	}
	if p := pickSourcePorts(0); p != nil {
		t.Errorf("pickSourcePorts(0) = %v", p)
	}
}

func TestCheckSourcePorts(t *testing.T) {
	for _, c := range []struct {
		ports []uint16
		flows int
		ok    bool
	}{
		{nil, 4, true},
		{[]uint16{61000, 61001}, 2, true},
		{[]uint16{61000}, 2, false},
		{[]uint16{61000, 61000}, 2, false},
		{[]uint16{0, 61000}, 2, false},
	} {
		if err := checkSourcePorts(c.ports, c.flows); (err == nil) != c.ok {
			t.Errorf("checkSourcePorts(%v, %d) = %v", c.ports, c.flows, err)
		}
	}
}

func TestFlowsFor(t *testing.T) {
	dst := netip.MustParseAddrPort("192.0.2.2:40000")
	if f := flowsFor(dst, nil); len(f) != 1 || f[0] != (nic.Flow{Dst: dst}) {
		t.Errorf("no ports: %v", f)
	}
	f := flowsFor(dst, []uint16{61000, 61001})
	want := []string{"flow-type tcp4 dst-ip 192.0.2.2 src-port 61000 dst-port 40000",
		"flow-type tcp4 dst-ip 192.0.2.2 src-port 61001 dst-port 40000"}
	if len(f) != 2 || f[0].String() != want[0] || f[1].String() != want[1] {
		t.Errorf("flows %v, want %q", f, want)
	}
}

// TestSourceDialer: the data connection leaves from the chosen port, twice in a row (the first
// connection's TIME_WAIT does not refuse the second bind), and a taken port is explained.
func TestSourceDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	ports := pickSourcePorts(2)
	called := false
	base := net.Dialer{Timeout: 5 * time.Second, Control: func(string, string, syscall.RawConn) error { called = true; return nil }}
	for _, l := range []net.Listener{ln, ln2} {
		c, err := sourceDialer(base, ports, 1).Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatalf("dial from port %d: %v", ports[1], err)
		}
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		got := s.RemoteAddr().(*net.TCPAddr).Port
		// Close the client first so that it, not the server, holds the TIME_WAIT.
		c.Close()
		s.Close()
		if got != int(ports[1]) {
			t.Errorf("the connection came from port %d, want %d", got, ports[1])
		}
	}
	if !called {
		t.Error("the datapath's Control was not called")
	}
	if d := sourceDialer(base, nil, 0); d.LocalAddr != nil {
		t.Errorf("without ports the dialer binds %v", d.LocalAddr)
	}
	// A port held by a listener is refused; the error says why the port was chosen.
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	p := []uint16{uint16(hold.Addr().(*net.TCPAddr).Port)}
	_, err = sourceDialer(net.Dialer{Timeout: 5 * time.Second}, p, 0).Dial("tcp", ln.Addr().String())
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("dial from a listening port: %v, want EADDRINUSE", err)
	}
	if msg := sourcePortAdvice(err, p, 0).Error(); !strings.Contains(msg, "the target chose source port") {
		t.Errorf("advice %q", msg)
	}
}

func TestNapiRecord(t *testing.T) {
	c, _ := testnet.TCPPair(t)
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n napiState
	n.add(1, rc)
	n.add(0, rc)
	if n.report() != nil {
		t.Fatal("a report before record")
	}
	qs := []bind.Queue{{ID: 0, Type: bind.QueueRX, NapiID: 8193}, {ID: 1, Type: bind.QueueRX, NapiID: 8194},
		{ID: 1, Type: bind.QueueTX, NapiID: 8194}, {ID: 2, Type: bind.QueueRX, NapiID: 8195}}
	n.record(qs, []uint32{1, 2})
	r := n.report()
	if len(r.Queues) != 2 || r.Queues[0].Queue != 1 || r.Queues[0].NapiID != 8194 || r.Queues[1].NapiID != 8195 {
		t.Errorf("queues %+v", r.Queues)
	}
	// Loopback has no NAPI: the socket reports 0, which maps to no queue.
	if len(r.Flows) != 2 || r.Flows[0].Flow != 0 || r.Flows[1].Flow != 1 || r.Flows[0].Queue != -1 {
		t.Errorf("flows %+v", r.Flows)
	}
}

func TestCheckDevmemOpts(t *testing.T) {
	for _, c := range []struct {
		spec TestSpec
		want string
	}{
		{TestSpec{DevmemRX: true, RxPageSize: 16384}, ""},
		{TestSpec{DevmemRX: true, RxPageSize: 4096, RSSContext: "off"}, ""},
		{TestSpec{DevmemRX: true, RSSContext: "on"}, ""},
		{TestSpec{DevmemRX: true, RSSContext: "auto", NoSetup: true}, ""},
		{TestSpec{DevmemRX: true, RxPageSize: 12288}, "power of two"},
		{TestSpec{DevmemRX: true, RxPageSize: 2048}, "power of two"},
		{TestSpec{DevmemRX: true, RxPageSize: 4 << 20}, "power of two"},
		{TestSpec{DevmemTX: true, RxPageSize: 16384}, "add --devmem-rx"},
		{TestSpec{DevmemRX: true, RSSContext: "maybe"}, "want auto, on or off"},
		{TestSpec{DevmemRX: true, RSSContext: "on", NoSetup: true}, "drop --no-setup"},
		{TestSpec{RSSContext: "off"}, "add --devmem-rx"},
	} {
		errs := c.spec.checkDevmemOpts()
		switch {
		case c.want == "" && len(errs) > 0:
			t.Errorf("%+v: %v", c.spec, errs)
		case c.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), c.want)):
			t.Errorf("%+v: %v, want %q", c.spec, errs, c.want)
		}
	}
	on, off := true, false
	for s, want := range map[string]*bool{"": nil, "auto": nil, "on": &on, "off": &off} {
		got := useRSSContext(&TestSpec{RSSContext: s})
		if (got == nil) != (want == nil) || (got != nil && *got != *want) {
			t.Errorf("useRSSContext(%q) = %v", s, got)
		}
	}
}

// portedDatapath is the host datapath whose target chooses the source ports, as the devmem
// target does (a test server lists it first in its datapaths).
type portedDatapath struct{}

var portedLast atomic.Pointer[portedFlows]

func (portedDatapath) Name() string { return "ported" }

func (portedDatapath) Handles(spec *TestSpec, role Role) bool {
	return role == RoleTarget && !spec.DevmemRX
}

func (portedDatapath) Setup(_ context.Context, s Setup) (Flows, error) {
	f := &portedFlows{hostFlows: hostFlows{spec: s.Spec}, ports: pickSourcePorts(s.Spec.Flows), peer: map[int]int{}}
	portedLast.Store(f)
	return f, nil
}

type portedFlows struct {
	hostFlows
	ports []uint16
	mu    sync.Mutex
	peer  map[int]int // flow id -> the source port its connection came from
}

func (f *portedFlows) SourcePorts() []uint16 { return f.ports }

func (f *portedFlows) Receiver(id int, rc syscall.RawConn) (rx.Engine, error) {
	var sa unix.Sockaddr
	var gerr error
	if err := rc.Control(func(fd uintptr) { sa, gerr = unix.Getpeername(int(fd)) }); err != nil || gerr != nil {
		return nil, errors.Join(err, gerr)
	}
	f.mu.Lock()
	if in4, ok := sa.(*unix.SockaddrInet4); ok {
		f.peer[id] = in4.Port
	}
	f.mu.Unlock()
	return f.hostFlows.Receiver(id, rc)
}

// TestSourcePortsThroughTheSession: the ports a target chose reach the source through the
// client, and each flow connects from its own port (loopback, host memory, three flows).
func TestSourcePortsThroughTheSession(t *testing.T) {
	key := []byte("0123456789abcdef")
	src, _ := startServer(t, &Server{Key: key, Software: "test"})
	dst, _ := startServer(t, &Server{Key: key, Software: "test", dps: append([]Datapath{portedDatapath{}}, builtinDatapaths()...)})
	cl := &Client{Src: src, Dst: dst, Key: key, Software: "test"}
	out, err := cl.Run(context.Background(), quickSpec(3, 300*time.Millisecond), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, &out.Runs[0], 3)
	f := portedLast.Load()
	if f == nil {
		t.Fatal("the target did not use the ported datapath")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, p := range f.ports {
		if f.peer[id] != int(p) {
			t.Errorf("flow %d came from port %d, the target chose %d (all: %v, chosen %v)", id, f.peer[id], p, f.peer, f.ports)
		}
	}
}
