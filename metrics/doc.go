// SPDX-License-Identifier: MIT

// Package metrics flattens one measured run (report.Run) into named figures, the vocabulary shared
// by `ncdevmem run --expect`, `ncdevmem compare` and the Go benchmark format output.
//
// A figure is absent, never zero, when the run did not measure it (a role without CPUs, a side
// without devmem counters, a side that moved no bytes), so a gate on it fails instead of passing on
// a made-up value.
//
// Names ("<side>" is tx for the source host and rx for the target host; percentages are 0..100):
//
//	name                          unit   meaning
//	gbps                          Gbps   total received: bytes of the rx flows on both hosts over
//	                                     the longest of their windows (report.Run.RxGbps); the sent
//	                                     total when no host reported a received flow
//	tx.gbps                       Gbps   the same over every flow the hosts sent (report.Run.TxGbps)
//	rx.gbps                       Gbps   the same over every flow the hosts received
//	flow<N>.gbps                  Gbps   flow with ID N, as received (as sent when unreceived)
//	<side>.<role>.<field>         %      mean over the side's CPUs of that role of one field;
//	                                     role net (softirq CPUs), app (worker CPUs) or all (every
//	                                     listed CPU; a "net+app" CPU counts in net, app and all once);
//	                                     field usr, sys, idle, iow, irq, sirq or steal
//	<side>.cpu_s_per_gb.<role>    s/GB   busy CPU-seconds (not idle, not iowait) of the role's CPUs
//	                                     per GB (1e9 bytes) the side's flows moved, over the run's
//	                                     window (report.CPUPerGB); role net or app
//	<side>.cpu_s_per_gb.total     s/GB   the same over every listed CPU of the side, each once
//	retrans                       count  sum of tcpi_total_retrans over every flow on both hosts
//	zc.sends                      count  MSG_ZEROCOPY sendmsg calls, summed over flows
//	zc.completions                count  MSG_ZEROCOPY completions, summed over flows
//	zc.copied                     count  completions the kernel had to copy after all
//	devmem.<counter>              *      devmem counter summed over the hosts that reported one
//	<side>.devmem.<counter>       *      the same for one host, present only when both hosts
//	                                     reported devmem counters (devmem RX and TX together)
//
//	zcrx.<counter>                *      io_uring zcrx counters of the target (report.Zcrx): bytes,
//	                                     completions, avg_completion (B), refill_batches,
//	                                     refill_entries, refill_stalls, rearms, and copy_count,
//	                                     copy_bytes only when the kernel counts copy fallbacks
//
// Devmem counters: dmabuf_bytes and linear_bytes (B), frags, page_aligned_frags, tokens,
// dontneed_calls, short_dontneed (count), and the window deltas qstats.<name> and page_pool.<name>
// named as the kernel's netdev family names them (count, or B for names ending in "bytes").
package metrics
