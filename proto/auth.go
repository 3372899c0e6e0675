// SPDX-License-Identifier: MIT

package proto

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// NonceSize is the length of handshake nonces and session ids, in bytes.
const NonceSize = 32

// MinKeySize is the shortest accepted pre-shared key.
const MinKeySize = 16

// Hello is the first message in each direction of the handshake.
type Hello struct {
	Proto    int    `json:"proto"`
	Software string `json:"software"`
	Nonce    []byte `json:"nonce"`
	Auth     bool   `json:"auth,omitempty"` // server: a key is required
	MAC      []byte `json:"mac,omitempty"`  // client: proof of the key
	// Client is a random id one client uses on all its connections, so a server that is both
	// source and target of the same test can tell that client from a second one.
	Client []byte `json:"client,omitempty"`
}

// Welcome ends a successful handshake; MAC proves the server holds the key too.
type Welcome struct {
	MAC []byte `json:"mac,omitempty"`
}

// LoadKey reads a pre-shared key file: its bytes with surrounding white space trimmed, at least
// MinKeySize of them. The file should not be readable by others; a key anyone can read is refused.
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if st.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("key file %s is readable by every user (run: chmod 600 %s)", path, path)
	}
	b := make([]byte, 4097)
	n, _ := f.Read(b)
	if n > 4096 {
		return nil, fmt.Errorf("key file %s: longer than 4096 bytes; is it the right file?", path)
	}
	k := bytes.TrimSpace(b[:n])
	if len(k) < MinKeySize {
		return nil, fmt.Errorf("key file %s: key of %d bytes is too short, want at least %d (make one: head -c 32 /dev/urandom | base64 > %s)", path, len(k), MinKeySize, path)
	}
	return k, nil
}

func mac(key []byte, label string, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(label))
	for _, p := range parts {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(p)))
		h.Write(l[:])
		h.Write(p)
	}
	return h.Sum(nil)
}

// NewNonce returns NonceSize random bytes.
func NewNonce() []byte {
	b := make([]byte, NonceSize)
	// crypto/rand.Read never fails on Linux (getrandom) and panics if it ever could not.
	rand.Read(b)
	return b
}

func versionMismatch(local, remote int, localSide, remoteSide, software string) error {
	return fmt.Errorf("protocol version mismatch: this %s speaks version %d, the %s (ncdevmem %s) speaks version %d; run the same ncdevmem release on all hosts",
		localSide, local, remoteSide, software, remote)
}

// ServerHandshake runs the server side of the handshake. key nil means no authentication. On
// failure it has told the client why (when the connection still works) and returns the reason.
func ServerHandshake(c *Conn, key []byte, software string) (*Hello, error) {
	return ServerHandshakeWith(c, key, software, nil)
}

// ServerHandshakeWith is ServerHandshake calling admit with the authenticated client's hello just
// before the welcome goes out, so the server can claim resources for the client before the client
// can send anything.
func ServerHandshakeWith(c *Conn, key []byte, software string, admit func(*Hello)) (*Hello, error) {
	nonceS := NewNonce()
	if err := c.Send(TypeHello, &Hello{Proto: Version, Software: software, Nonce: nonceS, Auth: key != nil}); err != nil {
		return nil, err
	}
	var ch Hello
	if err := c.Expect(TypeHello, &ch); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if ch.Proto != Version {
		err := versionMismatch(Version, ch.Proto, "server", "client", ch.Software)
		c.SendError(versionMismatch(ch.Proto, Version, "client", "server", software).Error())
		return nil, err
	}
	if len(ch.Nonce) != NonceSize {
		c.SendError("handshake: bad client nonce")
		return nil, fmt.Errorf("handshake: client nonce of %d bytes, want %d", len(ch.Nonce), NonceSize)
	}
	var w Welcome
	if key != nil {
		if !hmac.Equal(ch.MAC, mac(key, "ncdevmem-client", nonceS, ch.Nonce, ch.Client)) {
			msg := "authentication failed: this server requires the pre-shared key (give the same --key-file to run and server)"
			if len(ch.MAC) > 0 {
				msg = "authentication failed: the client's key differs from the server's (give the same --key-file to run and server)"
			}
			c.SendError(msg)
			return nil, errors.New(msg)
		}
		w.MAC = mac(key, "ncdevmem-server", ch.Nonce, nonceS)
	}
	if admit != nil {
		admit(&ch)
	}
	if err := c.Send(TypeWelcome, &w); err != nil {
		return &ch, err
	}
	return &ch, nil
}

// ClientHandshake runs the client side. key nil means no authentication; with a key the server
// must prove it holds the same key, so a client never sends a test to an impostor.
func ClientHandshake(c *Conn, key []byte, software string) (*Hello, error) {
	return ClientHandshakeAs(c, key, software, nil)
}

// ClientHandshakeAs is ClientHandshake presenting clientID (see Hello.Client).
func ClientHandshakeAs(c *Conn, key []byte, software string, clientID []byte) (*Hello, error) {
	var sh Hello
	if err := c.Expect(TypeHello, &sh); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if sh.Proto != Version {
		c.SendError(versionMismatch(sh.Proto, Version, "server", "client", software).Error())
		return nil, versionMismatch(Version, sh.Proto, "client", "server", sh.Software)
	}
	if sh.Auth && key == nil {
		return nil, errors.New("authentication failed: the server requires a pre-shared key (add --key-file FILE with the server's key)")
	}
	if !sh.Auth && key != nil {
		return nil, errors.New("authentication failed: --key-file was given but the server uses no key, so it cannot prove who it is (start the server with the same --key-file)")
	}
	if len(sh.Nonce) != NonceSize {
		return nil, fmt.Errorf("handshake: server nonce of %d bytes, want %d", len(sh.Nonce), NonceSize)
	}
	nonceC := NewNonce()
	h := Hello{Proto: Version, Software: software, Nonce: nonceC, Client: clientID}
	if key != nil {
		h.MAC = mac(key, "ncdevmem-client", sh.Nonce, nonceC, clientID)
	}
	if err := c.Send(TypeHello, &h); err != nil {
		return nil, err
	}
	var w Welcome
	if err := c.Expect(TypeWelcome, &w); err != nil {
		return nil, err
	}
	if key != nil && !hmac.Equal(w.MAC, mac(key, "ncdevmem-server", nonceC, sh.Nonce)) {
		return nil, errors.New("authentication failed: the server's key differs from --key-file")
	}
	return &sh, nil
}

// DataHello opens every data connection: the session (a random id the target handed out) and the
// flow it belongs to, with a MAC over both when the session is keyed.
type DataHello struct {
	Session []byte `json:"session"`
	Flow    int    `json:"flow"`
	MAC     []byte `json:"mac,omitempty"`
}

// DataAck answers a good DataHello.
type DataAck struct {
	// CPU is the target's SO_INCOMING_CPU for the connection (-1 unknown), so the source can
	// spread flows over CPUs the way kperf does.
	CPU int `json:"cpu"`
}

// TypeDataHello and TypeDataAck are the data connection's opening messages.
const (
	TypeDataHello = "data-hello"
	TypeDataAck   = "data-ack"
)

// SendDataHello identifies a freshly connected data connection and waits for the target's ack.
func SendDataHello(c *Conn, key, session []byte, flow int) (DataAck, error) {
	h := DataHello{Session: session, Flow: flow}
	if key != nil {
		h.MAC = dataMAC(key, session, flow)
	}
	ack := DataAck{CPU: -1}
	if err := c.Send(TypeDataHello, &h); err != nil {
		return ack, fmt.Errorf("flow %d: %w", flow, err)
	}
	if err := c.Expect(TypeDataAck, &ack); err != nil {
		return ack, fmt.Errorf("flow %d: target refused the data connection: %w", flow, err)
	}
	return ack, nil
}

// SendDataAck accepts a data connection whose DataHello RecvDataHello checked.
func SendDataAck(c *Conn, ack DataAck) error {
	return c.Send(TypeDataAck, &ack)
}

// RecvDataHello reads and checks a DataHello against session, returning its flow id; the caller
// acks it with SendDataAck. A bad one (wrong session or MAC, flow not below flows) gets an error
// message and is the caller's to close.
func RecvDataHello(c *Conn, key, session []byte, flows int, d time.Duration) (int, error) {
	var h DataHello
	if err := c.ExpectWithin(d, TypeDataHello, &h); err != nil {
		return 0, fmt.Errorf("data connection from %s: %w", c.nc.RemoteAddr(), err)
	}
	fail := func(why string) (int, error) {
		c.SendError(why)
		return 0, fmt.Errorf("data connection from %s: %s", c.nc.RemoteAddr(), why)
	}
	if !hmac.Equal(h.Session, session) {
		return fail("unknown session (a data connection of another or an old test?)")
	}
	if h.Flow < 0 || h.Flow >= flows {
		return fail(fmt.Sprintf("flow %d out of range 0..%d", h.Flow, flows-1))
	}
	if key != nil && !hmac.Equal(h.MAC, dataMAC(key, session, h.Flow)) {
		return fail("authentication failed for the data connection")
	}
	return h.Flow, nil
}

func dataMAC(key, session []byte, flow int) []byte {
	var f [8]byte
	binary.BigEndian.PutUint64(f[:], uint64(flow))
	return mac(key, "ncdevmem-data", session, f[:])
}

// IsLoopback reports whether a listen address only accepts local connections, so the server can
// warn when it serves beyond loopback without a key.
func IsLoopback(host string) bool {
	host = strings.Trim(host, "[]")
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}
