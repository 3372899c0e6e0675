// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package selftest

import (
	"fmt"
	"io"
	"strings"
)

// Status is a test case's outcome.
type Status int

// Outcomes, as kselftest counts them.
const (
	Pass Status = iota
	Fail
	Skip
)

// Exit codes of a kselftest (tools/testing/selftests/kselftest.h).
const (
	ExitPass = 0
	ExitFail = 1
	ExitSkip = 4 // KSFT_SKIP: nothing failed and nothing passed
)

// Totals counts the outcomes reported so far.
type Totals struct {
	Pass, Fail, Skip int
}

// ExitCode is the kselftest exit code for these totals: ExitFail when anything failed, ExitSkip
// when everything was skipped, ExitPass otherwise.
func (t Totals) ExitCode() int {
	switch {
	case t.Fail > 0:
		return ExitFail
	case t.Pass == 0 && t.Skip > 0:
		return ExitSkip
	}
	return ExitPass
}

// KTAP writes kselftest TAP output the way the kernel's Python selftest library (ksft.py) prints
// it: a version line and plan, "# " diagnostics, one result line per case, then a totals line.
// Write errors are remembered and returned by Finish.
type KTAP struct {
	w      io.Writer
	n      int
	err    error
	totals Totals
}

// NewKTAP starts a KTAP stream of planned cases on w.
func NewKTAP(w io.Writer, planned int) *KTAP {
	k := &KTAP{w: w}
	k.printf("TAP version 13\n1..%d\n", planned)
	return k
}

func (k *KTAP) printf(format string, a ...any) {
	if k.err != nil {
		return
	}
	_, k.err = fmt.Fprintf(k.w, format, a...)
}

// Diag writes text as diagnostic lines, "# " before each line.
func (k *KTAP) Diag(text string) {
	for line := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		k.printf("# %s\n", strings.TrimRight(line, "\r"))
	}
}

// Result writes the next case's result line. reason is the skip reason (Skip) or an optional
// comment (Pass, Fail).
func (k *KTAP) Result(name string, s Status, reason string) {
	k.n++
	// A newline in the name or reason would start a line the parser misreads.
	name = oneLine(name)
	reason = oneLine(reason)
	switch s {
	case Pass:
		k.totals.Pass++
		k.printf("ok %d %s%s\n", k.n, name, comment(reason))
	case Fail:
		k.totals.Fail++
		k.printf("not ok %d %s%s\n", k.n, name, comment(reason))
	case Skip:
		k.totals.Skip++
		k.printf("ok %d %s # SKIP %s\n", k.n, name, reason)
	}
}

func comment(s string) string {
	if s == "" {
		return ""
	}
	return " # " + s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Totals returns the counts so far.
func (k *KTAP) Totals() Totals { return k.totals }

// Finish writes the totals line and returns the first write error.
func (k *KTAP) Finish() error {
	t := k.totals
	k.printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n", t.Pass, t.Fail, t.Skip)
	return k.err
}
