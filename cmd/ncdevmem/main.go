// SPDX-License-Identifier: MIT

// Command ncdevmem measures Linux devmem TCP: throughput and CPU cost of TCP flows whose payload the
// NIC places in (or sends from) a dma-buf, against a host-memory baseline. See README.md.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
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
