// SPDX-License-Identifier: MIT

//go:build !cuda && linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package gpu

import (
	"errors"
	"testing"
)

func TestWithoutCUDATag(t *testing.T) {
	if _, err := New(4096, "0"); !errors.Is(err, ErrNoCUDA) || err.Error() != "built without CUDA support: rebuild with -tags cuda" {
		t.Errorf("New: %v", err)
	}
	if err := Available(); !errors.Is(err, ErrNoCUDA) {
		t.Errorf("Available: %v", err)
	}
}
