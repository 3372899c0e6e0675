// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"

	"github.com/devmemtcp/ncdevmem/bench"
	"github.com/devmemtcp/ncdevmem/internal/version"
	"github.com/devmemtcp/ncdevmem/proto"
	"github.com/spf13/cobra"
)

// testCorruptEnv is a test hook: a server started with NCDEVMEM_TEST_CORRUPT_AT=N flips the byte
// at stream offset N of flow 0 whenever it is the source, so tests can prove validation fails.
const testCorruptEnv = "NCDEVMEM_TEST_CORRUPT_AT"

type serverOptions struct {
	listen  string
	keyFile string
	quiet   bool
}

func newServerCmd() *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Serve tests on this host (control port 18400)",
		Long: `Serve tests on this host: a long-running daemon that plays source or target for
'ncdevmem run', one test at a time (a second client is told the server is busy).

Give both servers and the client the same --key-file (a secret of 16 bytes or more, mode 600) to
authenticate every control and data connection; a server listening beyond loopback without one
warns at start, since anyone who reaches it can make it send and receive traffic.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", ":"+strconv.Itoa(proto.DefaultPort), "control address `HOST[:PORT]` (port 18400 when omitted)")
	f.StringVar(&o.keyFile, "key-file", "", "pre-shared key `FILE` for HMAC authentication of clients and data connections")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "log nothing but errors at start")
	return cmd
}

// listenAddr adds the default port to HOST or [V6HOST] and checks the result.
func listenAddr(s string) (string, error) {
	if s == "" {
		return "", usageErrorf("--listen: empty address")
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		h := s
		if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
			h = h[1 : len(h)-1]
		}
		s = net.JoinHostPort(h, strconv.Itoa(proto.DefaultPort))
	}
	_, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", usageErrorf("--listen %q: %v (want HOST[:PORT])", s, err)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
		return "", usageErrorf("--listen %q: port %q is not 0..65535", s, p)
	}
	return s, nil
}

func runServer(cmd *cobra.Command, o *serverOptions) error {
	addr, err := listenAddr(o.listen)
	if err != nil {
		return err
	}
	var key []byte
	if o.keyFile != "" {
		if key, err = proto.LoadKey(o.keyFile); err != nil {
			return usageErrorf("--key-file: %v", err)
		}
	}
	srv := &bench.Server{Key: key, Software: version.String()}
	if v := os.Getenv(testCorruptEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			return usageErrorf("%s=%q: want a stream offset", testCorruptEnv, v)
		}
		srv.CorruptAt = n + 1
	}
	logw := cmd.ErrOrStderr()
	if o.quiet {
		logw = io.Discard
	}
	lg := log.New(logw, "ncdevmem server: ", log.LstdFlags|log.LUTC)
	srv.Logf = lg.Printf
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another server running? pick one with --listen)", addr, err)
	}
	host, _, _ := net.SplitHostPort(addr)
	if key == nil && !proto.IsLoopback(host) {
		fmt.Fprintf(cmd.ErrOrStderr(), "ncdevmem server: warning: listening on %s without --key-file: anyone who can reach this port can run tests from this host\n", ln.Addr())
	}
	if srv.CorruptAt != 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "ncdevmem server: test hook %s: flow 0 will carry a corrupted byte at offset %d\n", testCorruptEnv, srv.CorruptAt-1)
	}
	lg.Printf("listening on %s (protocol %d, %s)", ln.Addr(), proto.Version, version.String())
	if err := srv.Serve(cmd.Context(), ln); err != nil {
		return err
	}
	lg.Printf("stopped")
	// Stopped by a signal: every test it served has ended and reported; exit 128+N with one line.
	var se *signalError
	if errors.As(context.Cause(cmd.Context()), &se) {
		return fmt.Errorf("server stopped: %w", se)
	}
	return nil
}
