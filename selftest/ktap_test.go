// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package selftest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/golden"
)

func TestKTAPGolden(t *testing.T) {
	tests := []struct {
		name string
		plan int
		run  func(k *KTAP)
		code int
	}{
		{"ktap-mixed.txt", 3, func(k *KTAP) {
			k.Result("devmem.require_devmem", Pass, "")
			k.Diag("ncdevmem -l -f eth1: exit 1\nncdevmem: Failed to bind: No such device\n")
			k.Result("devmem.check_rx", Fail, "")
			k.Result("devmem.check_tx", Skip, "Test requires devmem support")
		}, ExitFail},
		{"ktap-skip.txt", 2, func(k *KTAP) {
			k.Diag("ncdevmem -f veth0: exit 1\nncdevmem: number of device queues is too low")
			k.Result("devmem.require_devmem", Skip, "Test requires devmem support")
			k.Result("devmem.check_rx", Skip, "Test requires devmem support")
		}, ExitSkip},
		{"ktap-pass.txt", 3, func(k *KTAP) {
			k.Result("devmem.check_rx", Pass, "")
			k.Result("devmem.check_tx", Skip, "multi\nline reason")
			k.Result("devmem.check_tx_chunks", Pass, "note")
		}, ExitPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			k := NewKTAP(&b, tt.plan)
			tt.run(k)
			if err := k.Finish(); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tt.name, b.Bytes())
			if c := k.Totals().ExitCode(); c != tt.code {
				t.Errorf("exit code %d, want %d", c, tt.code)
			}
		})
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("broken pipe")
	}
	w.n--
	return len(p), nil
}

func TestKTAPWriteError(t *testing.T) {
	k := NewKTAP(&failWriter{n: 1}, 1)
	k.Result("x", Pass, "")
	if err := k.Finish(); err == nil || err.Error() != "broken pipe" {
		t.Errorf("Finish: %v, want the write error", err)
	}
}

func TestExitCodes(t *testing.T) {
	for _, tt := range []struct {
		t    Totals
		code int
	}{
		{Totals{}, ExitPass}, {Totals{Pass: 1, Skip: 5}, ExitPass}, {Totals{Skip: 2}, ExitSkip},
		{Totals{Pass: 3, Fail: 1, Skip: 1}, ExitFail}, {Totals{Fail: 1, Skip: 1}, ExitFail},
	} {
		if c := tt.t.ExitCode(); c != tt.code {
			t.Errorf("%+v: exit %d, want %d", tt.t, c, tt.code)
		}
	}
}
