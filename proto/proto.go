// SPDX-License-Identifier: MIT

// Package proto is the control protocol between `ncdevmem run` and `ncdevmem server`: a versioned
// handshake with optional HMAC-SHA256 challenge-response on a pre-shared key, then length-prefixed
// JSON messages with a hard size bound and per-message deadlines. Data connections open with one
// framed DataHello naming the session and flow they belong to.
//
// Wire format: every message is a 4-byte big-endian length followed by that many bytes of JSON,
// {"type": T, "body": {...}}. Lengths above MaxMessage are refused before any allocation.
//
// Handshake (server speaks first, so a client can tell a wrong port from a dead one):
//
//	S->C hello   {proto, software, nonce_s, auth}
//	C->S hello   {proto, software, nonce_c, client, mac_c = HMAC(key, "ncdevmem-client" nonce_s nonce_c client)}
//	S->C welcome {mac_s = HMAC(key, "ncdevmem-server" nonce_c nonce_s)}   or   error {message}
//
// A version mismatch is reported by whichever side sees it, naming both versions.
package proto

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Version is the protocol version. Bump it on any change a peer of the previous version would
// misread: a new message, or a new field a peer that ignores it goes wrong without. Only fields
// a peer may safely ignore need no bump.
//
//	1  the first
//	2  bench's restored after every prepared test (a version-1 client takes it for a protocol
//	   error); src_ports in ready and prepare (a version-1 source ignores them and dials from
//	   ports the target's ntuple rules do not match)
const Version = 2

// MaxMessage bounds one message's JSON, in bytes: results of 1024 flows fit several times over.
const MaxMessage = 4 << 20

// DefaultTimeout is the deadline of one message read or write when the caller gives none.
const DefaultTimeout = 10 * time.Second

// DefaultPort is the server's control port.
const DefaultPort = 18400

// Message types. Bodies are defined by the package that uses them (bench), except those of the
// handshake and Error.
const (
	TypeHello   = "hello"
	TypeWelcome = "welcome"
	TypeError   = "error"
)

// Message is one decoded frame. Body stays raw until the receiver knows which type to decode into.
type Message struct {
	Type string          `json:"type"`
	Body json.RawMessage `json:"body,omitempty"`
}

// Decode unmarshals the body into v, naming the message type on failure.
func (m *Message) Decode(v any) error {
	if len(m.Body) == 0 {
		return fmt.Errorf("decode %q message: empty body", m.Type)
	}
	if err := json.Unmarshal(m.Body, v); err != nil {
		return fmt.Errorf("decode %q message: %w", m.Type, err)
	}
	return nil
}

// ErrorBody is the body of an error message: the peer's one-line diagnosis.
type ErrorBody struct {
	Message string `json:"message"`
}

// RemoteError is an error message received from the peer.
type RemoteError struct {
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// ErrTooLarge is wrapped by reads of a frame longer than MaxMessage.
var ErrTooLarge = errors.New("message too large")

// DecodeFrame decodes one frame's payload (without the length prefix). It is the parser of bytes
// from the network; the fuzz target drives it.
func DecodeFrame(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxMessage {
		return m, fmt.Errorf("decode message of %d bytes: %w (limit %d)", len(b), ErrTooLarge, MaxMessage)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Message{}, fmt.Errorf("decode message: %w (is the peer an ncdevmem server or client?)", err)
	}
	if m.Type == "" {
		return Message{}, errors.New("decode message: no type (is the peer an ncdevmem server or client?)")
	}
	return m, nil
}

// ReadFrame reads one length-prefixed message from r.
func ReadFrame(r io.Reader) (Message, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Message{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxMessage {
		return Message{}, fmt.Errorf("read message: length %d: %w (limit %d; is the peer an ncdevmem server or client?)", n, ErrTooLarge, MaxMessage)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Message{}, fmt.Errorf("read message body: %w", err)
	}
	return DecodeFrame(b)
}

// EncodeFrame returns the length-prefixed frame of a message of type typ with body (nil: none).
func EncodeFrame(typ string, body any) ([]byte, error) {
	m := Message{Type: typ}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %q message: %w", typ, err)
		}
		m.Body = b
	}
	b, err := json.Marshal(&m)
	if err != nil {
		return nil, fmt.Errorf("encode %q message: %w", typ, err)
	}
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("encode %q message of %d bytes: %w (limit %d)", typ, len(b), ErrTooLarge, MaxMessage)
	}
	out := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(out, uint32(len(b)))
	copy(out[4:], b)
	return out, nil
}

// Conn is a control connection: framed messages with a deadline on every read and write. It is not
// safe for concurrent writers; one goroutine may read while another writes.
type Conn struct {
	nc      net.Conn
	Timeout time.Duration // per-message deadline, DefaultTimeout when zero
}

// NewConn wraps an established connection.
func NewConn(nc net.Conn) *Conn { return &Conn{nc: nc} }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

func (c *Conn) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// Send writes one message within the connection's timeout.
func (c *Conn) Send(typ string, body any) error {
	b, err := EncodeFrame(typ, body)
	if err != nil {
		return err
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.timeout())); err != nil {
		return fmt.Errorf("send %q message: %w", typ, err)
	}
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("send %q message: %w", typ, err)
	}
	return nil
}

// SendError sends an error message with text msg (best effort: the connection is about to close).
func (c *Conn) SendError(msg string) error {
	return c.Send(TypeError, &ErrorBody{Message: msg})
}

// Recv reads one message, waiting at most the connection's timeout.
func (c *Conn) Recv() (Message, error) { return c.RecvWithin(c.timeout()) }

// RecvWithin reads one message, waiting at most d. An error message from the peer is returned as a
// *RemoteError.
func (c *Conn) RecvWithin(d time.Duration) (Message, error) {
	if err := c.nc.SetReadDeadline(time.Now().Add(d)); err != nil {
		return Message{}, err
	}
	m, err := ReadFrame(c.nc)
	if err != nil {
		return Message{}, err
	}
	if m.Type == TypeError {
		var eb ErrorBody
		if err := m.Decode(&eb); err != nil {
			return Message{}, err
		}
		return m, &RemoteError{Message: eb.Message}
	}
	return m, nil
}

// Expect reads one message of type typ into body (body may be nil), failing on any other type.
func (c *Conn) Expect(typ string, body any) error {
	return c.ExpectWithin(c.timeout(), typ, body)
}

// ExpectWithin is Expect with its own deadline.
func (c *Conn) ExpectWithin(d time.Duration, typ string, body any) error {
	m, err := c.RecvWithin(d)
	if err != nil {
		return err
	}
	if m.Type != typ {
		return fmt.Errorf("protocol error: got a %q message, want %q", m.Type, typ)
	}
	if body == nil {
		return nil
	}
	return m.Decode(body)
}
