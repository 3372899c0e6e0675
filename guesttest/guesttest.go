// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package guesttest holds the guest-kernel test tier: ordinary Go tests that run inside a QEMU guest
// booted by scripts/vm/run-tests.sh with one of Debian's 6.12 or 7.x kernels, real udmabuf and (on
// 7.x) netdevsim. They are selected by NCDEVMEM_GUEST=1 so they always compile and, anywhere else,
// skip with a reason. The package has no API of its own beyond the helpers the tests share.
package guesttest

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Require skips t unless it runs inside a guest booted by scripts/vm/run-tests.sh (NCDEVMEM_GUEST=1).
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv("NCDEVMEM_GUEST") != "1" {
		t.Skip("guest-kernel test: runs only inside the QEMU guest (make test-vm, scripts/vm/run-tests.sh)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("guest-kernel tests run as root inside the guest; euid is not 0")
	}
}

// Release is the running kernel's major and minor version.
type Release struct{ Major, Minor int }

// AtLeast reports whether r is major.minor or newer.
func (r Release) AtLeast(major, minor int) bool {
	return r.Major > major || (r.Major == major && r.Minor >= minor)
}

// String formats r as "major.minor".
func (r Release) String() string { return strconv.Itoa(r.Major) + "." + strconv.Itoa(r.Minor) }

// KernelRelease parses the running kernel's release ("6.12.117+deb12-cloud-amd64").
func KernelRelease(t testing.TB) Release {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatalf("uname: %v", err)
	}
	rel, err := parseRelease(unix.ByteSliceToString(u.Release[:]))
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

func parseRelease(s string) (Release, error) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if len(f) < 2 {
		return Release{}, &strconv.NumError{Func: "parseRelease", Num: s, Err: strconv.ErrSyntax}
	}
	major, err := strconv.Atoi(f[0])
	if err != nil {
		return Release{}, err
	}
	minor, err := strconv.Atoi(f[1])
	if err != nil {
		return Release{}, err
	}
	return Release{major, minor}, nil
}
