// SPDX-License-Identifier: MIT

package gpu

import "unsafe"

// unsafeBytes views n bytes at p, as the fake driver's memcpy sees a C pointer.
func unsafeBytes(p *byte, n uintptr) []byte { return unsafe.Slice(p, n) }
