// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package selftest

import (
	"context"
	"testing"
	"time"
)

func TestHugePagesReadsMeminfo(t *testing.T) {
	total, free, ok := hugePages()
	if !ok {
		t.Fatalf("hugePages: /proc/meminfo has no HugePages_Total/HugePages_Free")
	}
	if free < 0 || free > total {
		t.Fatalf("hugePages: free %d, total %d", free, total)
	}
}

// A pool that can never hold the pages is not waited for: the invocation reports the shortage.
func TestWaitHugePagesFreeSmallPool(t *testing.T) {
	total, _, ok := hugePages()
	if !ok {
		t.Fatalf("hugePages: /proc/meminfo unreadable")
	}
	done := make(chan struct{})
	go func() {
		waitHugePagesFree(context.Background(), total+1, time.Hour)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("waitHugePagesFree(%d) waited on a pool of %d pages", total+1, total)
	}
}
