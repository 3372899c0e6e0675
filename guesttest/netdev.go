// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// VirtioNICs returns the names of the guest's virtio-net interfaces, sorted. The harness attaches two,
// joined by a QEMU hub and with no outside connectivity.
func VirtioNICs(t testing.TB) []string {
	t.Helper()
	return nicsByDriver(t, "virtio_net")
}

func nicsByDriver(t testing.TB, driver string) []string {
	t.Helper()
	links, err := filepath.Glob("/sys/class/net/*/device/driver")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		target, err := os.Readlink(l)
		if err != nil || filepath.Base(target) != driver {
			continue
		}
		out = append(out, filepath.Base(filepath.Dir(filepath.Dir(l))))
	}
	sort.Strings(out)
	return out
}

// Ifindex returns the interface index of name in the current network namespace.
func Ifindex(t testing.TB, name string) int {
	t.Helper()
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatalf("interface %s: %v", name, err)
	}
	return ifi.Index
}

// Netdevsim is one netdevsim device created for a test.
type Netdevsim struct {
	ID    int
	Ports []string // interface names, in port order
}

// NewNetdevsim creates netdevsim device id with ports ports of queues queues each (netdevsim bus,
// 7.x guests only) and removes it when t ends. It skips t when the bus is absent.
func NewNetdevsim(t testing.TB, id, ports, queues int) *Netdevsim {
	t.Helper()
	if _, err := os.Stat("/sys/bus/netdevsim/new_device"); err != nil {
		t.Skipf("netdevsim is not loaded in this guest (%v): run-tests.sh builds it only for 7.x", err)
	}
	spec := fmt.Sprintf("%d %d %d", id, ports, queues)
	if err := os.WriteFile("/sys/bus/netdevsim/new_device", []byte(spec), 0); err != nil {
		t.Fatalf("netdevsim new_device %q: %v", spec, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile("/sys/bus/netdevsim/del_device", []byte(strconv.Itoa(id)), 0); err != nil {
			t.Errorf("netdevsim del_device %d: %v", id, err)
		}
	})
	dir := fmt.Sprintf("/sys/bus/netdevsim/devices/netdevsim%d", id)
	// The ports are registered asynchronously after the write returns.
	deadline := time.Now().Add(10 * time.Second)
	for {
		names := portNames(dir)
		if len(names) == ports {
			return &Netdevsim{ID: id, Ports: names}
		}
		if time.Now().After(deadline) {
			t.Fatalf("netdevsim%d: %d of %d ports appeared within 10 s", id, len(names), ports)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// portNames lists the interfaces of a netdevsim device in port order (net/ holds one per port; the
// port index comes from phys_port_name "pN").
func portNames(dir string) []string {
	ents, err := os.ReadDir(filepath.Join(dir, "net"))
	if err != nil {
		return nil
	}
	type port struct {
		idx  int
		name string
	}
	var ps []port
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/sys/class/net", e.Name(), "phys_port_name"))
		idx := len(ps)
		if err == nil && len(b) > 1 && b[0] == 'p' {
			if n, err := strconv.Atoi(string(b[1 : len(b)-1])); err == nil {
				idx = n
			}
		}
		ps = append(ps, port{idx, e.Name()})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].idx < ps[j].idx })
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.name
	}
	return names
}

// LinkNetdevsim joins two netdevsim ports that live in the named network namespaces (files under
// /run/netns), so frames sent on one arrive on the other. ifindexA and ifindexB are the ports'
// indexes inside their namespaces.
func LinkNetdevsim(nsA string, ifindexA int, nsB string, ifindexB int) error {
	fa, err := os.Open(filepath.Join("/run/netns", nsA))
	if err != nil {
		return err
	}
	defer fa.Close()
	fb, err := os.Open(filepath.Join("/run/netns", nsB))
	if err != nil {
		return err
	}
	defer fb.Close()
	spec := fmt.Sprintf("%d:%d %d:%d", fa.Fd(), ifindexA, fb.Fd(), ifindexB)
	if err := os.WriteFile("/sys/bus/netdevsim/link_device", []byte(spec), 0); err != nil {
		return fmt.Errorf("netdevsim link_device %q: %w", spec, err)
	}
	return nil
}
