// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package legacy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/bind"
	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/internal/devmemsim"
	"github.com/devmemtcp/ncdevmem/nic/nictest"
)

// devmemKernel is a devmem-capable NIC: the in-memory ethtool model plus bind rules as the kernel
// applies them (empty queue nests are a missing attribute; header split must be configured on;
// a bind marks the queues so channel shrinking is refused).
type devmemKernel struct {
	model *nictest.Model
	nic   *nictest.NIC
	id    uint32
	// acceptEmpty makes the broken kernel accept attribute-less queue nests.
	acceptEmpty bool
}

func newDevmemKernel() *devmemKernel {
	n := nictest.DevmemNIC(7)
	return &devmemKernel{model: nictest.New(map[string]*nictest.NIC{"eth1": n}), nic: n, id: 4}
}

func (k *devmemKernel) system(t *testing.T, mem dmabuf.Buffer) *System {
	return &System{
		NIC:      k.model,
		StateDir: t.TempDir(),
		Alloc: func(size int64, huge bool) (dmabuf.Buffer, error) {
			if mem == nil {
				return dmabuf.NewHost(size)
			}
			return nopClose{mem}, nil
		},
		BindRX: func(req bind.RXRequest) (Binding, error) { return k.model.BindRX("eth1", req.Queues, k.id) },
		BindRXEmpty: func(ifindex, nests, fd int) (Binding, error) {
			if k.acceptEmpty {
				return nictest.NewBinding(k.id), nil
			}
			return nil, errors.New("bind-rx: missing attribute queue-id")
		},
		BindTX: func(ifindex, fd int) (Binding, error) { return nictest.NewBinding(k.id), nil },
	}
}

// nopClose keeps a shared buffer open when the tool closes it.
type nopClose struct{ dmabuf.Buffer }

func (nopClose) Close() error { return nil }

func runTool(t *testing.T, sys *System, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Run(context.Background(), args, sys, strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

func TestProbeSucceedsAndRestores(t *testing.T) {
	k := newDevmemKernel()
	before := k.nic.Clone()
	code, stdout, stderr := runTool(t, k.system(t, nil), "", "-f", "eth1")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	for _, want := range []string{"using ifindex=7", "TCP header split: off", "TCP header split: on", "got dmabuf id=4", "setting channel count rx:4 tx:4"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if diff := cmp.Diff(before, k.nic); diff != "" {
		t.Errorf("NIC not restored (-before +after):\n%s", diff)
	}
}

func TestProbeFailures(t *testing.T) {
	tests := []struct {
		name  string
		setup func(k *devmemKernel)
		args  []string
		code  int
		msg   string
	}{
		{"empty nests accepted", func(k *devmemKernel) { k.acceptEmpty = true }, nil, ExitProbeFails, "Binding empty queues array should have failed"},
		{"no header split", func(k *devmemKernel) { k.nic.HDS = false }, nil, ExitProbeFails, "rss error"},
		{"too few queues", func(k *devmemKernel) { k.nic.Channels.Combined = 1 }, nil, ExitError, "number of device queues is too low"},
		{"only -t", nil, []string{"-t", "2"}, ExitError, "Both -t and -q are required"},
		{"unknown interface", nil, []string{"-f", "nope0"}, ExitError, "unknown interface nope0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newDevmemKernel()
			if tt.setup != nil {
				tt.setup(k)
			}
			before := k.nic.Clone()
			args := append([]string{"-f", "eth1"}, tt.args...)
			code, _, stderr := runTool(t, k.system(t, nil), "", args...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Fatalf("exit %d (want %d), stderr:\n%s\nwant %q", code, tt.code, stderr, tt.msg)
			}
			if diff := cmp.Diff(before, k.nic); diff != "" {
				t.Errorf("NIC changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestProbeAllocationFailure(t *testing.T) {
	k := newDevmemKernel()
	sys := k.system(t, nil)
	sys.Alloc = func(int64, bool) (dmabuf.Buffer, error) {
		return nil, errors.New("udmabuf: /dev/udmabuf does not exist")
	}
	before := k.nic.Clone()
	code, _, stderr := runTool(t, sys, "", "-f", "eth1")
	if code != ExitProbeFails || !strings.Contains(stderr, "ncdevmem: Failed to allocate memory buffer: udmabuf: /dev/udmabuf does not exist") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if diff := cmp.Diff(before, k.nic); diff != "" {
		t.Errorf("NIC changed:\n%s", diff)
	}
}

func TestMissingArguments(t *testing.T) {
	k := newDevmemKernel()
	for args, want := range map[string]string{
		"-l -s ::1 -p 1":              "ncdevmem: Missing -f argument\n",
		"-l -f eth1 -c ::1 -p 1":      "ncdevmem: Missing -s argument\n",
		"-l -f eth1 -s ::1":           "ncdevmem: Missing -p argument\n",
		"-l -f eth1 -s ::1 -p 1 -t 1": "ncdevmem: Missing -q argument\n",
		"-l -f eth1 -s ::1 -p 1 -q 1": "ncdevmem: Missing -t argument\n",
		// The C tool lists extra arguments before it checks -t.
		"-l -f eth1 -s ::1 -p 1 -q 1 junk": "extra arguments: junk\nncdevmem: Missing -t argument\n",
		"-f eth1 -b 99999999999":           "ncdevmem: invalid rx_page_size: 99999999999\n",
	} {
		code, stdout, stderr := runTool(t, k.system(t, nil), "", strings.Fields(args)...)
		if code != ExitError || !strings.HasSuffix(stderr, want) || stdout != "" {
			t.Errorf("%s: exit %d stdout %q stderr %q, want exit 1 and %q", args, code, stdout, stderr, want)
		}
	}
}

// freePort returns a TCP port that was free a moment ago on loopback.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// dialRetry connects to the tool's listener once it is up.
func dialRetry(t *testing.T, addr string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect to the tool at %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rxRun starts the RX mode on loopback with the simulator in the data path, sends payload from a
// peer, and returns the exit code and both streams.
func rxRun(t *testing.T, cfg devmemsim.Config, payload []byte, extra ...string) (int, string, string, *devmemKernel) {
	t.Helper()
	return rxRunNapi(t, cfg, payload, nil, extra...)
}

// rxRunNapi is rxRun with a NAPI-to-queue map; onBound, when set, sees the bound queues and
// returns it.
func rxRunNapi(t *testing.T, cfg devmemsim.Config, payload []byte, napi func(bound []uint32, id uint32) (int, error), extra ...string) (int, string, string, *devmemKernel) {
	t.Helper()
	cfg.Size = dmabufSize
	cfg.RXID = 4
	sim, err := devmemsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	k := newDevmemKernel()
	sys := k.system(t, sim.Buffer())
	sys.RX = sim
	if napi != nil {
		var bound []uint32
		bindRX := sys.BindRX
		sys.BindRX = func(req bind.RXRequest) (Binding, error) { bound = req.Queues; return bindRX(req) }
		sys.QueueOfNapi = func(_ int, id uint32) (int, error) { return napi(bound, id) }
	}
	port := strconv.Itoa(freePort(t))
	args := append([]string{"-l", "-f", "eth1", "-s", "::1", "-p", port}, extra...)
	var o, e bytes.Buffer
	done := make(chan int)
	go func() { done <- Run(context.Background(), args, sys, strings.NewReader(""), &o, &e) }()
	c := dialRetry(t, "[::1]:"+port)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case code := <-done:
		return code, o.String(), e.String(), k
	case <-time.After(20 * time.Second):
		t.Fatalf("RX mode did not finish; stderr so far:\n%s", e.String())
	}
	return 0, "", "", nil
}

// yes7 is what devmem.py's check_rx sends: `yes $(echo -e \x01\x02\x03\x04\x05\x06) | head -c N`.
func yes7(n int) []byte {
	line := []byte{1, 2, 3, 4, 5, 6, '\n'}
	out := make([]byte, 0, n+len(line))
	for len(out) < n {
		out = append(out, line...)
	}
	return out[:n]
}

// TestRXUnsplitPacketsOnBoundQueue: packets the NIC did not split arrive on the bound queue as
// plain bytes with no cmsg; the tool validates them as linear payload instead of calling it a
// steering error (fidelity row 1). On an unbound queue they still are one.
func TestRXUnsplitPacketsOnBoundQueue(t *testing.T) {
	onBound := func(bound []uint32, id uint32) (int, error) { return int(bound[0]), nil }
	code, _, stderr, _ := rxRunNapi(t, devmemsim.Config{FragSize: 1000, UnsplitEvery: 3, NapiID: 9}, yes7(64<<10), onBound, "-v", "7", "--json", "-")
	if code != ExitOK || !strings.Contains(stderr, "unsplit packet: ") || strings.Contains(stderr, "Failed validation") {
		t.Fatalf("exit %d, stderr:\n%s", code, tail(stderr))
	}
	elsewhere := func(bound []uint32, id uint32) (int, error) { return int(bound[0]) + 100, nil }
	code, _, stderr, _ = rxRunNapi(t, devmemsim.Config{FragSize: 1000, UnsplitEvery: 3, NapiID: 9}, yes7(64<<10), elsewhere, "-v", "7")
	if code != ExitError || !strings.Contains(stderr, "flow steering error") || !strings.Contains(stderr, "not a bound one") {
		t.Fatalf("unbound queue: exit %d, stderr:\n%s", code, tail(stderr))
	}
}

func TestRXValidatesLikeCheckRX(t *testing.T) {
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			code, stdout, stderr, k := rxRun(t, devmemsim.Config{FragSize: 1000}, yes7(size), "-c", "::1", "-v", "7")
			if code != ExitOK {
				t.Fatalf("exit %d, stderr tail:\n%s", code, tail(stderr))
			}
			frags := strings.Count(stderr, "received frag_page=")
			if want := strings.Repeat("Validated buffer\n", frags); frags < (size+999)/1000 || stdout != want {
				t.Errorf("stdout has %d lines for %d frags of a %d-byte stream", strings.Count(stdout, "\n"), frags, size)
			}
			if !strings.Contains(stderr, "ncdevmem: client exited") {
				t.Errorf("stderr lacks the C tool's end marker:\n%s", tail(stderr))
			}
			if k.nic.Bound || len(k.nic.Rules) != 0 {
				t.Errorf("binding or rules left behind: bound %v rules %v", k.nic.Bound, k.nic.Rules)
			}
		})
	}
}

func TestRXPrintsPayloadWithoutValidation(t *testing.T) {
	code, stdout, stderr, _ := rxRun(t, devmemsim.Config{FragSize: 5}, []byte("hello\nworld\n"))
	if code != ExitOK || stdout != "hello\nworld\n" {
		t.Fatalf("exit %d stdout %q, stderr:\n%s", code, stdout, tail(stderr))
	}
}

func TestRXValidatesLinearBytesToo(t *testing.T) {
	// Every third frag arrives as SCM_DEVMEM_LINEAR: its bytes are part of the stream, so the -v
	// check must pass over them (the C tool skips them and would fail here).
	code, stdout, stderr, _ := rxRun(t, devmemsim.Config{FragSize: 512, LinearEvery: 3}, yes7(16<<10), "-v", "7")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, tail(stderr))
	}
	if !strings.Contains(stderr, "SCM_DEVMEM_LINEAR") || !strings.Contains(stdout, "Validated buffer") {
		t.Errorf("no LINEAR frag seen or nothing validated:\n%s", tail(stderr))
	}
}

func TestRXFailures(t *testing.T) {
	tests := []struct {
		name string
		cfg  devmemsim.Config
		args []string
		msg  string
	}{
		{"corrupted byte", devmemsim.Config{CorruptAt: 3000}, []string{"-v", "7"}, "Failed validation: expected="},
		{"linear with -L", devmemsim.Config{LinearEvery: 2}, []string{"-L"}, "received SCM_DEVMEM_LINEAR but --fail-on-linear (-L) set"},
		{"wrong dma-buf", devmemsim.Config{WrongIDAt: 2}, nil, "received on wrong dmabuf_id: flow steering error"},
		{"no devmem cmsg", devmemsim.Config{Plain: true}, nil, "flow steering error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := yes7(64 << 10)
			if tt.name == "corrupted byte" {
				// 21 bad bytes make the C tool give up; the simulator corrupts one per run, so corrupt a
				// whole region by sending the wrong pattern after a good prefix.
				for i := 3000; i < 3100; i++ {
					payload[i] ^= 0x55
				}
			}
			code, _, stderr, k := rxRun(t, tt.cfg, payload, tt.args...)
			if code != ExitError || !strings.Contains(stderr, tt.msg) {
				t.Fatalf("exit %d (want 1), stderr:\n%s\nwant %q", code, tail(stderr), tt.msg)
			}
			if k.nic.Bound || len(k.nic.Rules) != 0 {
				t.Errorf("binding or rules left behind")
			}
			// A failed run never reaches the C tool's summary lines.
			if strings.Contains(stderr, "page_aligned_frags=") || strings.Contains(stderr, "ncdevmem: ok") {
				t.Errorf("summary printed after a failure:\n%s", tail(stderr))
			}
		})
	}
}

func TestRXBatchedTokens(t *testing.T) {
	code, _, stderr, _ := rxRun(t, devmemsim.Config{FragSize: 4096}, yes7(4<<20), "-v", "7", "--dontneed-batch", "128", "--json", "-")
	if code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, tail(stderr))
	}
	i := strings.Index(stderr, "{\n")
	if i < 0 {
		t.Fatalf("no JSON summary on stderr:\n%s", tail(stderr))
	}
	var tokens, calls int
	fmt.Sscanf(stderr[strings.Index(stderr, `"tokens": `)+len(`"tokens": `):], "%d", &tokens)
	fmt.Sscanf(stderr[strings.Index(stderr, `"dontneed_calls": `)+len(`"dontneed_calls": `):], "%d", &calls)
	if tokens < 1024 || calls == 0 || calls > tokens/8 {
		t.Errorf("tokens %d in %d DONTNEED calls: want at least 1024 tokens in far fewer calls", tokens, calls)
	}
}

// socatListen is the selftest peer of check_tx: `socat -U - TCP6-LISTEN:P`.
func socatListen(t *testing.T) (port string, got func() string) {
	t.Helper()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		l.Close()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		mu.Lock()
		buf.Write(b)
		mu.Unlock()
	}()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), func() string {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("peer did not see the stream end")
		}
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
}

// txSystem is the legacy tool's kernel for TX: the devmem model with the simulator (dmabufSize,
// TX binding id 4, cfg's other switches) as the data path.
func txSystem(t *testing.T, cfg devmemsim.Config) *System {
	t.Helper()
	cfg.Size, cfg.TXID = dmabufSize, 4
	sim, err := devmemsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	sys := newDevmemKernel().system(t, sim.Buffer())
	sys.TX = sim
	return sys
}

func TestTXLikeCheckTX(t *testing.T) {
	for _, chunk := range []string{"", "3"} {
		t.Run("z="+chunk, func(t *testing.T) {
			sys := txSystem(t, devmemsim.Config{})
			port, got := socatListen(t)
			args := []string{"-f", "eth1", "-s", "::1", "-p", port}
			if chunk != "" {
				args = append(args, "-z", chunk)
			}
			code, stdout, stderr := runTool(t, sys, "hello\nworld\n", args...)
			if code != ExitOK || stdout != "" {
				t.Fatalf("exit %d stdout %q, stderr:\n%s", code, stdout, stderr)
			}
			if g := got(); strings.TrimSpace(g) != "hello\nworld" {
				t.Errorf("peer got %q", g)
			}
			for _, want := range []string{"got tx dmabuf id=4", "sendmsg_ret=6", "tx complete [0,0]", "tx complete [1,1]", "ncdevmem: tx ok"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}

func TestTXNoCompletion(t *testing.T) {
	sys := txSystem(t, devmemsim.Config{HoldCompletions: true})
	port, _ := socatListen(t)
	code, _, stderr := runTool(t, sys, "hello\n", "-f", "eth1", "-s", "::1", "-p", port)
	if code != ExitError || !strings.Contains(stderr, "did not receive tx completion") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

func TestTXPeerGone(t *testing.T) {
	sys := txSystem(t, devmemsim.Config{})
	port := strconv.Itoa(freePort(t))
	code, _, stderr := runTool(t, sys, "hello\n", "-f", "eth1", "-s", "::1", "-p", port)
	if code != ExitError || !strings.Contains(stderr, "connect to [::1]:"+port) || !strings.Contains(stderr, unix.ECONNREFUSED.Error()) {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// TestRXQueueBeyondDevice: like the C tool, a queue beyond the device's fails the bind and leaves
// the channel count (and everything else) as it was; nothing listens.
func TestRXQueueBeyondDevice(t *testing.T) {
	k := newDevmemKernel()
	before := k.nic.Channels
	// A regression listens for a peer: the deadline turns that into a failure, not a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var o, e bytes.Buffer
	port := strconv.Itoa(freePort(t))
	code := Run(ctx, []string{"-l", "-f", "eth1", "-s", "::1", "-p", port, "-t", "7", "-q", "2"}, k.system(t, nil), strings.NewReader(""), &o, &e)
	stderr := e.String()
	if code != ExitError || !strings.Contains(stderr, "ncdevmem: Failed to bind: rx queues 7..8: eth1 has 8 RX queues") {
		t.Fatalf("exit %d (want 1), stderr:\n%s", code, tail(stderr))
	}
	if k.nic.Channels != before || k.nic.Bound || len(k.nic.Rules) != 0 {
		t.Errorf("NIC changed: channels %+v (was %+v), bound %v, rules %d", k.nic.Channels, before, k.nic.Bound, len(k.nic.Rules))
	}
}
