// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseValidate(t *testing.T) {
	for in, want := range map[string]int{"on": 1, "off": 0, "sample:1": 1, "sample:7": 7} {
		v, err := ParseValidate(in)
		if err != nil || v.Every != want {
			t.Errorf("ParseValidate(%q) = %v, %v; want %d", in, v, err, want)
		}
	}
	for _, in := range []string{"", "sample:", "sample:0", "sample:-1", "maybe"} {
		if _, err := ParseValidate(in); err == nil {
			t.Errorf("ParseValidate(%q) succeeded", in)
		}
	}
	v := ValidateMode{Every: 3}
	if !v.Check(0) || v.Check(1) || !v.Check(3) || v.String() != "sample:3" {
		t.Errorf("sample:3 checks wrong reads")
	}
}

func TestParseList(t *testing.T) {
	got, err := ParseList("0-3,8,10-11")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]int{0, 1, 2, 3, 8, 10, 11}, got); d != "" {
		t.Error(d)
	}
	for _, in := range []string{"a", "3-1", "1,1", "-1", "1-", "0-99999"} {
		if _, err := ParseList(in); err == nil {
			t.Errorf("ParseList(%q) succeeded", in)
		}
	}
}

func TestSpecCheck(t *testing.T) {
	s := DefaultSpec()
	if err := s.Check(); err != nil {
		t.Fatalf("default spec: %v", err)
	}
	cases := map[string]func(*TestSpec){
		"--flows 0":                       func(s *TestSpec) { s.Flows = 0 },
		"--time":                          func(s *TestSpec) { s.Duration = 0 },
		"--write-size 0":                  func(s *TestSpec) { s.WriteSize = 0 },
		"--read-size 134217729":           func(s *TestSpec) { s.ReadSize = MaxIOSize + 1 },
		"cannot be validated":             func(s *TestSpec) { s.MsgTrunc = true },
		"add -f IFNAME":                   func(s *TestSpec) { s.DevmemRX = true },
		"--queues only applies":           func(s *TestSpec) { s.Queues = []int{1} },
		"give one":                        func(s *TestSpec) { s.DevmemRX, s.Ifname, s.Queues, s.NumRXQueues = true, "eth1", []int{1}, 2 },
		"implied by --devmem-tx":          func(s *TestSpec) { s.DevmemTX, s.Ifname, s.MsgZerocopy = true, "eth1", true },
		"--cpu-src/--cpu-dst: negative":   func(s *TestSpec) { s.CPUsDst = []int{-1} },
		"--dmabuf-size -1":                func(s *TestSpec) { s.DevmemRX, s.Ifname, s.DmabufSize = true, "eth1", -1 },
		"--interval -1s: must not be":     func(s *TestSpec) { s.Interval = -time.Second },
		"--num-rx-queues -1: must not be": func(s *TestSpec) { s.DevmemRX, s.Ifname, s.NumRXQueues = true, "eth1", -1 },
	}
	for want, mod := range cases {
		s := DefaultSpec()
		mod(&s)
		err := s.Check()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Check() = %v", want, err)
		}
	}
}

func TestSpecJSONRoundTrip(t *testing.T) {
	s := DefaultSpec()
	s.Queues, s.DevmemRX, s.Ifname, s.PaceBytes = []int{14, 15}, true, "eth1", 1e9
	b, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	var got TestSpec
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(s, got); d != "" {
		t.Error(d)
	}
}

// FuzzPrepare drives what a server does with a prepare message from the network: decode it and
// check the spec. Nothing may panic, and an accepted spec must be within the limits.
func FuzzPrepare(f *testing.F) {
	f.Add([]byte(`{"role":"target","spec":{"flows":1,"duration_ns":5000000000,"write_size":65536,"read_size":65536,"validate":{"every":1}}}`))
	f.Add([]byte(`{"role":"source","spec":{"flows":1024,"duration_ns":1,"write_size":134217728,"read_size":1,"queues":[-1],"devmem_rx":true}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p prepareMsg
		if json.Unmarshal(b, &p) != nil {
			return
		}
		if p.Spec.Check() != nil {
			return
		}
		s := p.Spec
		if s.Flows < 1 || s.Flows > MaxFlows || s.ReadSize < 1 || s.WriteSize < 1 || s.Duration <= 0 ||
			int64(s.Flows)*int64(max(s.ReadSize, s.WriteSize+255)) > MaxBuffers {
			t.Fatalf("accepted %+v", s)
		}
		_ = s.Config()
	})
}
