// SPDX-License-Identifier: MIT

//go:build !linux || !(amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// This file is the whole program on a platform ncdevmem does not support: devmem TCP, udmabuf, the
// netdev and ethtool netlink families and io_uring zcrx are Linux's, and the control-message and
// ioctl layouts ncdevmem reads and writes are those of a 64-bit kernel. Building it here fails with
// one error that names the requirement.
package main

var _ = ncdevmem_needs_Linux_on_a_64_bit_CPU_amd64_arm64_loong64_mips64_ppc64_riscv64_s390x
