// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// fragKind says where a devmem frag's bytes are.
type fragKind uint8

const (
	fragOther  fragKind = iota // a cmsg that is not devmem (ignored)
	fragDmabuf                 // SCM_DEVMEM_DMABUF: in the dma-buf at Offset, token to return
	fragLinear                 // SCM_DEVMEM_LINEAR: copied into the iov (header split missed it)
)

// frag is one decoded devmem cmsg.
type frag struct {
	kind   fragKind
	offset uint64
	size   uint32
	token  uint32
	id     uint32
}

// cmsgSpace is the control-buffer room one frag takes: CMSG_SPACE(sizeof(struct dmabuf_cmsg)).
var cmsgSpace = unix.CmsgSpace(uapi.SizeofDmabufCmsg)

// cmsgIter walks the control buffer recvmsg filled, in place: level, type and length are checked
// before a payload is decoded, and nothing is allocated.
type cmsgIter struct {
	rem []byte
	n   int // control bytes in total, for error messages
}

func newCmsgIter(oob []byte) cmsgIter { return cmsgIter{rem: oob, n: len(oob)} }

// next decodes the next cmsg. ok is false at the end; err reports a malformed buffer. The header
// is decoded by hand rather than with unix.ParseOneSocketControlMessage: same checks, a third of
// the time per frag.
func (it *cmsgIter) next() (f frag, ok bool, err error) {
	b := it.rem
	if len(b) < unix.SizeofCmsghdr {
		return frag{}, false, nil
	}
	l := binary.NativeEndian.Uint64(b[0:])
	level := int32(binary.NativeEndian.Uint32(b[8:]))
	typ := int32(binary.NativeEndian.Uint32(b[12:]))
	if l < unix.SizeofCmsghdr || l > uint64(len(b)) {
		return frag{}, false, fmt.Errorf("parse control message at byte %d of %d: length %d outside [%d, %d]",
			it.n-len(b), it.n, l, unix.SizeofCmsghdr, len(b))
	}
	data := b[unix.SizeofCmsghdr:l]
	if next := (l + cmsgAlign - 1) &^ (cmsgAlign - 1); next < uint64(len(b)) {
		it.rem = b[next:]
	} else {
		it.rem = nil
	}
	if level != unix.SOL_SOCKET || (typ != unix.SCM_DEVMEM_DMABUF && typ != unix.SCM_DEVMEM_LINEAR) {
		return frag{kind: fragOther}, true, nil
	}
	if len(data) < uapi.SizeofDmabufCmsg {
		return frag{}, false, fmt.Errorf("parse devmem control message: type %d carries %d bytes, want %d (struct dmabuf_cmsg)",
			typ, len(data), uapi.SizeofDmabufCmsg)
	}
	f = frag{
		kind:   fragDmabuf,
		offset: binary.NativeEndian.Uint64(data[0:]),
		size:   binary.NativeEndian.Uint32(data[8:]),
		token:  binary.NativeEndian.Uint32(data[12:]),
		id:     binary.NativeEndian.Uint32(data[16:]),
	}
	if typ == unix.SCM_DEVMEM_LINEAR {
		f.kind = fragLinear
	}
	return f, true, nil
}

// cmsgAlign is the kernel's CMSG_ALIGN granule on 64-bit (sizeof(long)).
const cmsgAlign = 8
