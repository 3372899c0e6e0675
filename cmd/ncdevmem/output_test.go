// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOutputRegularFileIsReplacedWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.json")
	os.WriteFile(path, []byte("old"), 0o600)
	o, err := createOutput(path)
	if err != nil {
		t.Fatal(err)
	}
	o.WriteString("half")
	o.Abort()
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("aborted write changed the file: %q", b)
	}
	o, _ = createOutput(path)
	o.WriteString("new")
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != "new" || st.Mode().Perm() != 0o644 {
		t.Fatalf("committed %q mode %v", b, st.Mode())
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*tmp")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

// A special file (here a FIFO, standing in for /dev/null) must be written in place: renaming a
// temporary file over it would replace the node itself.
func TestOutputSpecialFileWrittenInPlace(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		got <- string(b)
	}()
	link := filepath.Join(dir, "link")
	os.Symlink(fifo, link)
	o, err := createOutput(link)
	if err != nil {
		t.Fatal(err)
	}
	o.WriteString("{}")
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "{}" {
		t.Fatalf("reader got %q", s)
	}
	for _, p := range []string{fifo, link} {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if p == fifo && st.Mode()&os.ModeNamedPipe == 0 || p == link && st.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("%s was replaced: mode %v", p, st.Mode())
		}
	}
}
