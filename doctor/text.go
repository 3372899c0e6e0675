// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package doctor

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteText prints the report as the checklist a person reads: one line per check, the fix commands
// under failing lines, the RX queues, then the two verdicts.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ncdevmem doctor: %s (ifindex %d), kernel %s\n\n", r.Ifname, r.Ifindex, r.Kernel)
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Title))
	}
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "  %-6s %-*s  %-5s  %s\n", "["+string(c.Status)+"]", width, c.Title, gates(c), c.Detail)
		for _, f := range c.Fix {
			fmt.Fprintf(&b, "         fix: %s\n", f)
		}
	}
	if len(r.Queues) > 0 {
		b.WriteString("\nRX queues:\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  queue\tnapi\tirq\tcpus\tholder\n")
		for _, q := range r.Queues {
			holder := q.Holder
			if q.AFXDP {
				holder = strings.TrimPrefix(holder+", AF_XDP", ", ")
			}
			if q.Leased {
				holder = strings.TrimPrefix(holder+", leased", ", ")
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", q.ID, dash(q.NapiID), dash(q.IRQ), orDash(q.CPUs), orDash(holder))
		}
		tw.Flush()
	}
	b.WriteString("\n")
	verdict(&b, "RX", r.RX)
	verdict(&b, "TX", r.TX)
	if r.ZCRX != nil {
		verdict(&b, "ZCRX", *r.ZCRX)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func gates(c Check) string {
	switch {
	case c.RX && c.TX:
		return "rx,tx"
	case c.RX:
		return "rx"
	case c.TX:
		return "tx"
	case c.ZC:
		return "zcrx"
	}
	return "-"
}

func verdict(b *strings.Builder, dir string, v Verdict) {
	if v.Ready {
		fmt.Fprintf(b, "%s: ready\n", dir)
		for _, f := range v.Fixes {
			fmt.Fprintf(b, "  then apply (ncdevmem's setup does the ethtool -G ones unless --no-setup): %s\n", f)
		}
		return
	}
	fmt.Fprintf(b, "%s: not ready\n", dir)
	for _, r := range v.Reasons {
		fmt.Fprintf(b, "  - %s\n", r)
	}
}

func dash(v uint32) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatUint(uint64(v), 10)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
