// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

// Package zcrx is io_uring zero-copy receive (Linux 6.15+): a ring set up with DEFER_TASKRUN,
// SINGLE_ISSUER and CQE32, an interface queue registered with IORING_REGISTER_ZCRX_IFQ whose area
// is host memory or a dma-buf, multishot RECV_ZC per flow, completions that point into the area
// (validated there, in place), and buffers handed back through the refill ring in batches.
//
// The ring code is this package's own (raw io_uring_setup/enter/register through x/sys/unix and
// the mmaps of the SQ, CQ and SQE arrays and the refill region): no Go io_uring library on the
// module proxy carries zcrx. Kernel structs are mirrored in internal/uapi.
//
// The NIC must be prepared as for devmem RX (header split on, hds-thresh 0, flows steered to the
// zcrx queue and RSS kept off it): that is the nic package's job, not this one's.
package zcrx
