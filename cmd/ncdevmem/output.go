// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// outputFile is where a command writes a result file (--json, --plot). A regular file, or one that
// does not exist yet, is written through a temporary twin in the same directory and renamed into
// place by Commit, so a failed run never leaves a truncated result where an older one was. Anything
// else (/dev/null, /dev/stdout, a FIFO) is written in place: renaming over it would replace the
// device node or pipe itself. A symbolic link is followed to its target.
type outputFile struct {
	*os.File
	path string // the final path (symlinks resolved)
	tmp  bool   // File is a temporary twin to rename over path
}

// createOutput opens the output for path. Errors unwrap the *fs.PathError to the cause.
func createOutput(path string) (*outputFile, error) {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, unwrapPath(err)
		}
		return &outputFile{File: f, path: path}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, unwrapPath(err)
	}
	return &outputFile{File: f, path: path, tmp: true}, nil
}

// Commit closes the output and, for a temporary twin, gives it mode 0644 and moves it into place.
func (o *outputFile) Commit() error {
	if !o.tmp {
		return o.Close()
	}
	err := o.Chmod(0o644)
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(o.Name(), o.path)
	}
	if err != nil {
		os.Remove(o.Name())
	}
	return err
}

// Abort closes the output and removes a temporary twin; after Commit it does nothing harmful.
func (o *outputFile) Abort() {
	o.Close()
	if o.tmp {
		os.Remove(o.Name())
	}
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
