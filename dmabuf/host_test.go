// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package dmabuf

import (
	"bytes"
	"testing"
)

func TestHostReadWrite(t *testing.T) {
	h, err := NewHost(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var _ Mapped = h
	if _, err := h.WriteAt([]byte("hello"), 4090); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt([]byte("hello!!"), 4090); err == nil {
		t.Fatal("write past the end succeeded")
	}
	p := make([]byte, 5)
	if _, err := h.ReadAt(p, 4090); err != nil || !bytes.Equal(p, []byte("hello")) {
		t.Fatalf("ReadAt = %q, %v", p, err)
	}
	if _, err := NewHost(0); err == nil {
		t.Fatal("NewHost(0) succeeded")
	}
}
