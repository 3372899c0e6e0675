// SPDX-License-Identifier: MIT

package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pipe(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	ca, cb := NewConn(a), NewConn(b)
	ca.Timeout, cb.Timeout = 2*time.Second, 2*time.Second
	return ca, cb
}

func TestFrameRoundTrip(t *testing.T) {
	b, err := EncodeFrame("prepare", map[string]int{"flows": 4})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadFrame(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]int
	if m.Type != "prepare" || m.Decode(&body) != nil || body["flows"] != 4 {
		t.Fatalf("got %+v %v", m, body)
	}
}

func TestReadFrameBounds(t *testing.T) {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], MaxMessage+1)
	if _, err := ReadFrame(bytes.NewReader(hdr[:])); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized frame: %v", err)
	}
	binary.BigEndian.PutUint32(hdr[:], 10)
	if _, err := ReadFrame(bytes.NewReader(append(hdr[:], "{}"...))); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("short frame: %v", err)
	}
	for _, junk := range []string{"GET / HTTP/1.1", "\x00\x00\x00\x02{}", "\x00\x00\x00\x03[1]"} {
		if _, err := ReadFrame(strings.NewReader(junk)); err == nil {
			t.Errorf("junk %q decoded", junk)
		}
	}
}

func handshake(t *testing.T, skey, ckey []byte) (serr, cerr error) {
	t.Helper()
	s, c := pipe(t)
	done := make(chan error, 1)
	go func() {
		_, err := ServerHandshake(s, skey, "test")
		if err != nil {
			s.Close()
		}
		done <- err
	}()
	_, cerr = ClientHandshake(c, ckey, "test")
	if cerr != nil {
		c.Close()
	}
	return <-done, cerr
}

func TestHandshake(t *testing.T) {
	k1, k2 := []byte("0123456789abcdef"), []byte("fedcba9876543210")
	if s, c := handshake(t, nil, nil); s != nil || c != nil {
		t.Errorf("no key: %v / %v", s, c)
	}
	if s, c := handshake(t, k1, k1); s != nil || c != nil {
		t.Errorf("same key: %v / %v", s, c)
	}
	if _, c := handshake(t, k1, k2); c == nil || !strings.Contains(c.Error(), "key differs") {
		t.Errorf("wrong key: client got %v", c)
	}
	if _, c := handshake(t, k1, nil); c == nil || !strings.Contains(c.Error(), "requires a pre-shared key") {
		t.Errorf("missing key: client got %v", c)
	}
	if _, c := handshake(t, nil, k1); c == nil || !strings.Contains(c.Error(), "uses no key") {
		t.Errorf("server without key: client got %v", c)
	}
}

func TestVersionMismatch(t *testing.T) {
	s, c := pipe(t)
	go func() {
		s.Send(TypeHello, &Hello{Proto: Version + 1, Software: "v9", Nonce: NewNonce()})
		s.Recv()
	}()
	_, err := ClientHandshake(c, nil, "test")
	want := fmt.Sprintf("this client speaks version %d, the server (ncdevmem v9) speaks version %d", Version, Version+1)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %q", err, want)
	}

	s, c = pipe(t)
	errc := make(chan error, 1)
	go func() { _, err := ServerHandshake(s, nil, "v1"); errc <- err }()
	var sh Hello
	if err := c.Expect(TypeHello, &sh); err != nil {
		t.Fatal(err)
	}
	c.Send(TypeHello, &Hello{Proto: 7, Software: "old", Nonce: NewNonce()})
	_, rerr := c.Recv()
	if want := fmt.Sprintf("this client speaks version 7, the server (ncdevmem v1) speaks version %d", Version); rerr == nil || !strings.Contains(rerr.Error(), want) {
		t.Errorf("client told %v, want %q", rerr, want)
	}
	err = <-errc
	if want := fmt.Sprintf("server speaks version %d, the client (ncdevmem old) speaks version 7", Version); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("server: %v", err)
	}
}

func TestDataHello(t *testing.T) {
	key, session := []byte("0123456789abcdef"), NewNonce()
	for name, tc := range map[string]struct {
		key, session []byte
		flow         int
		want         string
	}{
		"ok":          {key, session, 2, ""},
		"other":       {key, NewNonce(), 0, "unknown session"},
		"range":       {key, session, 4, "out of range"},
		"bad mac":     {[]byte("xxxxxxxxxxxxxxxx"), session, 0, "authentication failed"},
		"missing mac": {nil, session, 0, "authentication failed"},
	} {
		s, c := pipe(t)
		errc := make(chan error, 1)
		acks := make(chan DataAck, 1)
		go func() {
			ack, err := SendDataHello(c, tc.key, tc.session, tc.flow)
			acks <- ack
			errc <- err
		}()
		flow, err := RecvDataHello(s, key, session, 4, time.Second)
		if tc.want == "" {
			if err == nil {
				err = SendDataAck(s, DataAck{CPU: 3})
			}
			if err != nil || flow != tc.flow || <-errc != nil || (<-acks).CPU != 3 {
				t.Errorf("%s: flow %d, %v", name, flow, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: target got %v", name, err)
		}
		if cerr := <-errc; cerr == nil || !strings.Contains(cerr.Error(), tc.want) {
			t.Errorf("%s: source got %v", name, cerr)
		}
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	os.WriteFile(p, []byte("  0123456789abcdefXYZ\n"), 0o600)
	k, err := LoadKey(p)
	if err != nil || string(k) != "0123456789abcdefXYZ" {
		t.Errorf("LoadKey = %q, %v", k, err)
	}
	os.WriteFile(p, []byte("short"), 0o600)
	if _, err := LoadKey(p); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short key: %v", err)
	}
	os.Chmod(p, 0o644)
	if _, err := LoadKey(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: %v", err)
	}
	if _, err := LoadKey(filepath.Join(dir, "none")); err == nil {
		t.Error("missing key file loaded")
	}
}

func TestRecvDeadline(t *testing.T) {
	_, c := pipe(t)
	_, err := c.RecvWithin(20 * time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("got %v, want a deadline error", err)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"type":"hello","body":{"proto":1,"nonce":"AAAA"}}`))
	f.Add([]byte(`{"type":"error","body":{"message":"x"}}`))
	f.Add([]byte(`{"type":""}`))
	f.Add([]byte("\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeFrame(b)
		if err != nil {
			return
		}
		if m.Type == "" {
			t.Fatal("decoded a message without a type")
		}
		var h Hello
		_ = m.Decode(&h)
		// A decoded message must survive re-encoding and decoding.
		enc, err := EncodeFrame(m.Type, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ReadFrame(bytes.NewReader(enc)); err != nil {
			t.Fatal(err)
		}
	})
}
