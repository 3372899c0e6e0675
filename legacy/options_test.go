// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package legacy

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Every invocation of ncdevmem by devmem.py / devmem_lib.py / nk_devmem.py (devmem-uapi.md §1.4),
// with what the C tool's getopt loop makes of it.
func TestParseSelftestInvocations(t *testing.T) {
	base := func(f func(o *Options)) *Options {
		o := &Options{StartQueue: -1, NumQueues: -1, DontneedBatch: 1}
		f(o)
		return o
	}
	tests := []struct {
		name string
		args string
		want *Options
		mode Mode
	}{
		{"require_devmem probe", "-f eth1", base(func(o *Options) { o.Ifname = "eth1" }), ModeProbe},
		{"require_devmem large niov", "-f eth1 -b 16384", base(func(o *Options) { o.Ifname = "eth1"; o.RxPageSize = 16384 }), ModeProbe},
		{"check_rx", "-l -f eth1 -s 2001:db8::1 -p 5201 -c 2001:db8::2 -v 7",
			base(func(o *Options) {
				o.Listen, o.Ifname, o.Server, o.Port, o.Client, o.Validate = true, "eth1", "2001:db8::1", "5201", "2001:db8::2", 7
			}), ModeRX},
		{"check_tx", "-f eth1 -s 192.0.2.2 -p 5201", base(func(o *Options) { o.Ifname, o.Server, o.Port = "eth1", "192.0.2.2", "5201" }), ModeTX},
		{"check_tx_chunks", "-f eth1 -s 192.0.2.2 -p 5201 -z 3",
			base(func(o *Options) { o.Ifname, o.Server, o.Port, o.TxChunk = "eth1", "192.0.2.2", "5201", 3 }), ModeTX},
		{"check_rx_hds", "-l -f eth1 -s 192.0.2.1 -p 5201 -L",
			base(func(o *Options) {
				o.Listen, o.Ifname, o.Server, o.Port, o.FailLinear = true, "eth1", "192.0.2.1", "5201", true
			}), ModeRX},
		{"check_rx_large_niov", "-l -f eth1 -s 192.0.2.1 -p 5201 -c 192.0.2.2 -v 7 -b 16384",
			base(func(o *Options) {
				o.Listen, o.Ifname, o.Server, o.Port, o.Client, o.Validate, o.RxPageSize = true, "eth1", "192.0.2.1", "5201", "192.0.2.2", 7, 16384
			}), ModeRX},
		{"netkit rx", "-l -f nk1 -s 2001:db8::5 -p 5201 -t 3 -q 1 -n -v 7 -L",
			base(func(o *Options) {
				o.Listen, o.Ifname, o.Server, o.Port, o.StartQueue, o.NumQueues, o.NoSetup, o.Validate, o.FailLinear = true, "nk1", "2001:db8::5", "5201", 3, 1, true, 7, true
			}), ModeRX},
		{"netkit tx", "-f nk1 -s 2001:db8::6 -p 5201 -t 0 -q 1 -n -z 3",
			base(func(o *Options) {
				o.Ifname, o.Server, o.Port, o.StartQueue, o.NumQueues, o.NoSetup, o.TxChunk = "nk1", "2001:db8::6", "5201", 0, 1, true, 3
			}), ModeTX},
		{"6.13 check_rx", "-l -f eth1 -s 2001:db8::1 -p 5201", base(func(o *Options) { o.Listen, o.Ifname, o.Server, o.Port = true, "eth1", "2001:db8::1", "5201" }), ModeRX},
		{"clustered and attached", "-lv7 -feth1 -s192.0.2.1 -p5201", base(func(o *Options) {
			o.Listen, o.Validate, o.Ifname, o.Server, o.Port = true, 7, "eth1", "192.0.2.1", "5201"
		}), ModeRX},
		{"long flags", "-l -f eth1 -s 192.0.2.1 -p 1 --json /tmp/x.json --dontneed-batch=128",
			base(func(o *Options) {
				o.Listen, o.Ifname, o.Server, o.Port, o.JSON, o.DontneedBatch = true, "eth1", "192.0.2.1", "1", "/tmp/x.json", 128
			}), ModeRX},
		{"client only is TX", "-f eth1 -c 192.0.2.2 -p 5", base(func(o *Options) { o.Ifname, o.Client, o.Port = "eth1", "192.0.2.2", "5" }), ModeTX},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, err := Parse(strings.Fields(tt.args), &stderr)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.args, diff)
			}
			if got.Mode() != tt.mode {
				t.Errorf("mode = %v, want %v", got.Mode(), tt.mode)
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr = %q, want nothing", stderr.String())
			}
		})
	}
}

func TestParseUnknownAndExtra(t *testing.T) {
	var stderr bytes.Buffer
	o, err := Parse([]string{"-x", "-f", "eth0", "stray", "-Q"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.Ifname != "eth0" || len(o.Extra) != 1 || o.Extra[0] != "stray" {
		t.Errorf("ifname = %q", o.Ifname)
	}
	want := "ncdevmem: invalid option -- 'x'\nunknown option: x\nncdevmem: invalid option -- 'Q'\nunknown option: Q\n"
	if stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
	stderr.Reset()
	o, err = Parse([]string{"-l", "-f"}, &stderr)
	if err != nil || o.Ifname != "" || !o.Listen {
		t.Fatalf("missing argument: %+v, %v", o, err)
	}
	if want := "ncdevmem: option requires an argument -- 'f'\nunknown option: f\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
	if o, err := Parse([]string{"-b", "0x4000"}, &stderr); err != nil || o.RxPageSize != 16384 {
		t.Errorf("-b 0x4000: %v, %v", o, err)
	}
	for _, bad := range [][]string{{"-b", "4294967296"}, {"-b", "x"}, {"--json"}, {"--dontneed-batch", "0"}, {"--dontneed-batch", "129"}, {"--bogus=1"}} {
		if _, err := Parse(bad, &stderr); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func TestAtoi(t *testing.T) {
	for in, want := range map[string]int{"7": 7, " 42": 42, "5201x": 5201, "x": 0, "-3": -3, "+9": 9, "": 0} {
		if got := atoi(in); got != want {
			t.Errorf("atoi(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestQueues(t *testing.T) {
	tests := []struct {
		args       string
		dev        int
		start, num int
		err        string
	}{
		{"-f e", 8, 4, 4, ""},
		{"-f e", 1, 0, 0, "number of device queues is too low"},
		{"-f e", -1, 0, 0, "couldn't detect number of queues"},
		{"-f e -t 2", 8, 0, 0, "Both -t and -q are required"},
		{"-f e -t 2 -q 3", 8, 2, 3, ""},
		{"-l -f e -s a -p 1", 8, 7, 1, ""},
		{"-l -f e -s a -p 1", 1, 0, 0, "number of device queues is too low"},
		{"-l -f e -s a -p 1", -1, 0, 0, "number of device queues is too low"}, // the C tool checks < 2 first
		{"-l -f e -s a -p 1 -q 2", 8, 0, 0, "Missing -t argument"},
		{"-l -f e -s a -p 1 -t 2", 8, 0, 0, "Missing -q argument"},
		{"-f e -s a -p 1 -t 0 -q 1", 8, 0, 1, ""},
	}
	for _, tt := range tests {
		o, err := Parse(strings.Fields(tt.args), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		s, n, err := o.Queues(tt.dev)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q dev=%d: err = %v, want %q", tt.args, tt.dev, err, tt.err)
			}
			continue
		}
		if err != nil || s != tt.start || n != tt.num {
			t.Errorf("%q dev=%d: %d,%d,%v want %d,%d", tt.args, tt.dev, s, n, err, tt.start, tt.num)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("-l -f eth1 -s ::1 -p 5201 -c ::2 -v 7")
	f.Add("-lv7 -feth1 --json=x")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := Parse(strings.Fields(s), &bytes.Buffer{})
		if err != nil {
			return
		}
		_ = o.Mode().String()
		_, _, _ = o.Queues(4)
	})
}
