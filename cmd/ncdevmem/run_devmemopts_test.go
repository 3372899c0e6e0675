// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"context"
	"strings"
	"testing"
)

func TestRunDevmemOptsFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--rx-page-size", "16K"}, "--rx-page-size only applies to devmem RX"},
		{[]string{"run", "--devmem-rx", "-f", "eth1", "--rx-page-size", "12K"}, "--rx-page-size 12288: want a power of two"},
		{[]string{"run", "--devmem-rx", "-f", "eth1", "--rx-page-size", "4G"}, "--rx-page-size 4294967296: at most"},
		{[]string{"run", "--devmem-rx", "-f", "eth1", "--rx-page-size", "big"}, `--rx-page-size "big"`},
		{[]string{"run", "--devmem-rx", "-f", "eth1", "--rss-context", "maybe"}, `--rss-context "maybe": want auto, on or off`},
		{[]string{"run", "--devmem-rx", "-f", "eth1", "--rss-context", "on", "--no-setup"}, "drop --no-setup"},
		{[]string{"run", "--rss-context", "off"}, "--rss-context only applies to devmem RX"},
	} {
		code, _, stderr := runMain(t, context.Background(), tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
	o := &runOptions{flows: 2, duration: "1s", writeSize: "64K", readSize: "64K", validate: "on", runs: 1,
		devmemRX: true, ifname: "eth1", rxPageSize: "16K", rssContext: "off"}
	s, err := o.spec()
	if err != nil {
		t.Fatal(err)
	}
	if s.RxPageSize != 16384 || s.RSSContext != "off" {
		t.Errorf("spec: rx page size %d, rss context %q", s.RxPageSize, s.RSSContext)
	}
	o.rxPageSize, o.rssContext = "", "auto"
	if s, err = o.spec(); err != nil || s.RxPageSize != 0 || s.RSSContext != "" {
		t.Errorf("defaults: rx page size %d, rss context %q, %v", s.RxPageSize, s.RSSContext, err)
	}
}
