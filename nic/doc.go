// SPDX-License-Identifier: MIT

// Package nic prepares a NIC for devmem TCP and puts it back: header split (tcp-data-split on,
// hds-thresh 0), RSS kept off the devmem queues (an RSS context over them when the driver has
// contexts, else the main indirection table over the other queues), and one ntuple rule per flow.
//
// It talks to the kernel directly: ethtool generic netlink for rings and channels, SIOCETHTOOL
// ioctls for ntuple rules, the RSS table and RSS contexts. Every kernel call goes through the
// Kernel interface so the plan and the restore logic run against an in-memory NIC in tests
// (package nictest).
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
