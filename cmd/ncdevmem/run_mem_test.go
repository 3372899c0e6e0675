// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/gpu"
)

func TestRunMemoryKinds(t *testing.T) {
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"run", "--devmem-rx", "-f", "lo", "--rx-mem", "bogus"}, exitUsage, `--rx-mem "bogus": want udmabuf, cuda or host`},
		{[]string{"run", "--devmem-tx", "-f", "lo", "--tx-mem", "gpu"}, exitUsage, `--tx-mem "gpu": want udmabuf, cuda or host`},
	}
	if !gpu.Compiled {
		tests = append(tests, struct {
			args []string
			code int
			msg  string
		}{[]string{"run", "--devmem-rx", "-f", "lo", "--rx-mem", "cuda"}, exitUsage, "--rx-mem cuda: built without CUDA support: rebuild with -tags cuda"})
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(context.Background(), tt.args, strings.NewReader(""), &out, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.msg) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line with %q", tt.args, code, errb.String(), tt.code, tt.msg)
		}
	}
}
