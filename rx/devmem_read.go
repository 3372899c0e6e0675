// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"fmt"
	"io"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/internal/sockcall"
)

// DevmemReader reads a devmem socket as an ordinary byte stream, for the few bytes a protocol
// exchanges on a data connection before the engine takes over (the bench's data hello). On a
// queue bound to a dma-buf those bytes land in the dma-buf like any payload, and read(2) would
// fail with EFAULT. Read copies them out of the dma-buf (and the iov, for LINEAR frags or for a
// flow on an unbound queue) and returns their tokens at once. It never returns more than len(p),
// so no stream byte meant for the engine is consumed. Not for bulk data: it copies and syncs per
// call.
type DevmemReader struct {
	rc   syscall.RawConn
	sys  DevmemSys
	buf  dmabuf.Buffer
	id   uint32
	iov  []byte
	oob  []byte
	msg  unix.Msghdr
	vec  unix.Iovec
	toks TokenBatch
	fd   int
	n    int
	err  error
	fn   func(fd uintptr) bool
}

// NewDevmemReader reads rc, whose frags belong to dma-buf binding id over buf. sys nil means the
// running kernel.
func NewDevmemReader(rc syscall.RawConn, buf dmabuf.Buffer, id uint32, sys DevmemSys) *DevmemReader {
	if sys == nil {
		sys = Kernel{}
	}
	r := &DevmemReader{rc: rc, sys: sys, buf: buf, id: id, iov: make([]byte, 64<<10),
		oob: make([]byte, 64*cmsgSpace), toks: newTokenBatch(true)}
	r.fn = r.recv
	return r
}

// Read reads at most len(p) stream bytes, waiting for at least one. It returns io.EOF at the end of
// the stream and an error wrapping os.ErrDeadlineExceeded when the connection's read deadline
// passed.
func (r *DevmemReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.n, r.err = 0, nil
	want := min(len(p), len(r.iov))
	if err := r.rc.Read(func(fd uintptr) bool {
		r.fd = int(fd)
		setIov(&r.msg, &r.vec, r.iov[:want], r.oob)
		return r.fn(fd)
	}); err != nil {
		return 0, err
	}
	if r.err != nil {
		return 0, r.err
	}
	if r.n == 0 {
		return 0, io.EOF
	}
	return r.assemble(p[:r.n])
}

func (r *DevmemReader) recv(uintptr) bool {
	n, wait, err := sockcall.Call(func() (int, error) {
		return r.sys.Recvmsg(r.fd, &r.msg, unix.MSG_SOCK_DEVMEM|unix.MSG_DONTWAIT)
	})
	if err != nil {
		r.err = recvError(err)
	} else if !wait {
		r.n = n
	}
	return !wait
}

// assemble puts the n bytes one recvmsg returned, in stream order, into p (len(p) == n).
func (r *DevmemReader) assemble(p []byte) (int, error) {
	// MSG_CTRUNC is not checked: devmem cmsgs never truncate (put_cmsg_notrunc), so the flag can
	// only come from another cmsg, and the frags here account for every byte (checked below).
	it := newCmsgIter(r.oob[:r.msg.Controllen])
	var k, lin int
	devmem := false
	for {
		f, ok, err := it.next()
		if err != nil {
			return 0, fmt.Errorf("devmem read: %w", err)
		}
		if !ok {
			break
		}
		if f.kind == fragOther {
			continue
		}
		devmem = true
		if uint64(k)+uint64(f.size) > uint64(len(p)) {
			return 0, fmt.Errorf("devmem read: frags hold more than the %d bytes recvmsg returned", len(p))
		}
		dst := p[k : k+int(f.size)]
		switch f.kind {
		case fragLinear:
			copy(dst, r.iov[lin:lin+int(f.size)])
			lin += int(f.size)
		case fragDmabuf:
			if f.id != r.id {
				return 0, fmt.Errorf("devmem read: frag of dma-buf id %d, want %d: flow steering sent the connection to a queue of another binding", f.id, r.id)
			}
			if _, err := r.buf.ReadAt(dst, int64(f.offset)); err != nil {
				return 0, fmt.Errorf("devmem read: copy %d bytes at dma-buf offset %d: %w", f.size, f.offset, err)
			}
			if r.toks.Full() {
				if err := r.release(); err != nil {
					return 0, err
				}
			}
			r.toks.Add(f.token)
		}
		k += int(f.size)
	}
	if !devmem {
		// Readable data (a flow on an unbound queue, or before the rule): it is in the iov.
		copy(p, r.iov[:len(p)])
		return len(p), nil
	}
	if k != len(p) {
		return 0, fmt.Errorf("devmem read: recvmsg returned %d bytes but its devmem cmsgs account for %d", len(p), k)
	}
	return len(p), r.release()
}

func (r *DevmemReader) release() error {
	if r.toks.count == 0 {
		return nil
	}
	n, err := r.sys.Setsockopt(r.fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, tokenBytes(r.toks.ranges))
	want, ranges := r.toks.count, len(r.toks.ranges)
	r.toks.Reset()
	if err != nil {
		return dontneedError(want, ranges, err)
	}
	if n < want {
		return fmt.Errorf("devmem read: SO_DEVMEM_DONTNEED freed %d of %d frags", n, want)
	}
	return nil
}
