// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"context"
	"fmt"
	"net"
)

// Local is a pair of in-process servers on loopback: the embedded default's source and target.
type Local struct {
	Src, Dst string // control addresses
	cancel   context.CancelFunc
	done     chan struct{}
}

// StartLocal starts a source and a target server on 127.0.0.1 ephemeral ports. Stop ends them.
func StartLocal(ctx context.Context, srv func() *Server) (*Local, error) {
	ctx, cancel := context.WithCancel(ctx)
	l := &Local{cancel: cancel, done: make(chan struct{})}
	var lns []net.Listener
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			cancel()
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("start the in-process server on loopback: %w", err)
		}
		lns = append(lns, ln)
	}
	l.Src, l.Dst = lns[0].Addr().String(), lns[1].Addr().String()
	n := len(lns)
	finished := make(chan struct{}, n)
	for _, ln := range lns {
		s := srv()
		go func() {
			s.Serve(ctx, ln)
			finished <- struct{}{}
		}()
	}
	go func() {
		for range n {
			<-finished
		}
		close(l.done)
	}()
	return l, nil
}

// Stop shuts both servers down and waits for them.
func (l *Local) Stop() {
	l.cancel()
	<-l.done
}
