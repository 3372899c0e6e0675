// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nic

import (
	"fmt"

	"github.com/devmemtcp/ncdevmem/nic/ethtool"
)

// ErrNotSupported is matched (errors.Is) by an *Error whose errno says the driver or kernel lacks
// the operation (EOPNOTSUPP). It is ethtool.ErrNotSupported.
var ErrNotSupported = ethtool.ErrNotSupported

// Error is a kernel refusal of one ethtool operation on one interface, with the kernel's extack
// text, its errno and advice (see ethtool.Error).
type Error = ethtool.Error

// errorf is fmt.Errorf for the plan's own refusals, kept as one place to change the prefix.
func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
