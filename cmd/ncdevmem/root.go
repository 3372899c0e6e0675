// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"fmt"

	"github.com/devmemtcp/ncdevmem/internal/version"
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ncdevmem",
		Short: "Measure Linux devmem TCP throughput and CPU cost",
		Long: `ncdevmem measures TCP flows whose payload a NIC places straight into a dma-buf (udmabuf
host memory or GPU memory) or sends from one, against ordinary host-memory TCP.

  ncdevmem run                      host-memory run over loopback, both servers in-process
  ncdevmem server                   serve tests on this host (control port 18400)
  ncdevmem run --src A --dst B      orchestrate a test between two servers
  ncdevmem doctor -f IF             is this NIC ready for devmem, and what to change
  ncdevmem cleanup -f IF            put back what a crashed run changed on the NIC
  ncdevmem compare a.json b.json    before/after statistics
  ncdevmem selftest -f IF --peer H  the kernel's devmem.py checks, natively, as KTAP
  ncdevmem -l -f IF -s ADDR ...     the kernel selftest's C ncdevmem command line`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%v (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(
		newVersionCmd(),
		newServerCmd(),
		newRunCmd(),
		newDoctorCmd(),
		newCleanupCmd(),
		newCompareCmd(),
		newSelftestCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "ncdevmem %s\n", version.String())
			return err
		},
	}
}
