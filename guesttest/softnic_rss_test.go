// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package guesttest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGuestSoftnicLegacyRSSTable pins fidelity row 18, rechecked against the 7.3 selftest source:
// the C ncdevmem runs `ethtool -X IF equal START_QUEUE` on every RX run and `ethtool -X IF
// default` afterwards, so a table the user had set is lost. Ours changes the table only when it
// sends traffic to a devmem queue, spreads it then over every other queue, and writes the user's
// table back exactly. Two user tables: one that keeps off the devmem queue (left alone: no RSS
// step at all), one that hits it (replaced during the run, restored after).
func TestGuestSoftnicLegacyRSSTable(t *testing.T) {
	CheckKernelLog(t)
	lab := SoftnicLab(t, false)
	dev := lab.B.Link
	t.Cleanup(func() { nsRun(t, lab.B, "ethtool", "-X", dev, "default") })
	for i, c := range []struct {
		name  string
		table []string
		touch bool
	}{
		{"off the devmem queue", []string{"equal", "2"}, false},
		{"on the devmem queue", []string{"weight", "0", "0", "1", "1"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			nsRun(t, lab.B, "ethtool", append([]string{"-X", dev}, c.table...)...)
			before := snicState(t, lab.B, dev)
			port := 5421 + i
			rxp := startLegacy(t, lab.B, nil, "-l", "-f", dev, "-s", lab.B.Addr.String(), "-p", strconv.Itoa(port),
				"-c", lab.A.Addr.String(), "-v", "7")
			rxp.waitListening(t)
			during := nsRun(t, lab.B, "ethtool", "-x", dev)
			sendFrom(t, lab.A, lab.A.Addr.String(), lab.B.Addr.String(), port, yes7(256<<10))
			if code := rxp.wait(t, 2*time.Minute); code != 0 {
				t.Fatalf("ncdevmem RX: exit %d\nstderr:\n%s", code, tailLines(rxp.stderr.String(), 40))
			}
			errOut := rxp.stderr.String()
			logged := strings.Contains(errOut, "rss indirection")
			if logged != c.touch {
				t.Errorf("RSS table step logged %v, want %v:\n%s", logged, c.touch, tailLines(errOut, 40))
			}
			last := lastQueues(t, lab.B, dev, 1)[0]
			if q := contextQueues(during); len(q) == 0 || q[len(q)-1] == last {
				t.Errorf("during the run the table spreads over %v, which includes the devmem queue %d:\n%s", q, last, during)
			} else if c.touch && fmt.Sprint(q) != fmt.Sprint([]uint32{0, 1, 2}) {
				t.Errorf("during the run the table spreads over %v, want every other queue [0 1 2] (C: equal 3)", q)
			}
			checkSame(t, "the user's RSS table after ncdevmem RX (C would leave the default table)", before, snicState(t, lab.B, dev))
		})
	}
}
