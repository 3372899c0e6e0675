// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package compare

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/devmemtcp/ncdevmem/report"
)

// Input is one result file given to compare.
type Input struct {
	Name   string // as the user named it, used in tables, legends and benchfmt config
	Result *report.Result
}

// maxInputSize bounds a result file: thousands of runs with intervals stay far below it, and a
// wrong file (a dma-buf dump, a core file) fails fast instead of exhausting memory.
const maxInputSize = 256 << 20

// Load reads and checks the result file at path (see Decode).
func Load(path string) (*Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	return Decode(path, f)
}

// Decode reads one result document, the JSON `ncdevmem run --json FILE` writes, and checks that
// this build understands it: a schema version it knows and at least one run. Unknown fields are
// allowed (fields are only ever added within a schema version).
func Decode(name string, r io.Reader) (*Input, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxInputSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > maxInputSize {
		return nil, fmt.Errorf("%s: larger than %d MiB: not an ncdevmem result (write one with: ncdevmem run --json FILE)", name, maxInputSize>>20)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%s: empty file (write a result with: ncdevmem run --json FILE)", name)
	}
	// report.ReadJSON checks the schema version before anything else; its errors already say
	// what to do.
	res, err := report.ReadJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(res.Runs) == 0 {
		return nil, fmt.Errorf("%s: no measured runs in the result (was the run interrupted?)", name)
	}
	return &Input{Name: name, Result: res}, nil
}
