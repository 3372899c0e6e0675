package main

import (
	"context"
	"fmt"
	"io"
)

// runLegacy is a placeholder until issue 8 lands; its owner replaces this file.
func runLegacy(_ context.Context, _ []string, _ io.Reader, _ io.Writer, stderr io.Writer) int {
	fmt.Fprintln(stderr, "ncdevmem: the C-compatible command line is unavailable in this build (issue 8)")
	return 1
}
