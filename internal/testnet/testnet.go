// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package testnet builds throwaway network namespaces joined by veth pairs for host-kernel tests.
//
// Tests that use it are named TestRoot... and run only when NCDEVMEM_ROOT_TESTS=1 (make test-root);
// they need root and the ip(8) tool. Addresses come from 198.18.0.0/15, the range RFC 2544 sets aside
// for benchmarks, and exist only inside the namespaces a test created, so no test traffic can leave
// the machine. Every namespace is deleted by t.Cleanup, pass or fail.
package testnet

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// EnvVar selects the host-kernel tier.
const EnvVar = "NCDEVMEM_ROOT_TESTS"

// Require skips t with a reason unless NCDEVMEM_ROOT_TESTS=1, and fails t when the tier was asked for
// but cannot run here (not root, no ip tool): a requested tier never skips silently.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvVar) != "1" {
		t.Skipf("host-kernel test: needs root and network namespaces; run with %s=1 (make test-root)", EnvVar)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s=1 but not running as root: the host-kernel tier needs root", EnvVar)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("%s=1 but ip(8) is missing: apt-get install iproute2", EnvVar)
	}
}

// NS is a network namespace created for one test.
type NS struct {
	Name string     // as in /run/netns/Name
	Link string     // the veth inside the namespace ("" for a namespace without one)
	Addr netip.Addr // Link's IPv4 address (198.18.x.y), invalid when Link is ""
}

var seq atomic.Uint32

// names returns a prefix unique to this process and call, short enough for IFNAMSIZ.
func names() (string, uint32) {
	n := seq.Add(1)
	return fmt.Sprintf("nd%d-%d", os.Getpid()%100000, n), n
}

// Pair creates two namespaces joined by a veth pair named "veth0" on both sides, with addresses
// 198.18.K.1/24 (a) and 198.18.K.2/24 (b), links and loopback up. t.Cleanup removes both.
func Pair(t testing.TB) (a, b *NS) {
	t.Helper()
	prefix, n := names()
	a = &NS{Name: prefix + "a", Link: "veth0", Addr: netip.AddrFrom4([4]byte{198, 18, byte(n % 250), 1})}
	b = &NS{Name: prefix + "b", Link: "veth0", Addr: netip.AddrFrom4([4]byte{198, 18, byte(n % 250), 2})}
	addNS(t, a.Name)
	addNS(t, b.Name)
	va, vb := prefix+"x", prefix+"y"
	ip(t, "link", "add", va, "type", "veth", "peer", "name", vb)
	for _, x := range []struct {
		ns   *NS
		link string
	}{{a, va}, {b, vb}} {
		ip(t, "link", "set", x.link, "netns", x.ns.Name)
		ip(t, "-n", x.ns.Name, "link", "set", x.link, "name", x.ns.Link)
		ip(t, "-n", x.ns.Name, "addr", "add", x.ns.Addr.String()+"/24", "dev", x.ns.Link)
		ip(t, "-n", x.ns.Name, "link", "set", x.ns.Link, "up")
	}
	return a, b
}

// Single creates one namespace with loopback up and a veth "veth0" (198.18.K.1/24) whose peer lives in
// a second, hidden namespace, so the test has a real non-loopback device to act on.
func Single(t testing.TB) *NS {
	t.Helper()
	a, _ := Pair(t)
	return a
}

func addNS(t testing.TB, name string) {
	t.Helper()
	ip(t, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("testnet: deleting namespace %s: %v: %s", name, err, bytes.TrimSpace(out))
		}
	})
	ip(t, "-n", name, "link", "set", "lo", "up")
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("testnet: ip %v: %v: %s", args, err, bytes.TrimSpace(out))
	}
}

// Do runs fn on a locked OS thread switched into the namespace. Sockets and netlink connections
// opened in fn belong to the namespace for their whole life, even when used later from other
// goroutines; goroutines started inside fn do not run in the namespace.
func (ns *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is left locked on every path: if switching back failed it must die with the
		// goroutine rather than return to the scheduler in the wrong namespace.
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("testnet: open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("testnet: open netns %s: %w", ns.Name, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("testnet: enter netns %s: %w", ns.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("testnet: leave netns %s: %w", ns.Name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Run is Do for a test: fn's error fails t. fn may call t.Error but not t.Fatal (it runs on
// another goroutine).
func (ns *NS) Run(t testing.TB, fn func() error) {
	t.Helper()
	if err := ns.Do(fn); err != nil {
		t.Fatal(err)
	}
}

// Command returns a command that runs name with args inside the namespace.
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Ifindex returns the ifindex of link inside the namespace, failing t if there is none.
func (ns *NS) Ifindex(t testing.TB, link string) int {
	t.Helper()
	var idx int
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		idx = ifi.Index
		return nil
	})
	if err != nil {
		t.Fatalf("testnet: ifindex of %s in %s: %v", link, ns.Name, err)
	}
	return idx
}
