// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/devmemtcp/ncdevmem/doctor"
	"github.com/spf13/cobra"
)

// doctorOptions are the flags of `ncdevmem doctor`.
type doctorOptions struct {
	Ifname string
	JSON   bool
	For    string // rx, tx or both: which verdicts decide the exit code

	// open gives the facts the doctor reads and the function that releases them; nil means the
	// live machine (doctor.Live). Only tests set it, to a fake.
	open func() (doctor.System, func() error)
}

// system opens what o.open gives, or the live machine.
func (o *doctorOptions) system() (doctor.System, func() error) {
	if o.open != nil {
		return o.open()
	}
	l := doctor.Live()
	return l, l.Close
}

func newDoctorCmd() *cobra.Command { return doctorCmd(&doctorOptions{}) }

// doctorCmd is `ncdevmem doctor` with its flags bound into o.
func doctorCmd(o *doctorOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor -f IF [--json]",
		Short: "Tell whether a NIC is ready for devmem TCP, and what to change",
		Long: `doctor checks everything devmem TCP needs on one NIC and prints a checklist with a verdict
for RX and for TX, and under each failing line the command that fixes it: kernel netdev ops,
driver and firmware, channels, header split (tcp-data-split, hds-thresh), ntuple rule slots, RSS,
every RX queue (NAPI, IRQ, the CPUs of its IRQ, whether a memory provider holds it), XDP, udmabuf,
CUDA (in CUDA builds) and CAP_NET_ADMIN.

It changes nothing: the bind-rx and bind-tx probes send a memfd, which the kernel can never bind,
and read how far the kernel's checks got.

Exit status: 0 ready, 1 not ready (or the interface does not exist), 2 usage.`,
		Example: `  ncdevmem doctor -f eth1
  ncdevmem doctor -f eth1 --for rx --json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("doctor: unexpected argument %q (the interface goes after -f)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Ifname == "" {
				return usageErrorf("doctor: -f/--ifname is required (see 'ncdevmem doctor --help')")
			}
			switch o.For {
			case "rx", "tx", "both":
			default:
				return usageErrorf("doctor: --for %q: want rx, tx or both", o.For)
			}
			sys, closeSys := o.system()
			defer closeSys()
			return runDoctor(o, sys, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Ifname, "ifname", "f", "", "network `interface` to check")
	f.BoolVar(&o.JSON, "json", false, "print the report as JSON (same facts as the text)")
	f.StringVar(&o.For, "for", "both", "which verdicts decide the exit status: `rx`, tx or both")
	return cmd
}

// runDoctor prints the report and turns "not ready" into exit status 1 without a further message:
// the report is the diagnosis.
func runDoctor(o *doctorOptions, sys doctor.System, w io.Writer) error {
	rep, err := doctor.Run(sys, o.Ifname)
	if err != nil {
		return &exitError{Code: exitFailure, Err: err}
	}
	if o.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("doctor: write JSON: %w", err)
		}
	} else if err := doctor.WriteText(w, rep); err != nil {
		return fmt.Errorf("doctor: write report: %w", err)
	}
	if !rep.Ready(o.For != "tx", o.For != "rx") {
		return &exitError{Code: exitFailure, Silent: true}
	}
	return nil
}
