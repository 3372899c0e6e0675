// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import "testing"

func TestFragsMatchesTheEngineParser(t *testing.T) {
	want := []frag{
		{kind: fragDmabuf, offset: 4096, size: 4000, token: 7, id: 3},
		{kind: fragLinear, size: 66},
		{kind: fragDmabuf, offset: 1 << 33, size: 1, token: 1<<31 - 1, id: 3},
	}
	fs := NewFrags(buildCmsgs(want))
	for i, w := range want {
		f, ok, err := fs.Next()
		if err != nil || !ok {
			t.Fatalf("frag %d: ok %v, %v", i, ok, err)
		}
		got := Frag{Linear: w.kind == fragLinear, Offset: w.offset, Size: w.size, Token: w.token, DmabufID: w.id}
		if f != got {
			t.Errorf("frag %d: %+v, want %+v", i, f, got)
		}
	}
	if _, ok, err := fs.Next(); ok || err != nil {
		t.Fatalf("past the end: ok %v, %v", ok, err)
	}
	bad := NewFrags(buildCmsgs(want)[:20])
	if _, _, err := bad.Next(); err == nil {
		t.Fatal("a truncated control message parsed")
	}
}
