// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Command ncdevmem measures Linux devmem TCP: throughput and CPU cost of TCP flows whose payload the
// NIC places in (or sends from) a dma-buf, against a host-memory baseline. See README.md.
package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signalContext(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// signalError is the cause of a context ended by a signal; the exit code is 128 + its number.
type signalError struct{ sig syscall.Signal }

func (e *signalError) Error() string { return "interrupted by " + signalName(e.sig) }

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}

// signalContext is signal.NotifyContext with the signal as the context's cause. After the first
// signal the default action is back, so a second Ctrl-C kills a run that does not stop.
func signalContext(sigs ...os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			if ss, ok := s.(syscall.Signal); ok {
				cancel(&signalError{sig: ss})
			} else {
				cancel(errors.New("interrupted by " + s.String()))
			}
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// run is main without the process: it returns the exit code so tests can drive every front door.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if isLegacy(args) {
		return runLegacy(ctx, args, stdin, stdout, stderr)
	}
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return exitCode(root.ExecuteContext(ctx), stderr)
}

// isLegacy reports whether args are the C selftest tool's command line (flags and no subcommand),
// which the kernel's devmem.py uses.
func isLegacy(args []string) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "-h", "--help", "--version", "-version":
		return false
	}
	return len(args[0]) > 1 && args[0][0] == '-'
}
