// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing the real test.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failed = true
	r.msg = format
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "testdata", "x.txt"), []byte("same\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	r := &recorder{TB: t}
	Check(r, "x.txt", []byte("same\n"))
	if r.failed {
		t.Errorf("equal output failed: %s", r.msg)
	}
	r = &recorder{TB: t}
	Check(r, "x.txt", []byte("other\n"))
	if !r.failed || !strings.Contains(r.msg, "differs") {
		t.Errorf("different output: failed %v, %q", r.failed, r.msg)
	}
	r = &recorder{TB: t}
	Check(r, "missing.txt", nil)
	if !r.failed || !strings.Contains(r.msg, "-update") {
		t.Errorf("missing file: failed %v, %q", r.failed, r.msg)
	}
}
