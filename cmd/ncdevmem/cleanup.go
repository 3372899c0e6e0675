// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/devmemtcp/ncdevmem/nic"
	"github.com/spf13/cobra"
)

// cleanupOptions are the flags of `ncdevmem cleanup`.
type cleanupOptions struct {
	Ifname   string
	StateDir string
}

func newCleanupCmd() *cobra.Command {
	o := &cleanupOptions{}
	cmd := &cobra.Command{
		Use:   "cleanup -f IF [--state-dir DIR]",
		Short: "Put back the NIC settings of a run that crashed",
		Long: `cleanup restores what an ncdevmem run changed on a NIC (header split, hds-thresh, RSS table,
RSS contexts, ntuple rules, channels) when that run could not do it itself: kill -9, a crash, a
power cut of the process. Each run journals every change before making it under --state-dir;
cleanup replays that journal in reverse, checks every value by reading it back, and deletes it.

A run that finds a journal for its interface refuses to start until cleanup has run. cleanup
refuses while the run that owns the journal is still alive: stop that one with SIGTERM or SIGINT
and it restores the NIC itself. Needs CAP_NET_ADMIN.

  ncdevmem cleanup -f eth1`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("cleanup: unexpected argument %q (the interface goes in -f)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCleanup(o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Ifname, "ifname", "f", "", "the `interface` a crashed run prepared")
	f.StringVar(&o.StateDir, "state-dir", nic.DefaultStateDir, "`directory` holding the journals")
	return cmd
}

// runCleanup replays the journal of o.Ifname. Per-change lines go to stderr, the outcome to stdout.
func runCleanup(o *cleanupOptions, stdout, stderr io.Writer) error {
	if o.Ifname == "" {
		return usageErrorf("cleanup: -f IF is required: the interface the crashed run prepared")
	}
	if o.StateDir == "" {
		return usageErrorf("cleanup: --state-dir is empty")
	}
	if err := nic.CheckClean(o.StateDir, o.Ifname); errors.Is(err, nic.ErrBadIfname) {
		return usageErrorf("cleanup: %v", err)
	}
	err := nic.Cleanup(o.StateDir, o.Ifname, stderr)
	if errors.Is(err, nic.ErrNoJournal) {
		if _, ierr := net.InterfaceByName(o.Ifname); ierr != nil {
			return usageErrorf("cleanup: no interface %q in this network namespace and no journal for it in %s (list interfaces with: ip link)", o.Ifname, o.StateDir)
		}
		for _, p := range nic.ForeignJournals(o.StateDir, o.Ifname) {
			fmt.Fprintf(stderr, "ncdevmem: note: %s is the journal of %s in another network namespace: run cleanup inside that one (ip netns exec NAME ncdevmem cleanup -f %s)\n", p, o.Ifname, o.Ifname)
		}
		_, werr := fmt.Fprintf(stdout, "nothing to clean up for %s\n", o.Ifname)
		return werr
	}
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s restored; journal removed\n", o.Ifname)
	return err
}
