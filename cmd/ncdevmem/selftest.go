// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/version"
	"github.com/devmemtcp/ncdevmem/proto"
	"github.com/devmemtcp/ncdevmem/selftest"
	"github.com/spf13/cobra"
)

type selftestOptions struct {
	ifname   string
	peer     string
	keyFile  string
	addr     string
	peerAddr string
	port     int
	only     string
	timeout  time.Duration
}

func newSelftestCmd() *cobra.Command {
	o := &selftestOptions{}
	cmd := &cobra.Command{
		Use:   "selftest -f IF --peer HOST[:PORT]",
		Short: "Run the kernel's devmem selftest (devmem.py) natively, KTAP output",
		Long: `Run the checks of the kernel's devmem TCP selftest (tools/testing/selftests/drivers/net/hw/
devmem.py) without Python, socat or ssh: the same probe ('ncdevmem -f IF'), the same ncdevmem
invocations on this host and the same pass conditions, with an 'ncdevmem server' on the peer
host playing the remote side. Output is KTAP on stdout.

Checks: probe, rx, tx, tx_chunks, rx_hds, rx_large_niov. Each requires devmem support (the probe
exits 0) and is skipped with "Test requires devmem support" otherwise. The NIC is changed only
for the length of each invocation and restored after it; rx_large_niov raises vm.nr_hugepages to
64 for its probe, as devmem.py does, and restores it.

Exit status: 0 all checks passed (or were skipped while others passed), 1 a check failed,
4 (KSFT_SKIP) every check was skipped, 2 bad flags.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for %q (selftest takes flags only)", args[0], cmd.CommandPath())
			}
			return runSelftest(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ifname, "ifname", "f", "", "the `IF` under test")
	f.StringVar(&o.peer, "peer", "", "the remote host running 'ncdevmem server', `HOST[:PORT]` (port 18400 when omitted)")
	f.StringVar(&o.keyFile, "key-file", "", "pre-shared key `FILE` the peer server was started with")
	f.StringVar(&o.addr, "addr", "", "this host's `IP` on IF (default: the local address of the route to the peer)")
	f.StringVar(&o.peerAddr, "peer-addr", "", "the peer's `IP` on the tested link (default: the peer host's address)")
	f.IntVar(&o.port, "port", 0, "data port of the first invocation, the next ones take the following ports (default: random free ports)")
	f.StringVar(&o.only, "only", "", "run only these checks, a comma-separated `LIST` of probe,rx,tx,tx_chunks,rx_hds,rx_large_niov")
	f.DurationVar(&o.timeout, "timeout", time.Minute, "time limit of each ncdevmem invocation and peer operation")
	return cmd
}

// peerControlAddr adds the default control port to HOST, [V6HOST] or a bare IPv6 address.
func peerControlAddr(s string) (string, error) {
	if _, _, err := net.SplitHostPort(s); err != nil {
		h := s
		if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
			h = h[1 : len(h)-1]
		}
		s = net.JoinHostPort(h, strconv.Itoa(proto.DefaultPort))
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil || h == "" {
		return "", usageErrorf("--peer %q: want HOST[:PORT]", s)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", usageErrorf("--peer %q: port %q is not 1..65535", s, p)
	}
	return s, nil
}

func parseIPFlag(name, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, usageErrorf("%s %q: not an IP address (give this host's or the peer's address on the tested link)", name, s)
	}
	return a, nil
}

func runSelftest(cmd *cobra.Command, o *selftestOptions) error {
	if o.ifname == "" {
		return usageErrorf("missing -f IF: the NIC to test")
	}
	if o.peer == "" {
		return usageErrorf("missing --peer HOST: a host running 'ncdevmem server' plays the remote side")
	}
	peer, err := peerControlAddr(o.peer)
	if err != nil {
		return err
	}
	cfg := selftest.Config{Ifname: o.ifname, Peer: peer, Software: version.String(), Port: o.port, Timeout: o.timeout}
	if o.timeout <= 0 {
		return usageErrorf("--timeout %v: want a positive duration", o.timeout)
	}
	if cfg.Addr, err = parseIPFlag("--addr", o.addr); err != nil {
		return err
	}
	if cfg.PeerAddr, err = parseIPFlag("--peer-addr", o.peerAddr); err != nil {
		return err
	}
	if cmd.Flags().Changed("only") {
		if cfg.Only, err = selftest.ParseOnly(o.only); err != nil {
			return usageErrorf("--only: %v", err)
		}
	}
	if o.keyFile != "" {
		if cfg.Key, err = proto.LoadKey(o.keyFile); err != nil {
			return usageErrorf("--key-file: %v", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return usageErrorf("%v", err)
	}
	code, err := selftest.Run(cmd.Context(), cfg, cmd.OutOrStdout())
	if err != nil {
		return fmt.Errorf("selftest: %w", err)
	}
	if code != selftest.ExitPass {
		return &exitError{Code: code, Silent: true}
	}
	return nil
}
