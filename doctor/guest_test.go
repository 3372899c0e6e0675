// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package doctor_test

import (
	"bytes"
	"os/exec"
	"slices"
	"testing"

	"github.com/devmemtcp/ncdevmem/doctor"
	"github.com/devmemtcp/ncdevmem/guesttest"
)

// Guest-kernel tier (scripts/vm/run-tests.sh with "doctor" in GUEST_PKGS): the doctor on devices this
// host lacks. netdevsim (7.x) has header split, channels and a queue API but no DMA device, no ntuple
// and (Debian's 7.3.4) no RSS ioctls; virtio-net has one channel and rings without header split; both
// guests have a real udmabuf.
func TestGuestDoctor(t *testing.T) {
	guesttest.Require(t)
	type want map[string]doctor.Status
	cases := map[string]want{}
	for _, dev := range guesttest.VirtioNICs(t) {
		cases[dev] = want{"link": doctor.StatusOK, "udmabuf": doctor.StatusOK, "ntuple": doctor.StatusFail, "tcp-data-split": doctor.StatusFail}
	}
	if guesttest.KernelRelease(t).AtLeast(7, 0) {
		nsim := guesttest.NewNetdevsim(t, 13, 1, 4)
		cases[nsim.Ports[0]] = want{
			"link": doctor.StatusOK, "udmabuf": doctor.StatusOK, "channels": doctor.StatusOK, "queues": doctor.StatusOK,
			"ntuple": doctor.StatusFail, "rss": doctor.StatusFail, "bind-rx-probe": doctor.StatusFail, "bind-tx-probe": doctor.StatusFail,
		}
	}
	for dev, w := range cases {
		if out, err := exec.Command("/usr/sbin/ip", "link", "set", dev, "up").CombinedOutput(); err != nil {
			t.Fatalf("ip link set %s up: %v: %s", dev, err, out)
		}
		l := doctor.Live()
		r, err := doctor.Run(l, dev)
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		var text bytes.Buffer
		doctor.WriteText(&text, r)
		t.Logf("\n%s", text.String())
		if r.RX.Ready {
			t.Errorf("%s judged ready for devmem RX", dev)
		}
		for id, st := range w {
			i := slices.IndexFunc(r.Checks, func(c doctor.Check) bool { return c.ID == id })
			if i < 0 {
				t.Errorf("%s: no check %s", dev, id)
				continue
			}
			if c := r.Checks[i]; c.Status != st {
				t.Errorf("%s: %s is %s (%s), want %s", dev, id, c.Status, c.Detail, st)
			}
		}
		if r.Facts.Udmabuf == nil || !r.Facts.Udmabuf.Present || r.Facts.Udmabuf.SizeLimitMB == 0 {
			t.Errorf("%s: udmabuf facts %+v", dev, r.Facts.Udmabuf)
		}
	}
}
