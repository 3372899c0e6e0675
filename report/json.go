// SPDX-License-Identifier: MIT

package report

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSON writes r as indented JSON with Schema set to SchemaVersion (r itself is not modified).
func WriteJSON(w io.Writer, r *Result) error {
	c := *r
	c.Schema = SchemaVersion
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&c); err != nil {
		return fmt.Errorf("write JSON result: %w", err)
	}
	return nil
}

// ReadJSON reads a result written by WriteJSON. It rejects a document without a schema version or
// with one this build does not read, before looking at any other field, so a newer layout is never
// half-understood.
func ReadJSON(r io.Reader) (*Result, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read JSON result: %w", err)
	}
	var head struct {
		Schema *int `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("read JSON result: not an ncdevmem result: %w", err)
	}
	switch {
	case head.Schema == nil:
		return nil, fmt.Errorf("read JSON result: not an ncdevmem result (no \"schema\" field; write one with: ncdevmem run --json FILE)")
	case *head.Schema > SchemaVersion:
		return nil, fmt.Errorf("read JSON result: schema version %d is newer than this ncdevmem reads (%d): use a newer ncdevmem", *head.Schema, SchemaVersion)
	case *head.Schema != SchemaVersion:
		return nil, fmt.Errorf("read JSON result: schema version %d is not one this ncdevmem reads (%d): rerun the test with this ncdevmem", *head.Schema, SchemaVersion)
	}
	var res Result
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("read JSON result (schema %d): %w", SchemaVersion, err)
	}
	return &res, nil
}
