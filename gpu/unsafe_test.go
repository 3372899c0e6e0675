// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package gpu

import "unsafe"

// unsafeBytes views n bytes at p, as the fake driver's memcpy sees a C pointer.
func unsafeBytes(p *byte, n uintptr) []byte { return unsafe.Slice(p, n) }
