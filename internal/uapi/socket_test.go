// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package uapi

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestSocketLayouts(t *testing.T) {
	var c DmabufCmsg
	var tok DmabufToken
	var ee unix.SockExtendedErr
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(dmabuf_cmsg)", unsafe.Sizeof(c), SizeofDmabufCmsg},
		{"dmabuf_cmsg.frag_offset", unsafe.Offsetof(c.FragOffset), 0},
		{"dmabuf_cmsg.frag_size", unsafe.Offsetof(c.FragSize), 8},
		{"dmabuf_cmsg.frag_token", unsafe.Offsetof(c.FragToken), 12},
		{"dmabuf_cmsg.dmabuf_id", unsafe.Offsetof(c.DmabufID), 16},
		{"dmabuf_cmsg.flags", unsafe.Offsetof(c.Flags), 20},
		{"sizeof(dmabuf_token)", unsafe.Sizeof(tok), SizeofDmabufToken},
		{"dmabuf_token.token_start", unsafe.Offsetof(tok.TokenStart), 0},
		{"dmabuf_token.token_count", unsafe.Offsetof(tok.TokenCount), 4},
		{"sizeof(sock_extended_err)", unsafe.Sizeof(ee), SizeofSockExtendedErr},
		{"sock_extended_err.ee_origin", unsafe.Offsetof(ee.Origin), 4},
		{"sock_extended_err.ee_code", unsafe.Offsetof(ee.Code), 6},
		{"sock_extended_err.ee_info", unsafe.Offsetof(ee.Info), 8},
		{"sock_extended_err.ee_data", unsafe.Offsetof(ee.Data), 12},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	if got := unix.CmsgSpace(SizeofDmabufCmsg); got != 40 {
		t.Errorf("CMSG_SPACE(sizeof(dmabuf_cmsg)) = %d, want 40", got)
	}
	if got := unix.CmsgLen(4); got != 20 {
		t.Errorf("CMSG_LEN(4) = %d, want 20", got)
	}
}
