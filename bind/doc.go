// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package bind is ncdevmem's client for the kernel's netdev generic netlink family
// (Documentation/netlink/specs/netdev.yaml, Documentation/networking/devmem.rst): typed dumps of
// devices, queues, NAPI instances, queue statistics and page pools, and the two devmem commands,
// bind-rx and bind-tx.
//
// A dma-buf binding lives exactly as long as the netlink socket that created it, so BindRX and BindTX
// open a socket of their own and hand it to the returned *Binding; Binding.Close closes it, which is
// the unbind. Features are detected by the presence of an op in the family's op list (Client.Has),
// never by kernel version.
//
// Every kernel error comes back as an *Error that keeps the errno, the extended-ack text, offset and
// missing-attribute report (which mdlayher/netlink drops, so acks are parsed here), names the request
// attribute the kernel pointed at, and adds advice naming the command that fixes it.
package bind
