// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package devmemsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// Sys is the socket seam a conformance case drives: rx.Kernel{} on a real devmem socket, or a Sim.
type Sys interface {
	Recvmsg(fd int, msg *unix.Msghdr, flags int) (int, error)
	Setsockopt(fd, level, name int, val []byte) (int, error)
	GetsockoptInt(fd, level, name int) (int, error)
}

// Conn is what the conformance cases run on: Fd, a TCP socket whose flow lands on a queue bound to
// dma-buf DmabufID, with the peer sending continuously; Quiet stops the peer and returns once
// every byte it sent has reached the socket.
type Conn struct {
	Sys      Sys
	Fd       int
	DmabufID uint32
	Quiet    func() error
}

// Case is one behaviour of the kernel's devmem socket API (and the fidelity-review row it comes
// from) that the simulator must share. The cases run in order on one Conn: a fresh socket, so the
// first frag's token is the first ever handed out.
type Case struct {
	Name string
	Row  int // fidelity-review.md row, 0 for a behaviour the review found right
	Run  func(c *Conn, st *State) error
}

// State carries tokens between cases.
type State struct {
	tokens []uint32
}

// recv is one recvmsg with an iov of iovLen bytes and room for frags cmsgs.
func recv(c *Conn, iovLen, frags, flags int) (n int, fr []frag, ctrunc bool, err error) {
	iov := make([]byte, iovLen)
	var oob []byte
	if frags > 0 {
		oob = make([]byte, frags*cmsgSpace)
	}
	var msg unix.Msghdr
	var v unix.Iovec
	v.Base = &iov[0]
	v.SetLen(len(iov))
	msg.Iov = &v
	msg.SetIovlen(1)
	if len(oob) > 0 {
		msg.Control = &oob[0]
	}
	msg.SetControllen(len(oob))
	n, err = c.Sys.Recvmsg(c.Fd, &msg, flags|unix.MSG_DONTWAIT)
	if err != nil {
		return n, nil, false, err
	}
	rem := oob[:msg.Controllen]
	for len(rem) >= unix.SizeofCmsghdr {
		h, d, r, perr := unix.ParseOneSocketControlMessage(rem)
		if perr != nil {
			return n, fr, false, perr
		}
		if h.Level == unix.SOL_SOCKET && (h.Type == unix.SCM_DEVMEM_DMABUF || h.Type == unix.SCM_DEVMEM_LINEAR) && len(d) >= uapi.SizeofDmabufCmsg {
			fr = append(fr, frag{linear: h.Type == unix.SCM_DEVMEM_LINEAR, off: binary.NativeEndian.Uint64(d),
				size: binary.NativeEndian.Uint32(d[8:]), token: binary.NativeEndian.Uint32(d[12:]), id: binary.NativeEndian.Uint32(d[16:])})
		}
		rem = r
	}
	return n, fr, msg.Flags&unix.MSG_CTRUNC != 0, nil
}

type frag struct {
	linear          bool
	off             uint64
	size, token, id uint32
}

// waitData retries a recvmsg that found nothing yet (the peer's data is on its way).
func waitData(c *Conn, iovLen, frags, flags int) (int, []frag, bool, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, fr, ct, err := recv(c, iovLen, frags, flags)
		if !errors.Is(err, unix.EAGAIN) || time.Now().After(deadline) {
			return n, fr, ct, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dontneed(c *Conn, toks ...uint32) (int, error) {
	b := make([]byte, 0, 8*len(toks))
	for _, t := range toks {
		b = binary.NativeEndian.AppendUint32(b, t)
		b = binary.NativeEndian.AppendUint32(b, 1)
	}
	return c.Sys.Setsockopt(c.Fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, b)
}

func wantErrno(what string, err error, want unix.Errno) error {
	if !errors.Is(err, want) {
		return fmt.Errorf("%s: got %v, want %v", what, err, want)
	}
	return nil
}

// Cases is the conformance table, in the order it runs.
var Cases = []Case{
	{Name: "recvmsg without MSG_SOCK_DEVMEM on dma-buf data is EFAULT", Run: func(c *Conn, _ *State) error {
		_, _, _, err := waitData(c, 4096, 4, 0)
		return wantErrno("recvmsg(0)", err, unix.EFAULT)
	}},
	{Name: "no room for one devmem cmsg and data waiting is ETOOSMALL", Row: 9, Run: func(c *Conn, _ *State) error {
		_, _, _, err := waitData(c, 4096, 0, unix.MSG_SOCK_DEVMEM)
		return wantErrno("recvmsg(MSG_SOCK_DEVMEM) without a control buffer", err, unix.Errno(uapi.ETOOSMALL))
	}},
	{Name: "frags carry the binding's id and tokens start at 1", Row: 7, Run: func(c *Conn, st *State) error {
		n, fr, ctrunc, err := waitData(c, 64<<10, 64, unix.MSG_SOCK_DEVMEM)
		if err != nil || n <= 0 {
			return fmt.Errorf("recvmsg(MSG_SOCK_DEVMEM): %d, %v", n, err)
		}
		if ctrunc {
			return errors.New("MSG_CTRUNC on a recvmsg with only devmem cmsgs")
		}
		sum, first := 0, uint32(0)
		for _, f := range fr {
			sum += int(f.size)
			if f.linear {
				continue
			}
			if f.id != c.DmabufID {
				return fmt.Errorf("frag of dma-buf %d, want %d", f.id, c.DmabufID)
			}
			if first == 0 {
				first = f.token
			}
			st.tokens = append(st.tokens, f.token)
		}
		if sum != n {
			return fmt.Errorf("frags account for %d of %d bytes", sum, n)
		}
		if first != 1 {
			return fmt.Errorf("first token %d, want 1 (XA_FLAGS_ALLOC1)", first)
		}
		return nil
	}},
	{Name: "SO_DEVMEM_DONTNEED with optlen 0 or 4 is EINVAL", Row: 8, Run: func(c *Conn, _ *State) error {
		for _, l := range []int{0, 4} {
			_, err := c.Sys.Setsockopt(c.Fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, make([]byte, l))
			if e := wantErrno(fmt.Sprintf("DONTNEED optlen %d", l), err, unix.EINVAL); e != nil {
				return e
			}
		}
		return nil
	}},
	{Name: "SO_DEVMEM_DONTNEED returns the frags freed, 0 for tokens already freed", Run: func(c *Conn, st *State) error {
		n, err := dontneed(c, st.tokens...)
		if err != nil || n != len(st.tokens) {
			return fmt.Errorf("DONTNEED of %d tokens: %d, %v", len(st.tokens), n, err)
		}
		if n, err := dontneed(c, st.tokens...); err != nil || n != 0 {
			return fmt.Errorf("DONTNEED again: %d, %v; want 0", n, err)
		}
		return nil
	}},
	{Name: "the lowest free token is handed out first", Row: 7, Run: func(c *Conn, st *State) error {
		_, fr, _, err := waitData(c, 4096, 1, unix.MSG_SOCK_DEVMEM)
		if err != nil {
			return err
		}
		for _, f := range fr {
			if !f.linear {
				if f.token != 1 {
					return fmt.Errorf("token %d after returning all, want 1", f.token)
				}
				_, err := dontneed(c, f.token)
				return err
			}
		}
		return nil
	}},
	{Name: "SO_ZEROCOPY takes 0 or 1, 2 is EINVAL", Row: 12, Run: func(c *Conn, _ *State) error {
		two := []byte{2, 0, 0, 0}
		_, err := c.Sys.Setsockopt(c.Fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, two)
		return wantErrno("SO_ZEROCOPY 2", err, unix.EINVAL)
	}},
	{Name: "queued data stays readable; with none, EAGAIN even without a control buffer", Row: 9, Run: func(c *Conn, _ *State) error {
		if err := c.Quiet(); err != nil {
			return err
		}
		for i := 0; ; i++ {
			n, fr, _, err := recv(c, 64<<10, 64, unix.MSG_SOCK_DEVMEM)
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			if err != nil || n == 0 || i > 100000 {
				return fmt.Errorf("draining: %d, %v", n, err)
			}
			var toks []uint32
			for _, f := range fr {
				if !f.linear {
					toks = append(toks, f.token)
				}
			}
			if len(toks) > 0 {
				if _, err := dontneed(c, toks...); err != nil {
					return err
				}
			}
		}
		_, _, _, err := recv(c, 4096, 0, unix.MSG_SOCK_DEVMEM)
		return wantErrno("recvmsg with nothing queued and no control buffer", err, unix.EAGAIN)
	}},
}
