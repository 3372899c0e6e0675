// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// livePeriod is how often servers send live samples when the client shows a progress line.
const livePeriod = 500 * time.Millisecond

// liveLine is the client's one progress line, rewritten in place on a terminal.
type liveLine struct {
	mu     sync.Mutex
	w      io.Writer
	runs   int
	window time.Duration
	shown  bool
	// The last live sample of each role in the current run.
	last    map[Role]progressMsg
	gbps    float64
	idle    map[Role]float64
	lastRun int
}

// sample takes one live sample of role in run (0-based) and redraws the line.
func (l *liveLine) sample(role Role, p progressMsg, run int, elapsed time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return
	}
	if l.last == nil || run != l.lastRun {
		l.last, l.idle, l.gbps, l.lastRun = map[Role]progressMsg{}, map[Role]float64{}, 0, run
	}
	if role == RoleTarget {
		// Received Gbps since the previous sample (since the window opened, for the first).
		prev := l.last[role]
		if p.Elapsed > prev.Elapsed && p.Bytes >= prev.Bytes {
			l.gbps = float64(p.Bytes-prev.Bytes) * 8 / (p.Elapsed - prev.Elapsed) / 1e9
		}
	}
	l.last[role] = p
	l.idle[role] = p.AppIdle
	left := time.Duration(l.runs-run-1)*l.window + max(l.window-elapsed, 0)
	var b strings.Builder
	fmt.Fprintf(&b, "\rrun %d/%d  %.1f s elapsed, %.1f s left  %.2f Gbps  app CPU idle", run+1, l.runs, elapsed.Seconds(), left.Seconds(), l.gbps)
	for _, r := range []Role{RoleSource, RoleTarget} {
		if v, ok := l.idle[r]; ok && v >= 0 {
			fmt.Fprintf(&b, " %s %.0f%%", r, v)
		} else {
			fmt.Fprintf(&b, " %s ?", r)
		}
	}
	b.WriteString("\x1b[K")
	io.WriteString(l.w, b.String())
	l.shown = true
}

// clear erases the line, so what follows starts on a clean line.
func (l *liveLine) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil && l.shown {
		io.WriteString(l.w, "\r\x1b[K")
		l.shown = false
	}
}

// TestHoldEnv is a test hook: NCDEVMEM_TEST_HOLD=PHASE[,PHASE] makes the server (setup, drain,
// devmem-alloc: a devmem setup with the NIC prepared) or the client (between) wait in that phase
// until it is stopped or a minute passes, saying so on stderr, so tests can deliver a signal in a
// phase that is normally too short to hit.
const TestHoldEnv = "NCDEVMEM_TEST_HOLD"

// testHold waits in phase p while the hook names it; it returns ctx's error if ctx ended.
func testHold(ctx context.Context, p Phase) error {
	v := os.Getenv(TestHoldEnv)
	if v == "" || !slices.Contains(strings.Split(v, ","), string(p)) {
		return nil
	}
	fmt.Fprintf(os.Stderr, "ncdevmem: test hook %s: holding in phase %s\n", TestHoldEnv, p)
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
