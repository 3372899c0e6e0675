// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/devmemtcp/ncdevmem/internal/devmemsim"
	"github.com/devmemtcp/ncdevmem/internal/testnet"
)

// A connection starts with a hello read through DevmemReader, then the engine takes the stream
// from its first pattern byte: no byte is lost or read twice.
func TestDevmemReaderThenEngine(t *testing.T) {
	for name, sc := range map[string]devmemsim.Config{
		"dmabuf":      {Size: 256 << 10, FragSize: 7},
		"linear":      {Size: 256 << 10, LinearEvery: 2, FragSize: 5},
		"plain queue": {Size: 256 << 10, Plain: true},
	} {
		t.Run(name, func(t *testing.T) {
			sim, err := devmemsim.New(sc)
			if err != nil {
				t.Fatal(err)
			}
			defer sim.Close()
			c, s := testnet.TCPPair(t)
			hello := []byte("hello, this is flow 3 of session 0123456789abcdef")
			if _, err := c.Write(hello); err != nil {
				t.Fatal(err)
			}
			go sendPattern(c, 1<<20, -1)
			s.SetReadDeadline(time.Now().Add(10 * time.Second))
			rc := testnet.RawConn(t, s)
			got := make([]byte, len(hello))
			if _, err := io.ReadFull(NewDevmemReader(rc, sim.Buffer(), 1, sim), got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, hello) {
				t.Fatalf("hello = %q", got)
			}
			if sc.Plain {
				return // the engine would (rightly) call the rest a steering error
			}
			if c := sim.Counters(); c.Held != 0 {
				t.Errorf("the reader left %d tokens held", c.Held)
			}
			e, err := NewDevmem(DevmemConfig{Buf: sim.Buffer(), DmabufID: 1, ReadSize: 64 << 10, Verify: dmVerify, Sys: sim})
			if err != nil {
				t.Fatal(err)
			}
			var st Stats
			if err := e.Receive(rc, &st); err != nil {
				t.Fatal(err)
			}
			if e.Offset() != 1<<20 {
				t.Errorf("engine got %d bytes, want %d", e.Offset(), 1<<20)
			}
		})
	}
}

func TestDevmemReaderWrongID(t *testing.T) {
	sim, _ := devmemsim.New(devmemsim.Config{Size: 64 << 10, RXID: 4})
	defer sim.Close()
	c, s := testnet.TCPPair(t)
	c.Write([]byte("hi"))
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := NewDevmemReader(testnet.RawConn(t, s), sim.Buffer(), 1, sim).Read(make([]byte, 2))
	if err == nil {
		t.Fatal("a frag of another binding was accepted")
	}
	c.Close()
	_, err = io.ReadAll(NewDevmemReader(testnet.RawConn(t, s), sim.Buffer(), 4, sim))
	if err != nil {
		t.Errorf("read to EOF: %v", err)
	}
}
