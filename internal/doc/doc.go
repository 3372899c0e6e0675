// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package doc holds no code; it describes conventions that every package of ncdevmem follows.
//
// # Kernel seams
//
// Code reaches the kernel through a value it is given, never through a package-level variable
// that tests reassign. There is one style:
//
//   - A constructor or a config struct carries the seam: an interface field (rx.DevmemConfig's and
//     tx.DevmemConfig's Sys, a DevmemSys; nic.Request's Kernel) or a small struct of funcs
//     (legacy.System, devmem.Config's Alloc and BindRX, udmabuf's unexported system).
//   - The zero value, or nil, means the running kernel; the live implementation is returned by a
//     function (rx.Kernel{}, nic.System(), udmabuf's liveSystem), not stored in a variable.
//   - Netlink and ioctl clients take their connection in the constructor (bind, nic/ethtool), so
//     tests pass a genltest fake that checks the exact request bytes (as mdlayher/genetlink does).
//   - Test-only behaviour (crash injection, a fake kernel for a command) is an unexported field of
//     the same structs, set from the package's own tests or an export_test.go.
//
// Tests build their own config with fakes, so nothing global is swapped and tests stay
// independent. Package-level variables hold only constant tables, sentinel errors, flags and
// once-per-process caches (gpu's driver table, testnet's built binary).
package doc
