// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestUnsupportedPlatformsFailWithOneError builds the command for a non-Linux OS and for a 32-bit
// CPU: each build must fail with exactly one error, the one that names the requirement (not a
// cascade of undefined x/sys/unix names from the packages below).
func TestUnsupportedPlatformsFailWithOneError(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go toolchain not on PATH: %v", err)
	}
	for _, target := range [][2]string{{"darwin", "arm64"}, {"linux", "386"}} {
		t.Run(target[0]+"/"+target[1], func(t *testing.T) {
			cmd := exec.Command(goBin, "build", "-o", os.DevNull, ".")
			cmd.Env = append(os.Environ(), "GOOS="+target[0], "GOARCH="+target[1], "CGO_ENABLED=0")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("go build for %s/%s succeeded; want the unsupported-platform error", target[0], target[1])
			}
			var errs []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if strings.HasPrefix(l, "#") || l == "" {
					continue
				}
				errs = append(errs, l)
			}
			if len(errs) != 1 || !strings.Contains(errs[0], "ncdevmem_needs_Linux_on_a_64_bit_CPU") {
				t.Fatalf("go build for %s/%s: want one error naming the requirement, got:\n%s", target[0], target[1], out)
			}
		})
	}
}
