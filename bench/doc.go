// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package bench runs one test's lifecycle on one host and orchestrates tests between hosts:
//
//   - Server (behind `ncdevmem server` and the embedded default) accepts control connections,
//     serves one client at a time and plays the role each test asks for: the target listens on a
//     data port, receives and validates; the source connects the flows and sends.
//   - Client (behind `ncdevmem run`) prepares both servers, starts the target and then the source,
//     collects progress and results, and turns them into report.Run values.
//   - A Datapath supplies each role's memory and engines: host memory (rx.Host, tx.Host), devmem
//     (rx.Devmem, tx.Devmem) and io_uring zcrx, listed by builtinDatapaths.
//   - The kernel reaches the datapaths through one config struct (devmemKernel, kernel.go) that a
//     Server hands each Setup; tests give the Server a simulator or a modelled NIC instead.
//
// A server's measurement window is a measurement (measure.go) run in phases: start and pin the
// workers, watch the control connection, open, loop, collect the side report, drain, finish
// (classify the failure and send the result). However a prepared test ends, the session then
// closes its datapath (restoring the NIC) and says how that went with restored (messages.go). The
// client's test runs in phases too: connect and handshake, prepare, start, collect (window and
// drain), wait for both servers' restored, between runs.
//
// Each role pins its workers kperf's way (SO_INCOMING_CPU + --pin-off, or explicit CPU lists) and
// samples /proc/stat, the flows' byte counters and the datapath's counters at the exact start and
// end of its measurement window; TCP_INFO is read per flow at the end.
package bench
