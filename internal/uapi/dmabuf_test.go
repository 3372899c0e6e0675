// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package uapi

import (
	"testing"
	"unsafe"
)

func TestUdmabufCreateLayout(t *testing.T) {
	var s UdmabufCreate
	if got := unsafe.Sizeof(s); got != SizeofUdmabufCreate {
		t.Errorf("sizeof(udmabuf_create) = %d, want %d", got, SizeofUdmabufCreate)
	}
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"memfd", unsafe.Offsetof(s.Memfd), 0},
		{"flags", unsafe.Offsetof(s.Flags), 4},
		{"offset", unsafe.Offsetof(s.Offset), 8},
		{"size", unsafe.Offsetof(s.Size), 16},
	} {
		if f.got != f.want {
			t.Errorf("offsetof(udmabuf_create.%s) = %d, want %d", f.name, f.got, f.want)
		}
	}
}

func TestDmaBufSyncLayout(t *testing.T) {
	var s DmaBufSync
	if got := unsafe.Sizeof(s); got != SizeofDmaBufSync {
		t.Errorf("sizeof(dma_buf_sync) = %d, want %d", got, SizeofDmaBufSync)
	}
}

// TestIoctlNumbers recomputes the _IOW encodings (dir<<30 | size<<16 | type<<8 | nr) from the
// struct sizes, so a layout change and a stale constant cannot disagree silently.
func TestIoctlNumbers(t *testing.T) {
	iow := func(typ byte, nr, size uintptr) uintptr { return 1<<30 | size<<16 | uintptr(typ)<<8 | nr }
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"UDMABUF_CREATE", UDMABUF_CREATE, iow('u', 0x42, unsafe.Sizeof(UdmabufCreate{}))},
		// struct udmabuf_create_list is {u32 flags; u32 count; items[]}: 8 bytes of header.
		{"UDMABUF_CREATE_LIST", UDMABUF_CREATE_LIST, iow('u', 0x43, 8)},
		{"DMA_BUF_IOCTL_SYNC", DMA_BUF_IOCTL_SYNC, iow('b', 0, unsafe.Sizeof(DmaBufSync{}))},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if DMA_BUF_SYNC_RW != 3 || DMA_BUF_SYNC_END != 4 || DMA_BUF_SYNC_START != 0 {
		t.Errorf("dma_buf_sync flags: RW %d END %d START %d, want 3 4 0", DMA_BUF_SYNC_RW, DMA_BUF_SYNC_END, DMA_BUF_SYNC_START)
	}
}
