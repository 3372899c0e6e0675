// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

// Frag is one control message of a recvmsg(MSG_SOCK_DEVMEM), as the devmem engine decodes it.
type Frag struct {
	// Other marks a control message that is not a devmem one (callers skip it).
	Other bool
	// Linear marks SCM_DEVMEM_LINEAR: Size bytes were copied into the iov, packed at its front in
	// stream order, because header split did not separate them. Otherwise the Size bytes are in
	// the dma-buf at Offset and Token must be returned with SO_DEVMEM_DONTNEED.
	Linear   bool
	Offset   uint64
	Size     uint32
	Token    uint32
	DmabufID uint32
}

// Frags walks the control buffer of one recvmsg(MSG_SOCK_DEVMEM) in place, checking level, type
// and length before decoding, and allocates nothing: the parser the devmem engine itself uses.
type Frags struct{ it cmsgIter }

// NewFrags iterates over oob, the control bytes recvmsg returned (msg_controllen of them).
func NewFrags(oob []byte) Frags { return Frags{it: newCmsgIter(oob)} }

// Next returns the next control message. ok is false at the end; err reports a malformed buffer.
func (f *Frags) Next() (fr Frag, ok bool, err error) {
	c, ok, err := f.it.next()
	if !ok || err != nil {
		return Frag{}, ok, err
	}
	return Frag{Other: c.kind == fragOther, Linear: c.kind == fragLinear, Offset: c.offset, Size: c.size, Token: c.token, DmabufID: c.id}, true, nil
}
