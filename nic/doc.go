// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package nic prepares a NIC for devmem TCP and puts it back: header split (tcp-data-split on,
// hds-thresh 0), RSS kept off the devmem queues (an RSS context over them when the driver has
// contexts, else the main indirection table over the other queues), and one ntuple rule per flow.
//
// It is the upper half of a pair. Package nic/ethtool holds the kernel clients (ethtool generic
// netlink for rings and channels, SIOCETHTOOL ioctls for ntuple rules, the RSS table and RSS
// contexts) and the kernel's types, which nic re-exports under its own names (Rings, Rule, Error,
// ...). This package holds the plan (plan.go), the journal (journal.go), Prepare (setup.go) and
// Restore and Cleanup (restore.go).
//
// Seams. The kernel reaches this code through constructors and config structs, never through
// package variables:
//   - Request.Kernel is the Kernel the plan and the restore run against: nil means System(), the
//     real kernel (each call opens an ethtool client and closes it); package nictest has an
//     in-memory NIC with the kernel's rules. The clients in nic/ethtool take their connection the
//     same way (New, NewIoctl, NewLink), which is how genltest and nltest fakes get in.
//   - Test-only behaviour is an unexported field of the same structs, set through export_test.go:
//     Request.crash simulates a kill -9 at every point between a journal write and a kernel change,
//     in Prepare, Restore and Cleanup (WithCrash, CleanupCrashing).
//
// Every change is preceded by an fsync'd journal entry under the state directory (default
// /run/ncdevmem) that says how to undo it. Setup.Restore undoes in reverse order and verifies by
// reading back; after a crash, Cleanup (`ncdevmem cleanup -f IF`) replays the journal. Callers defer
// Setup.Restore and turn SIGINT/SIGTERM/SIGHUP into context cancellation (the ncdevmem root command
// does, with signal.NotifyContext); Prepare stops and restores when the context ends.
//
// Every operation that changes the NIC needs CAP_NET_ADMIN; the getters need none except where the
// driver restricts them. Kernel errors keep the kernel's words and add what to do (see Error).
// See Documentation/networking/devmem.rst and Documentation/networking/ethtool-netlink.rst.
package nic
