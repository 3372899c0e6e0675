// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package devmemsim

import (
	"os/exec"
	"strings"
	"testing"
)

// The simulator stands in for the kernel in tests only: the shipped binary must not contain it.
func TestNotInTheBinary(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go toolchain not on PATH: cannot list the binary's dependencies")
	}
	for _, tags := range []string{"", "cuda"} {
		out, err := exec.Command("go", "list", "-deps", "-tags", tags, "github.com/devmemtcp/ncdevmem/cmd/ncdevmem").CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps (tags %q): %v\n%s", tags, err, out)
		}
		for _, p := range strings.Fields(string(out)) {
			if strings.HasSuffix(p, "/internal/devmemsim") || strings.HasSuffix(p, "/nic/nictest") || strings.HasSuffix(p, "/internal/testnet") {
				t.Errorf("ncdevmem (tags %q) links the test-only package %s", tags, p)
			}
		}
	}
}
