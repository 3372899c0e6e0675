// SPDX-License-Identifier: MIT

//go:build !cuda && linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package gpu

// loadDriver is the stub of binaries built without the cuda tag: they never load libcuda, so they
// stay statically linked.
func loadDriver() (*driver, error) { return nil, ErrNoCUDA }

// Compiled reports whether this binary was built with the cuda tag, so callers can refuse "cuda"
// memory up front.
const Compiled = false
