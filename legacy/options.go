// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package legacy is the kernel selftest's C ncdevmem, reimplemented: the same flags
// (getopt string "Lls:c:p:v:q:t:f:z:nb:"), the same defaults, stdout and exit codes, so that
// tools/testing/selftests/drivers/net/hw/devmem.py passes with this binary in the C tool's place.
// Additions live behind long flags only (--json, --dontneed-batch).
package legacy

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Options is the parsed command line of the C tool.
type Options struct {
	Listen     bool     // -l: RX server
	Server     string   // -s
	Client     string   // -c
	Port       string   // -p, kept as text: the C tool uses atoi
	Ifname     string   // -f
	StartQueue int      // -t, -1 unset
	NumQueues  int      // -q, -1 unset
	Validate   int64    // -v period, 0 = print the payload (atoll, as the C tool)
	TxChunk    int      // -z, 0 = one iovec per line
	FailLinear bool     // -L
	NoSetup    bool     // -n
	RxPageSize uint32   // -b (strtoul, base 0), 0 unset
	Extra      []string // positional arguments, reported and ignored

	// Long flags, beyond the C tool.
	JSON          string // --json FILE: a summary of the run
	DontneedBatch int    // --dontneed-batch N: tokens per SO_DEVMEM_DONTNEED (1 = the C tool's one by one)
}

// optstring is the C tool's getopt string; a letter followed by ':' takes an argument.
const optstring = "Lls:c:p:v:q:t:f:z:nb:"

// Parse parses args the way the C tool's getopt loop does: an unknown option or a missing option
// argument is reported on stderr and ignored, extra positional arguments are reported one per line
// and ignored, numbers are read with atoi semantics. It returns an error only for an invalid -b
// (the C tool exits 1 at once) and for bad long flags, which only this tool has.
func Parse(args []string, stderr io.Writer) (*Options, error) {
	o := &Options{StartQueue: -1, NumQueues: -1, DontneedBatch: 1}
	var extra []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			extra = append(extra, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "--") {
			name, val, hasVal := strings.Cut(a[2:], "=")
			if !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("option --%s requires an argument", name)
				}
				i++
				val = args[i]
			}
			if err := o.setLong(name, val); err != nil {
				return nil, err
			}
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			extra = append(extra, a) // GNU getopt permutes non-options to the end
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			k := strings.IndexByte(optstring, c)
			if k < 0 || c == ':' {
				fmt.Fprintf(stderr, "ncdevmem: invalid option -- '%c'\nunknown option: %c\n", c, c)
				continue
			}
			if k+1 < len(optstring) && optstring[k+1] == ':' {
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						fmt.Fprintf(stderr, "ncdevmem: option requires an argument -- '%c'\nunknown option: %c\n", c, c)
						break
					}
					i++
					val = args[i]
				}
				if err := o.setShort(c, val); err != nil {
					return nil, err
				}
				break
			}
			if err := o.setShort(c, ""); err != nil {
				return nil, err
			}
		}
	}
	o.Extra = extra
	return o, nil
}

func (o *Options) setShort(c byte, v string) error {
	switch c {
	case 'L':
		o.FailLinear = true
	case 'l':
		o.Listen = true
	case 'n':
		o.NoSetup = true
	case 's':
		o.Server = v
	case 'c':
		o.Client = v
	case 'p':
		o.Port = v
	case 'f':
		o.Ifname = v
	case 'v':
		o.Validate = atoll(v)
	case 'q':
		o.NumQueues = atoi(v)
	case 't':
		o.StartQueue = atoi(v)
	case 'z':
		o.TxChunk = atoi(v)
	case 'b':
		n, err := strconv.ParseUint(strings.TrimSpace(v), 0, 64)
		if err != nil || n > math.MaxUint32 {
			return fmt.Errorf("invalid rx_page_size: %s", v)
		}
		o.RxPageSize = uint32(n)
	}
	return nil
}

func (o *Options) setLong(name, v string) error {
	switch name {
	case "json":
		o.JSON = v
	case "dontneed-batch":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 128 {
			return fmt.Errorf("--dontneed-batch %q: want a number of tokens from 1 to 128 (the kernel's limit per call)", v)
		}
		o.DontneedBatch = n
	default:
		return fmt.Errorf("unknown option --%s (long options: --json FILE, --dontneed-batch N)", name)
	}
	return nil
}

// atoi mirrors C atoi: leading blanks, an optional sign, digits up to the first non-digit; 0 when
// there are none. The C tool relies on it (e.g. `-p 5201x` is port 5201).
func atoi(s string) int { return int(int32(atoll(s))) }

func atoll(s string) int64 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var n int64
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int64(s[i]-'0')
	}
	if neg {
		return -n
	}
	return n
}

// Mode is what the command line asks for.
type Mode int

// The C tool's three modes.
const (
	ModeProbe Mode = iota // neither -s nor -c: run the bind/header-split/channel checks
	ModeRX                // -l
	ModeTX                // no -l, with -s
)

func (m Mode) String() string {
	return [...]string{"probe", "rx", "tx"}[m]
}

// Mode returns the mode the options select.
func (o *Options) Mode() Mode {
	switch {
	case o.Server == "" && o.Client == "":
		return ModeProbe
	case o.Listen:
		return ModeRX
	default:
		return ModeTX
	}
}

// toolError is an error whose text is the C tool's, word for word (capitals included), because
// people and scripts grep for it.
type toolError string

func (e toolError) Error() string { return string(e) }

// ctool wraps err under the C tool's text, word for word.
func ctool(text string, err error) error { return &textError{text: text, err: err} }

type textError struct {
	text string
	err  error
}

func (e *textError) Error() string {
	if e.err == nil {
		return e.text
	}
	return e.text + ": " + e.err.Error()
}

func (e *textError) Unwrap() error { return e.err }

// The C tool's texts for queue selection.
const (
	errNoQueueCount toolError = "couldn't detect number of queues"
	errTooFewQueues toolError = "number of device queues is too low"
	errBothTQ       toolError = "Both -t and -q are required"
	errMissingT     toolError = "Missing -t argument"
	errMissingQ     toolError = "Missing -q argument"
)

// Queues resolves the RX queues as the C tool does, given the device's queue count
// (rx + combined channels). It returns the C tool's error texts.
func (o *Options) Queues(devQueues int) (start, num int, err error) {
	t, q := o.StartQueue, o.NumQueues
	if o.Mode() == ModeProbe {
		if t < 0 && q < 0 {
			if devQueues < 0 {
				return 0, 0, errNoQueueCount
			}
			if devQueues < 2 {
				return 0, 0, errTooFewQueues
			}
			return devQueues / 2, devQueues / 2, nil
		}
		if t < 0 || q < 0 {
			return 0, 0, errBothTQ
		}
		return t, q, nil
	}
	switch {
	case t < 0 && q < 0:
		// The C tool tests "< 2" first here, so a count it could not read (-1) says "too low".
		if devQueues < 2 {
			return 0, 0, errTooFewQueues
		}
		return devQueues - 1, 1, nil
	case t < 0:
		return 0, 0, errMissingT
	case q < 0:
		return 0, 0, errMissingQ
	}
	return t, q, nil
}
