// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"golang.org/x/sys/unix"
)

// Softnic is the two-namespace lab on a softnic pair, built by scripts/softnic-lab.sh: A holds one
// end (snic0 by default), B the other (snic1), both addressed and up. B is the receiving side the
// devmem tests bind.
type Softnic struct {
	A, B *testnet.NS // Link is the softnic end inside; Addr is IPv6 when V6
	V6   bool
}

// SoftnicParamDir is where softnic's module parameters (the fault switches among them) live.
const SoftnicParamDir = "/sys/module/softnic/parameters"

// RequireSoftnic fails t unless the softnic module is loaded. Inside the guest it always is
// (run-tests.sh loads it), so its absence is a failure, not a skip.
func RequireSoftnic(t testing.TB) {
	t.Helper()
	Require(t)
	if _, err := os.Stat("/sys/module/softnic"); err != nil {
		t.Fatalf("softnic is not loaded in this guest (%v): run-tests.sh builds and loads it on every kernel", err)
	}
}

// SoftnicLabScript returns the lab script: $NCDEVMEM_SOFTNIC_LAB (the guest sets it), else
// scripts/softnic-lab.sh of this source tree.
func SoftnicLabScript(t testing.TB) string {
	t.Helper()
	if s := os.Getenv("NCDEVMEM_SOFTNIC_LAB"); s != "" {
		return s
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "scripts", "softnic-lab.sh")
}

// SoftnicLab runs `softnic-lab.sh up` (with --v6 when v6) and `softnic-lab.sh down` when t ends,
// failing t if either fails or if the lab's interfaces are not back in the initial namespace.
func SoftnicLab(t testing.TB, v6 bool) *Softnic {
	t.Helper()
	RequireSoftnic(t)
	script := SoftnicLabScript(t)
	args := []string{script, "up"}
	if v6 {
		args = append(args, "--v6")
	}
	out, err := exec.Command("/bin/sh", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("/bin/sh", script, "down").CombinedOutput(); err != nil {
			t.Errorf("%s down: %v\n%s", script, err, out)
		}
	})
	vars := map[string]string{}
	for _, f := range strings.Fields(string(out)) {
		if k, v, ok := strings.Cut(f, "="); ok {
			vars[k] = v
		}
	}
	lab := &Softnic{V6: v6}
	for _, side := range []struct {
		ns  **testnet.NS
		sfx string
	}{{&lab.A, "A"}, {&lab.B, "B"}} {
		addr, err := netip.ParseAddr(vars["ADDR_"+side.sfx])
		if err != nil || vars["NS_"+side.sfx] == "" || vars["IF_"+side.sfx] == "" {
			t.Fatalf("softnic-lab.sh up printed no usable NS/IF/ADDR for side %s:\n%s", side.sfx, out)
		}
		*side.ns = &testnet.NS{Name: vars["NS_"+side.sfx], Link: vars["IF_"+side.sfx], Addr: addr}
	}
	return lab
}

// SoftnicParam sets softnic module parameter name to value and puts the old value back when t ends.
// Writing corrupt_dport arms the corruption fault, so set corrupt_sport and corrupt_offset first.
func SoftnicParam(t testing.TB, name, value string) {
	t.Helper()
	p := filepath.Join(SoftnicParamDir, name)
	old, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("softnic parameter %s: %v", name, err)
	}
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		t.Fatalf("softnic parameter %s=%s: %v", name, value, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(p, bytes.TrimSpace(old), 0); err != nil {
			t.Errorf("restoring softnic parameter %s=%s: %v", name, bytes.TrimSpace(old), err)
		}
	})
}

// SoftnicParamValue reads softnic module parameter name.
func SoftnicParamValue(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(SoftnicParamDir, name))
	if err != nil {
		t.Fatalf("softnic parameter %s: %v", name, err)
	}
	return string(bytes.TrimSpace(b))
}

// SoftnicCounters returns a softnic device's own counters (`ethtool -S`: rx_niov_frags,
// rx_split_packets, rx_linear_payload_bytes, rx_fault_*, ...). ns nil means the current namespace.
func SoftnicCounters(t testing.TB, ns *testnet.NS, link string) map[string]uint64 {
	t.Helper()
	out := nsRun(t, ns, "ethtool", "-S", link)
	m := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			m[k] = n
		}
	}
	if _, ok := m["rx_packets"]; !ok {
		t.Fatalf("ethtool -S %s has no rx_packets:\n%s", link, out)
	}
	return m
}

// nsRun runs a command in ns (nil: the current namespace) and fails t with its output on error.
func nsRun(t testing.TB, ns *testnet.NS, name string, args ...string) string {
	t.Helper()
	out, err := nsCmd(ns, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func nsCmd(ns *testnet.NS, name string, args ...string) *exec.Cmd {
	if ns == nil {
		return exec.Command(name, args...)
	}
	return ns.Command(name, args...)
}

// KernelSplat matches kernel log lines that mean a warning, bug, oops, lockdep report or refcount
// complaint (the same list run-tests.sh applies to the whole guest log).
var KernelSplat = regexp.MustCompile(`WARNING:|BUG:|kernel BUG|Oops|general protection fault|refcount_t|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|Call Trace:|UBSAN:|KASAN:|hung_task|blocked for more than`)

// KernelLog reads the kernel log from the point it was opened on.
type KernelLog struct{ fd int }

// OpenKernelLog starts reading /dev/kmsg at its end; Check then sees only what the kernel logs
// afterwards. It is closed when t ends.
func OpenKernelLog(t testing.TB) *KernelLog {
	t.Helper()
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/kmsg: %v", err)
	}
	if _, err := unix.Seek(fd, 0, 2); err != nil {
		unix.Close(fd)
		t.Fatalf("seek /dev/kmsg to its end: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &KernelLog{fd: fd}
}

// Lines returns the messages logged since the last call (or since opening).
func (k *KernelLog) Lines() ([]string, error) {
	var out []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(k.fd, buf)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return out, nil
		case errors.Is(err, syscall.EPIPE):
			continue // overwritten before we read it; the next read resumes
		case err != nil:
			return out, fmt.Errorf("read /dev/kmsg: %w", err)
		}
		rec := string(buf[:n])
		if _, msg, ok := strings.Cut(rec, ";"); ok {
			rec = msg
		}
		out = append(out, strings.TrimRight(rec, "\n"))
	}
}

// Check fails t with the offending lines when the kernel logged a splat since the last call.
func (k *KernelLog) Check(t testing.TB) {
	t.Helper()
	lines, err := k.Lines()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range lines {
		if KernelSplat.MatchString(l) {
			end := min(len(lines), i+15)
			t.Fatalf("the kernel logged a splat:\n%s", strings.Join(lines[i:end], "\n"))
		}
	}
}

// CheckKernelLog registers a check, when t ends, that the kernel logged no splat while t ran.
func CheckKernelLog(t testing.TB) {
	t.Helper()
	k := OpenKernelLog(t)
	t.Cleanup(func() { k.Check(t) })
}
