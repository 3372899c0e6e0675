// SPDX-License-Identifier: MIT

package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"
)

// csvSides and csvRoles name the per-side and per-role column groups.
var (
	csvSides = []string{"src", "dst"}
	csvRoles = []string{"net", "app"}
	csvTCP   = []string{"retrans", "reord", "ce", "rtt_us", "rttvar_us", "snd_wnd", "cwnd"}
	csvCPU   = []string{"usr", "sys", "idle", "iow", "irq", "sirq"}
)

// CSVHeader returns the column names WriteCSV writes in its first row.
func CSVHeader() []string {
	h := []string{"run", "start", "duration_sec", "flows", "tx_gbps", "rx_gbps", "tx_bytes", "rx_bytes"}
	for _, side := range csvSides {
		for _, f := range csvTCP {
			h = append(h, side+"_"+f)
		}
		for _, role := range csvRoles {
			for _, f := range csvCPU {
				h = append(h, side+"_"+role+"_"+f)
			}
		}
		h = append(h, side+"_cpu_s_per_gb")
	}
	return h
}

// WriteCSV writes kperf's machine format idea (client.c dump_result_machine) as real CSV: a header
// row, then one row per run with the run's throughput, each side's TCP_INFO over its flows (retrans,
// reord, ce and snd_wnd summed; rtt, rttvar and cwnd averaged, as kperf does), each side's mean net
// and app CPU split in percent, and each side's busy CPU-seconds per GB moved. A cell is empty when
// the run has no such figure (no TCP_INFO, no CPU of that role).
func WriteCSV(w io.Writer, r *Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader()); err != nil {
		return fmt.Errorf("write CSV report: %w", err)
	}
	for i := range r.Runs {
		if err := cw.Write(csvRow(r, &r.Runs[i])); err != nil {
			return fmt.Errorf("write CSV report: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV report: %w", err)
	}
	return nil
}

func fmtF(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
func fmtU(v uint64) string            { return strconv.FormatUint(v, 10) }

func csvRow(r *Result, run *Run) []string {
	start := ""
	if !run.Start.IsZero() {
		start = run.Start.UTC().Format(time.RFC3339Nano)
	}
	flows := r.Config.Flows
	if flows == 0 {
		flows = len(run.Source.Flows)
	}
	row := []string{strconv.Itoa(run.Index), start, fmtF(run.Duration, 6), strconv.Itoa(flows),
		fmtF(run.TxGbps(), 3), fmtF(run.RxGbps(), 3), fmtU(run.TxBytes()), fmtU(run.RxBytes())}
	for _, s := range []*Side{&run.Source, &run.Target} {
		row = append(row, tcpCells(s)...)
		for _, role := range csvRoles {
			avg, ok := s.RoleAvg(role)
			for _, v := range []float64{avg.Usr, avg.Sys, avg.Idle, avg.Iow, avg.Irq, avg.Sirq} {
				if ok {
					row = append(row, fmtF(v, 2))
				} else {
					row = append(row, "")
				}
			}
		}
		if c := CPUPerGB(*s, run.Duration, GB(s.TotalBytes())); c != nil {
			row = append(row, fmtF(c["total"], 4))
		} else {
			row = append(row, "")
		}
	}
	return row
}

// tcpCells sums or averages TCP_INFO over the side's flows, kperf's way.
func tcpCells(s *Side) []string {
	var retrans, reord, ce, swnd, rtt, rttvar, cwnd uint64
	n := uint64(0)
	for i := range s.Flows {
		t := s.Flows[i].TCP
		if t == nil {
			continue
		}
		n++
		retrans += uint64(t.Retrans)
		reord += uint64(t.Reord)
		ce += uint64(t.DeliveredCE)
		swnd += uint64(t.SndWnd)
		rtt += uint64(t.RTTus)
		rttvar += uint64(t.RTTVarUs)
		cwnd += uint64(t.Cwnd)
	}
	if n == 0 {
		return make([]string, len(csvTCP))
	}
	return []string{fmtU(retrans), fmtU(reord), fmtU(ce), fmtU(rtt / n), fmtU(rttvar / n), fmtU(swnd), fmtU(cwnd / n)}
}
