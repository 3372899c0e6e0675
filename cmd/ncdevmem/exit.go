// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"errors"
	"fmt"
	"io"
)

// Exit codes shared by every subcommand. Subcommands with their own contract (doctor, the legacy
// C-compatible mode, selftest) document theirs.
const (
	exitOK      = 0
	exitFailure = 1 // the run failed or missed an --expect gate
	exitUsage   = 2 // bad flags or arguments
	// 128+N: interrupted by signal N (130 SIGINT, 143 SIGTERM), after stopping cleanly.
)

// exitError carries an exit code through cobra. Silent suppresses the final "ncdevmem: ..." line
// when the command already printed its diagnosis.
type exitError struct {
	Code   int
	Err    error
	Silent bool
}

func (e *exitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return e.Err.Error()
}
func (e *exitError) Unwrap() error { return e.Err }

// usageErrorf returns an error that exits with exitUsage.
func usageErrorf(format string, a ...any) error {
	return &exitError{Code: exitUsage, Err: fmt.Errorf(format, a...)}
}

// exitCode prints err as one line and maps it to an exit code.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var se *signalError
	if errors.As(err, &se) {
		// Interrupted: 130 for SIGINT, 143 for SIGTERM, as shells report them.
		code = 128 + int(se.sig)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Silent {
			return code
		}
	}
	fmt.Fprintf(stderr, "ncdevmem: %v\n", err)
	return code
}
