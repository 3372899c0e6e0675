// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bind

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/testnet"
	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Host-kernel tier: the real netdev family inside a throwaway namespace with a veth pair.

// withClient runs fn with a netdev client inside ns, failing t on fn's error. fn runs on Do's
// goroutine, so it returns its fatal errors instead of calling t.Fatal.
func withClient(t *testing.T, ns *testnet.NS, fn func(c *Client) error) {
	t.Helper()
	ns.Run(t, func() error {
		c, err := Dial()
		if err != nil {
			return err
		}
		defer c.Close()
		return fn(c)
	})
}

func TestRootFamilyAndOps(t *testing.T) {
	testnet.Require(t)
	ns := testnet.Single(t)
	withClient(t, ns, func(c *Client) error {
		f := c.Family()
		if f.ID == 0 || f.Version != 1 {
			t.Errorf("family = id %d version %d, want a non-zero id and version 1", f.ID, f.Version)
		}
		// netdev has had these since Linux 6.3/6.12; the host tier runs on 6.12 or newer.
		for _, op := range []string{"dev-get", "queue-get", "napi-get", "qstats-get", "page-pool-get", "bind-rx"} {
			if !c.Has(op) {
				t.Errorf("op %s missing from %v", op, f.Ops)
			}
		}
		if o, ok := f.op("bind-rx"); ok && !o.Admin() {
			t.Errorf("bind-rx flags %#x: not an admin op", o.Flags)
		}
		if o, ok := f.op("queue-get"); ok && (!o.Do() || !o.Dump()) {
			t.Errorf("queue-get flags %#x: want do and dump", o.Flags)
		}
		if _, ok := f.Groups["mgmt"]; !ok {
			t.Errorf("multicast groups %v lack mgmt", f.Groups)
		}
		t.Logf("netdev family id %d, ops %v", f.ID, f.Ops)
		return nil
	})
}

func TestRootDumps(t *testing.T) {
	testnet.Require(t)
	ns := testnet.Single(t)
	veth := ns.Ifindex(t, ns.Link)
	lo := ns.Ifindex(t, "lo")
	withClient(t, ns, func(c *Client) error {
		devs, err := c.Devs()
		if err != nil {
			return err
		}
		if len(devs) != 2 {
			t.Errorf("dev-get dump: %d devices, want lo and the veth", len(devs))
		}
		d, err := c.Dev(veth)
		if err != nil {
			return err
		}
		if d.Ifindex != veth {
			t.Errorf("dev-get %d answered for %d", veth, d.Ifindex)
		}
		if _, err := c.Dev(9999); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("dev-get 9999: %v, want ErrNotExist", err)
		}
		for _, idx := range []int{veth, lo} {
			qs, err := c.Queues(idx)
			if err != nil {
				return err
			}
			var rx, tx int
			for _, q := range qs {
				if q.Ifindex != idx {
					t.Errorf("queue-get %d: queue %+v of another device", idx, q)
				}
				if q.Held() {
					t.Errorf("queue %+v held by a memory provider in a fresh namespace", q)
				}
				switch q.Type {
				case QueueRX:
					rx++
				case QueueTX:
					tx++
				}
			}
			if rx < 1 || tx < 1 {
				t.Errorf("ifindex %d: %d RX and %d TX queues, want at least one of each: %+v", idx, rx, tx, qs)
			}
			if _, err := c.Napis(idx); err != nil {
				return err
			}
			// veth and lo implement no queue statistics: 6.18 refuses a dump filtered by their
			// ifindex with EOPNOTSUPP at the ifindex attribute.
			if qst, err := c.QstatsQueues(idx); !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("qstats per queue of %d: %d replies, %v; want ErrUnsupported (veth/lo keep no qstats)", idx, len(qst), err)
			} else {
				t.Logf("qstats per queue: %v", err)
			}
			if _, err := c.QstatsDev(idx); !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("qstats of %d: %v, want ErrUnsupported", idx, err)
			}
			if pp, err := c.PagePools(idx); err != nil || len(pp) != 0 {
				t.Errorf("page pools of %d: %v, %v; want none", idx, pp, err)
			}
			_, err = c.PagePoolStats(idx)
			if c.Has("page-pool-stats-get") && err != nil {
				t.Errorf("page-pool-stats-get: %v", err)
			}
			if !c.Has("page-pool-stats-get") && !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("page-pool-stats-get without the op: %v, want ErrUnsupported", err)
			}
		}
		return nil
	})
}

// memfd returns a file that is not a dma-buf: this host has no dma-buf exporter, and a memfd can
// never become a binding, so these tests cannot change the device.
func memfd(t *testing.T) int {
	t.Helper()
	fd, err := unix.MemfdCreate("ncdevmem-bind-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestRootBindRefusedOnVeth(t *testing.T) {
	testnet.Require(t)
	ns := testnet.Single(t)
	veth := ns.Ifindex(t, ns.Link)
	lo := ns.Ifindex(t, "lo")
	fd := memfd(t)
	withClient(t, ns, func(c *Client) error {
		for _, idx := range []int{veth, lo} {
			b, err := BindRX(idx, []uint32{0}, fd)
			if err == nil {
				b.Close()
				return fmt.Errorf("bind-rx of a memfd on ifindex %d succeeded", idx)
			}
			var e *Error
			if !errors.As(err, &e) {
				return fmt.Errorf("bind-rx: %T %v, want *Error", err, err)
			}
			t.Logf("bind-rx ifindex %d memfd: errno %d (%v), extack %q, offset %d, attr %q: %v", idx, e.Errno, e.Errno, e.Message, e.Offset, e.Attr, err)
			checkTranslated(t, e)
			// 6.18 checks the device before the fd: EOPNOTSUPP at the ifindex attribute.
			// 6.12 checks the fd first: EBADF or EINVAL. Anything else is new and must be looked at.
			switch e.Errno {
			case unix.EOPNOTSUPP:
				if e.Attr != "ifindex" || !strings.Contains(e.Advice, "queue management API") {
					t.Errorf("EOPNOTSUPP not translated as a driver without the queue API: %v", err)
				}
				if !errors.Is(err, errors.ErrUnsupported) {
					t.Errorf("errors.Is(%v, ErrUnsupported) = false", err)
				}
			case unix.EBADF, unix.EINVAL:
				if !strings.Contains(e.Advice, "not a dma-buf") {
					t.Errorf("%v not translated as a bad fd: %v", e.Errno, err)
				}
			default:
				t.Errorf("bind-rx on a veth answered %v, which no row of the table expects", e.Errno)
			}

			b, err = BindTX(idx, fd)
			if !c.Has("bind-tx") {
				if !errors.As(err, &e) || !strings.Contains(e.Advice, "6.15") {
					t.Errorf("bind-tx without the op: %v, want advice naming Linux 6.15", err)
				}
				continue
			}
			if err == nil {
				b.Close()
				return fmt.Errorf("bind-tx of a memfd on ifindex %d succeeded", idx)
			}
			if !errors.As(err, &e) {
				return fmt.Errorf("bind-tx: %T %v, want *Error", err, err)
			}
			t.Logf("bind-tx ifindex %d memfd: errno %d (%v), extack %q, offset %d: %v", idx, e.Errno, e.Errno, e.Message, e.Offset, err)
			checkTranslated(t, e)
			if e.Errno != unix.EOPNOTSUPP || !strings.Contains(e.Advice, "devmem TX") {
				t.Errorf("bind-tx on a veth: %v, want EOPNOTSUPP translated as no devmem TX", err)
			}
		}

		// A queue far out of range: on kernels that check the device first this is still the
		// driver refusal; the point is that nothing answers with a bare errno.
		if _, err := BindRX(veth, []uint32{4000}, fd); err == nil {
			return errors.New("bind-rx queue 4000 succeeded")
		} else {
			var e *Error
			if errors.As(err, &e) {
				checkTranslated(t, e)
			}
			t.Logf("bind-rx queue 4000: %v", err)
		}
		// Unknown device.
		_, err := BindRX(9999, []uint32{0}, fd)
		var e *Error
		if !errors.As(err, &e) || e.Errno != unix.ENODEV || !errors.Is(err, os.ErrNotExist) || !strings.Contains(e.Advice, "namespace") {
			t.Errorf("bind-rx ifindex 9999: %v, want ENODEV with namespace advice", err)
		}
		return nil
	})
}

// checkTranslated fails when a refusal would reach the user as the bare errno text.
func checkTranslated(t *testing.T, e *Error) {
	t.Helper()
	if e.Advice == "" {
		t.Errorf("%v: no advice", e)
	}
	if s := e.Error(); s == e.Errno.Error() || !strings.HasPrefix(s, e.Op+" ") {
		t.Errorf("error text %q is not translated", s)
	}
}

// TestRootMissingAttr sends bind-rx requests the bind package itself never builds (an attribute
// left out, an empty queue nest) to prove the kernel's NLMSGERR_ATTR_MISS_TYPE/MISS_NEST survive
// the trip: mdlayher/netlink drops them.
func TestRootMissingAttr(t *testing.T) {
	testnet.Require(t)
	ns := testnet.Single(t)
	veth := ns.Ifindex(t, ns.Link)
	fd := memfd(t)
	ns.Run(t, func() error {
		for _, tc := range []struct {
			name  string
			enc   func(ae *netlink.AttributeEncoder)
			want  string
			first bool
		}{
			{"no fd", func(ae *netlink.AttributeEncoder) {
				ae.Uint32(uapi.NETDEV_A_DMABUF_IFINDEX, uint32(veth))
			}, "fd", true},
			{"empty queue nest", func(ae *netlink.AttributeEncoder) {
				ae.Uint32(uapi.NETDEV_A_DMABUF_IFINDEX, uint32(veth))
				ae.Uint32(uapi.NETDEV_A_DMABUF_FD, uint32(fd))
				ae.Nested(uapi.NETDEV_A_DMABUF_QUEUES, func(*netlink.AttributeEncoder) error { return nil })
			}, "queues[0].id", false},
		} {
			ae := netlink.NewAttributeEncoder()
			tc.enc(ae)
			attrs, err := ae.Encode()
			if err != nil {
				return err
			}
			r := &request{cmd: uapi.NETDEV_CMD_BIND_RX, ifindex: veth, queues: []uint32{0}, fd: fd, attrs: attrs}
			_, err = doBind(dialTransport, r)
			var e *Error
			if !errors.As(err, &e) {
				return fmt.Errorf("%s: %v, want *Error", tc.name, err)
			}
			t.Logf("%s: %v", tc.name, err)
			if e.MissingAttr == tc.want {
				if e.Errno != unix.EINVAL || !strings.Contains(e.Advice, "bug in ncdevmem") {
					t.Errorf("%s: %v, want EINVAL blamed on ncdevmem", tc.name, err)
				}
				continue
			}
			// A kernel that checks the device before the queue nests refuses veth first.
			if tc.first || e.Errno != unix.EOPNOTSUPP {
				t.Errorf("%s: missing attribute %q, want %q (%v)", tc.name, e.MissingAttr, tc.want, err)
			}
		}
		return nil
	})
}
