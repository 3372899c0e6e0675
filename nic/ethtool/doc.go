// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package ethtool is the kernel half of package nic: one small client per kernel surface, each
// over a connection it is given, in the style of mdlayher/ethtool.
//
//   - Client speaks the "ethtool" generic netlink family (rings with tcp-data-split and
//     hds-thresh, channels). Dial opens the connection; New takes one, which is how tests hand it a
//     genltest fake that checks the exact request bytes.
//   - IoctlClient issues the SIOCETHTOOL commands that have no netlink form in every supported
//     kernel (driver info, ntuple rules, the RSS table, RSS contexts) on one socket. OpenIoctl
//     opens it; NewIoctl takes one.
//   - LinkClient asks rtnetlink whether a device is up and has an XDP program (RTM_GETLINK), the
//     one route-family fact the doctor needs. DialLink opens the connection; NewLink takes one.
//
// Every request goes through one path per client (execute, ioctl), encoders and parsers are pure
// functions with fuzz targets, and parsers skip attributes they do not know. Kernel refusals are
// *Error: the kernel's extack text and errno kept, advice added, errors.Is(err, os.ErrPermission),
// os.ErrNotExist and ErrNotSupported answered.
//
// The package lives under nic/ because it is the lower half of that package: nic plans, journals
// and restores NIC changes on top of these clients, and re-exports their types under its own
// names. It holds no state beyond the connection and changes nothing on its own; operations that
// change the NIC need CAP_NET_ADMIN. Clients are not safe for concurrent use.
package ethtool
