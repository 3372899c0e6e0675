// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package uapi is the only home of kernel constants and structs that golang.org/x/sys/unix does not
// export. Each file mirrors one kernel surface and cites its header and the kernel version that added
// it; each struct has a size and offset test beside it. Files by owner: socket.go (devmem cmsg and
// token structs, ETOOSMALL, the DONTNEED limits), netdev.go (netdev generic netlink), ethtool.go
// (ethtool netlink and SIOCETHTOOL), dmabuf.go (udmabuf, dma-buf sync, memfd),
// io_uring.go (io_uring rings and zero-copy receive, zcrx).
package uapi
