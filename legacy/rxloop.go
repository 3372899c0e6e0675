// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package legacy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/devmemtcp/ncdevmem/dmabuf"
	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/devmemtcp/ncdevmem/pattern"
	"github.com/devmemtcp/ncdevmem/rx"
)

// The C tool's receive buffers: an 800 KiB iov and 80000 bytes of control, room for 2000 frags.
const (
	rxIovSize  = 819200
	rxCtrlSize = 80000
	// maxValidationErrors is how many mismatching bytes the C tool tolerates before it gives up.
	maxValidationErrors = 20
)

// rxStats is what one RX run counted, for the stderr summary and --json.
type rxStats struct {
	Received         uint64 `json:"dmabuf_bytes"`
	Linear           uint64 `json:"linear_bytes"`
	Unsplit          uint64 `json:"unsplit_bytes"` // of Linear, bytes of packets that came whole (no devmem cmsg) on a bound queue
	Frags            uint64 `json:"frags"`
	PageAligned      uint64 `json:"page_aligned_frags"`
	NonPageAligned   uint64 `json:"non_page_aligned_frags"`
	Recvmsgs         uint64 `json:"recvmsg_calls"`
	DontneedCalls    uint64 `json:"dontneed_calls"`
	Tokens           uint64 `json:"tokens"`
	ValidationErrors int    `json:"validation_errors"`
}

// rxLoop is the C tool's server loop over one accepted connection: recvmsg(MSG_SOCK_DEVMEM), walk the
// devmem cmsgs, copy each dma-buf frag out, validate it (-v) or print it, and return its token.
// Unlike the C tool it validates SCM_DEVMEM_LINEAR bytes as part of the stream (they are payload)
// and can return tokens in batches (--dontneed-batch).
type rxLoop struct {
	sys        rx.DevmemSys
	fd         int
	mem        dmabuf.Buffer
	dmabufID   uint32
	seq        *pattern.Seq // nil: print the payload
	failLinear bool
	stdout     *bufio.Writer
	stderr     io.Writer

	iov, ctrl, frag []byte
	msg             unix.Msghdr
	vec             unix.Iovec
	tokens          rx.TokenBatch
	off             uint64 // stream offset of the next payload byte
	st              rxStats
	// queueOfNapi maps SO_INCOMING_NAPI_ID to the RX queue it serves; queues are the bound ones.
	// Plain bytes (no devmem cmsg) on a bound queue are a packet the NIC did not split: linear
	// payload, not a steering error. Nil: every plain byte is a steering error.
	queueOfNapi func(napi uint32) (int, error)
	queues      []uint32
}

func newRXLoop(sys rx.DevmemSys, fd int, mem dmabuf.Buffer, id uint32, o *Options, stdout, stderr io.Writer) *rxLoop {
	l := &rxLoop{
		sys: sys, fd: fd, mem: mem, dmabufID: id, failLinear: o.FailLinear,
		stdout: bufio.NewWriterSize(stdout, 64<<10), stderr: stderr,
		iov: make([]byte, rxIovSize), ctrl: make([]byte, rxCtrlSize), frag: make([]byte, 0, 64<<10),
		// One token per call, as the C tool, unless --dontneed-batch asks for coalesced ranges.
		tokens: rx.NewTokenBatch(o.DontneedBatch > 1, o.DontneedBatch),
	}
	if o.Validate != 0 {
		l.seq = pattern.NewSeq(int(o.Validate)) // any n, with the C tool's u8 arithmetic
	}
	return l
}

// run receives until the peer closes the connection (nil) or something fails. Its errors carry the
// C tool's texts.
func (l *rxLoop) run() error {
	defer l.stdout.Flush()
	for {
		l.vec.Base = &l.iov[0]
		l.vec.SetLen(len(l.iov))
		l.msg = unix.Msghdr{Iov: &l.vec, Control: &l.ctrl[0]}
		l.msg.SetIovlen(1)
		l.msg.SetControllen(len(l.ctrl))
		n, err := l.sys.Recvmsg(l.fd, &l.msg, unix.MSG_SOCK_DEVMEM)
		l.st.Recvmsgs++
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			fmt.Fprintf(l.stderr, "recvmsg: %v\n", err)
			if errors.Is(err, unix.EFAULT) {
				return fmt.Errorf("received EFAULT, won't recover: %w (the flow reached a devmem queue without MSG_SOCK_DEVMEM, or the dma-buf mapping faulted)", err)
			}
			if errors.Is(err, unix.Errno(uapi.ETOOSMALL)) {
				return fmt.Errorf("recvmsg: control buffer of %d bytes too small for one devmem cmsg (ETOOSMALL)", len(l.ctrl))
			}
			continue
		}
		fmt.Fprintf(l.stderr, "recvmsg ret=%d\n", n)
		if n == 0 {
			fmt.Fprintln(l.stderr, "ncdevmem: client exited")
			return l.flushTokens()
		}
		devmem, err := l.frags(n)
		if err != nil {
			return err
		}
		if err := l.flushTokens(); err != nil {
			return err
		}
		if !devmem {
			if err := l.plain(n); err != nil {
				return err
			}
		}
		fmt.Fprintf(l.stderr, "total_received=%d\n", l.st.Received)
	}
}

// frags walks the control messages of one recvmsg that returned n bytes.
func (l *rxLoop) frags(n int) (devmem bool, err error) {
	frags := rx.NewFrags(l.ctrl[:l.msg.Controllen])
	linear := l.iov[:n] // LINEAR chunks sit in the iov in stream order
	for {
		f, ok, err := frags.Next()
		if err != nil {
			return devmem, fmt.Errorf("malformed control message from recvmsg: %w", err)
		}
		if !ok {
			return devmem, nil
		}
		if f.Other {
			fmt.Fprintln(l.stderr, "skipping non-devmem cmsg")
			continue
		}
		devmem = true
		offset, size, token, id := f.Offset, f.Size, f.Token, f.DmabufID
		if f.Linear {
			fmt.Fprintf(l.stderr, "SCM_DEVMEM_LINEAR. dmabuf_cmsg->frag_size=%d\n", size)
			if l.failLinear {
				return devmem, errors.New("received SCM_DEVMEM_LINEAR but --fail-on-linear (-L) set: header split did not split this flow (ethtool -g IF: tcp-data-split on, hds-thresh 0)")
			}
			if int(size) > len(linear) {
				return devmem, fmt.Errorf("malformed devmem control message: LINEAR frag of %d bytes but only %d bytes left in the iov", size, len(linear))
			}
			if err := l.consume(linear[:size]); err != nil {
				return devmem, err
			}
			linear = linear[size:]
			l.st.Linear += uint64(size)
			continue
		}
		l.st.Received += uint64(size)
		l.st.Frags++
		fmt.Fprintf(l.stderr, "received frag_page=%d, in_page_offset=%d, frag_offset=%d, frag_size=%d, token=%d, total_received=%d, dmabuf_id=%d\n",
			offset>>12, offset%4096, offset, size, token, l.st.Received, id)
		if id != l.dmabufID {
			return devmem, errors.New("received on wrong dmabuf_id: flow steering error (the flow reached a queue bound to another dma-buf)")
		}
		if offset+uint64(size) > uint64(l.mem.Size()) {
			return devmem, fmt.Errorf("malformed devmem control message: frag [%d,+%d) outside the %d-byte dma-buf", offset, size, l.mem.Size())
		}
		if size%4096 != 0 {
			l.st.NonPageAligned++
		} else {
			l.st.PageAligned++
		}
		if cap(l.frag) < int(size) {
			l.frag = make([]byte, size)
		}
		buf := l.frag[:size]
		if _, err := l.mem.ReadAt(buf, int64(offset)); err != nil {
			return devmem, fmt.Errorf("copy frag out of the dma-buf: %w", err)
		}
		if err := l.consume(buf); err != nil {
			return devmem, err
		}
		if err := l.release(token); err != nil {
			return devmem, err
		}
	}
}

// plain handles n bytes that came without any devmem cmsg (an skb with no dma-buf frag). On a bound
// queue (by SO_INCOMING_NAPI_ID) that is a packet the NIC did not split: linear payload, validated
// and counted like an SCM_DEVMEM_LINEAR frag. Elsewhere the flow missed the binding.
func (l *rxLoop) plain(n int) error {
	const steering = "flow steering error: data arrived without devmem control messages on %s, so it landed on a queue without the dma-buf binding (check the flow rule and RSS: ethtool -n IF, ethtool -x IF)"
	id, err := l.sys.GetsockoptInt(l.fd, unix.SOL_SOCKET, unix.SO_INCOMING_NAPI_ID)
	if err != nil || id == 0 || l.queueOfNapi == nil {
		return fmt.Errorf(steering, "a queue the kernel did not name (SO_INCOMING_NAPI_ID 0)")
	}
	q, err := l.queueOfNapi(uint32(id))
	if err != nil {
		return fmt.Errorf(steering, fmt.Sprintf("napi %d (%v)", id, err))
	}
	if !slices.Contains(l.queues, uint32(q)) {
		return fmt.Errorf(steering, fmt.Sprintf("rx queue %d (napi %d), not a bound one (%s)", q, id, rx.QueueList(l.queues)))
	}
	fmt.Fprintf(l.stderr, "unsplit packet: %d linear bytes on bound queue %d\n", n, q)
	if l.failLinear {
		return errors.New("received an unsplit packet (linear bytes, no devmem cmsg) on a bound queue but --fail-on-linear (-L) set: header split did not split this packet (ethtool -g IF: tcp-data-split on, hds-thresh 0)")
	}
	if err := l.consume(l.iov[:n]); err != nil {
		return err
	}
	l.st.Linear += uint64(n)
	l.st.Unsplit += uint64(n)
	return nil
}

// consume validates (or prints) the next stream bytes.
func (l *rxLoop) consume(b []byte) error {
	defer func() { l.off += uint64(len(b)) }()
	if l.seq == nil {
		_, err := l.stdout.Write(b)
		return err
	}
	i := l.seq.Verify(b, l.off)
	for ; i >= 0 && i < len(b); i++ {
		want := l.seq.At(l.off + uint64(i))
		if b[i] == want {
			continue
		}
		fmt.Fprintf(l.stderr, "Failed validation: expected=%d, actual=%d, index=%d\n", want, b[i], i)
		l.st.ValidationErrors++
		if l.st.ValidationErrors > maxValidationErrors {
			return fmt.Errorf("validation failed: more than %d bytes differ from the -v %d pattern (stream offset %d)", maxValidationErrors, l.seq.N(), l.off+uint64(i))
		}
	}
	_, err := l.stdout.WriteString("Validated buffer\n")
	return err
}

// release queues a token, returning the batch first when it is full.
func (l *rxLoop) release(token uint32) error {
	if l.tokens.Full() {
		if err := l.flushTokens(); err != nil {
			return err
		}
	}
	l.tokens.Add(token)
	l.st.Tokens++
	return nil
}

// flushTokens returns every queued token with SO_DEVMEM_DONTNEED, checking the count freed as the C
// tool does (it must equal what was asked).
func (l *rxLoop) flushTokens() error {
	if l.tokens.Count() == 0 {
		return nil
	}
	want := l.tokens.Count()
	freed, err := l.sys.Setsockopt(l.fd, unix.SOL_SOCKET, unix.SO_DEVMEM_DONTNEED, l.tokens.Option())
	l.st.DontneedCalls++
	l.tokens.Reset()
	if err != nil {
		return fmt.Errorf("SO_DEVMEM_DONTNEED: %w", err)
	}
	if freed != want {
		return fmt.Errorf("SO_DEVMEM_DONTNEED not enough tokens: freed %d of %d", freed, want)
	}
	return nil
}
