// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"context"
	"io"

	"github.com/devmemtcp/ncdevmem/legacy"
)

// runLegacy runs the kernel selftest's C ncdevmem command line (flags, no subcommand), with its own
// exit codes: 0, 1, and 255 when probe mode finds the NIC unfit.
func runLegacy(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return legacy.Run(ctx, args, nil, stdin, stdout, stderr)
}
