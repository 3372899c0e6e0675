// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package uapi

import "structs"

// io_uring and its zero-copy receive (zcrx) interface: include/uapi/linux/io_uring.h,
// include/uapi/linux/io_uring/zcrx.h and include/uapi/linux/io_uring/query.h (Linux 7.3; zcrx
// since v6.15, the query interface since v6.18, zcrx_stats/event_desc and ZCRX_REG_NODEV in 7.x).
// golang.org/x/sys/unix has the syscall numbers (SYS_IO_URING_SETUP/ENTER/REGISTER) and nothing else
// of io_uring. Values are the same on every architecture.
const (
	// io_uring_setup(2) flags.
	IORING_SETUP_CQSIZE          = 1 << 3  //nolint:revive // cq_entries is given
	IORING_SETUP_CLAMP           = 1 << 4  //nolint:revive // clamp ring sizes instead of EINVAL
	IORING_SETUP_R_DISABLED      = 1 << 6  //nolint:revive // start disabled; ENABLE_RINGS picks the submitter
	IORING_SETUP_SUBMIT_ALL      = 1 << 7  //nolint:revive
	IORING_SETUP_CQE32           = 1 << 11 //nolint:revive // 32-byte CQEs: zcrx puts io_uring_zcrx_cqe in the second half
	IORING_SETUP_SINGLE_ISSUER   = 1 << 12 //nolint:revive
	IORING_SETUP_DEFER_TASKRUN   = 1 << 13 //nolint:revive // task work runs only in io_uring_enter(GETEVENTS)
	IORING_FEAT_SINGLE_MMAP      = 1 << 0  //nolint:revive // SQ and CQ rings share one mmap
	IORING_FEAT_EXT_ARG          = 1 << 8  //nolint:revive // io_uring_getevents_arg with a timeout
	IORING_ENTER_GETEVENTS       = 1 << 0  //nolint:revive
	IORING_ENTER_EXT_ARG         = 1 << 3  //nolint:revive
	IORING_OFF_SQ_RING           = 0       //nolint:revive // mmap offsets
	IORING_OFF_CQ_RING           = 0x8000000
	IORING_OFF_SQES              = 0x10000000
	IORING_OP_NOP                = 0      //nolint:revive
	IORING_OP_ASYNC_CANCEL       = 14     //nolint:revive // sqe.addr: user_data of the request to cancel
	IORING_OP_RECV_ZC            = 58     //nolint:revive // v6.15
	IORING_RECV_MULTISHOT        = 1 << 1 //nolint:revive // sqe.ioprio; RECV_ZC requires it
	IORING_CQE_F_MORE            = 1 << 1 //nolint:revive // the multishot request is still armed
	IORING_REGISTER_PROBE        = 8      //nolint:revive
	IORING_REGISTER_ENABLE_RINGS = 12     //nolint:revive
	IORING_REGISTER_ZCRX_IFQ     = 32     //nolint:revive // v6.15
	IORING_REGISTER_QUERY        = 35     //nolint:revive // v6.18; needs no ring (fd -1)
	IORING_REGISTER_ZCRX_CTRL    = 36     //nolint:revive // 7.x; nr_args 0
	ZCRX_CTRL_FLUSH_RQ           = 0      //nolint:revive // consume the refill ring now (needed with ZCRX_REG_NODEV)
	IORING_MEM_REGION_TYPE_USER  = 1      //nolint:revive // region memory given by user_addr
	IO_URING_OP_SUPPORTED        = 1      //nolint:revive // io_uring_probe_op.flags

	// zcrx (include/uapi/linux/io_uring/zcrx.h).
	IORING_ZCRX_AREA_SHIFT     = 48     //nolint:revive // area id above this bit of a CQE/RQE offset
	IORING_ZCRX_AREA_DMABUF    = 1      //nolint:revive // io_uring_zcrx_area_reg.flags: dmabuf_fd is the area
	ZCRX_REG_NODEV             = 2      //nolint:revive // 7.x: no netdev, every byte copied
	ZCRX_FEATURE_RX_PAGE_SIZE  = 1 << 0 //nolint:revive
	ZCRX_FEATURE_EVENT         = 1 << 1 //nolint:revive // event_desc and zcrx_stats (copy fallbacks)
	ZCRX_EVENT_DESC_FLAG_STATS = 1 << 0 //nolint:revive
	IO_URING_QUERY_OPCODES     = 0      //nolint:revive
	IO_URING_QUERY_ZCRX        = 1      //nolint:revive

	// IORING_ZCRX_AREA_MASK selects the area id bits of an offset.
	IORING_ZCRX_AREA_MASK uint64 = ^(uint64(1)<<IORING_ZCRX_AREA_SHIFT - 1) //nolint:revive

	// IO_RQ_MAX_ENTRIES bounds rq_entries without IORING_SETUP_CLAMP (io_uring/zcrx.c, EINVAL above).
	IO_RQ_MAX_ENTRIES = 32768 //nolint:revive
)

// IoSqringOffsets is struct io_sqring_offsets. 40 bytes.
type IoSqringOffsets struct {
	_           structs.HostLayout
	Head        uint32
	Tail        uint32
	RingMask    uint32
	RingEntries uint32
	Flags       uint32
	Dropped     uint32
	Array       uint32
	Resv1       uint32
	UserAddr    uint64
}

// IoCqringOffsets is struct io_cqring_offsets. 40 bytes.
type IoCqringOffsets struct {
	_           structs.HostLayout
	Head        uint32
	Tail        uint32
	RingMask    uint32
	RingEntries uint32
	Overflow    uint32
	Cqes        uint32
	Flags       uint32
	Resv1       uint32
	UserAddr    uint64
}

// IoUringParams is struct io_uring_params, in and out of io_uring_setup(2). 120 bytes.
type IoUringParams struct {
	_            structs.HostLayout
	SqEntries    uint32
	CqEntries    uint32
	Flags        uint32
	SqThreadCPU  uint32
	SqThreadIdle uint32
	Features     uint32
	WqFd         uint32
	Resv         [3]uint32
	SqOff        IoSqringOffsets
	CqOff        IoCqringOffsets
}

// IoUringSqe is struct io_uring_sqe with the unions flattened to the members this project uses:
// Off (off/addr2), Addr, OpFlags (rw_flags/msg_flags/...), BufIndex, ZcrxIfqIdx (splice_fd_in/
// file_index/zcrx_ifq_idx), Addr3. 64 bytes.
type IoUringSqe struct {
	_           structs.HostLayout
	Opcode      uint8
	Flags       uint8
	Ioprio      uint16
	Fd          int32
	Off         uint64
	Addr        uint64
	Len         uint32
	OpFlags     uint32
	UserData    uint64
	BufIndex    uint16
	Personality uint16
	ZcrxIfqIdx  uint32
	Addr3       uint64
	Pad2        uint64
}

// IoUringCqe is struct io_uring_cqe without big_cqe[]: 16 bytes; with IORING_SETUP_CQE32 each
// entry is 32 bytes and the second half is an IoUringZcrxCqe for RECV_ZC completions.
type IoUringCqe struct {
	_        structs.HostLayout
	UserData uint64
	Res      int32
	Flags    uint32
}

// IoUringRegionDesc is struct io_uring_region_desc (v6.13). 64 bytes.
type IoUringRegionDesc struct {
	_          structs.HostLayout
	UserAddr   uint64
	Size       uint64
	Flags      uint32
	ID         uint32
	MmapOffset uint64
	Resv       [4]uint64
}

// IoUringZcrxRqe is struct io_uring_zcrx_rqe: one buffer handed back through the refill ring.
// 16 bytes.
type IoUringZcrxRqe struct {
	_   structs.HostLayout
	Off uint64 // the completion's offset, area token included
	Len uint32
	Pad uint32
}

// IoUringZcrxCqe is struct io_uring_zcrx_cqe, the second half of a 32-byte RECV_ZC CQE. 16 bytes.
type IoUringZcrxCqe struct {
	_   structs.HostLayout
	Off uint64 // area id << IORING_ZCRX_AREA_SHIFT | offset in the area
	Pad uint64
}

// IoUringZcrxOffsets is struct io_uring_zcrx_offsets: where the refill ring's head, tail and
// entries sit in the region, filled in by the kernel. 32 bytes.
type IoUringZcrxOffsets struct {
	_     structs.HostLayout
	Head  uint32
	Tail  uint32
	Rqes  uint32
	Resv2 uint32
	Resv  [2]uint64
}

// IoUringZcrxAreaReg is struct io_uring_zcrx_area_reg. 48 bytes.
type IoUringZcrxAreaReg struct {
	_           structs.HostLayout
	Addr        uint64 // host memory: the mapping; dma-buf: offset, must be 0
	Len         uint64
	RqAreaToken uint64 // out: OR into every RQE offset
	Flags       uint32
	DmabufFd    uint32
	Resv2       [2]uint64
}

// IoUringZcrxIfqReg is struct io_uring_zcrx_ifq_reg, the argument of IORING_REGISTER_ZCRX_IFQ.
// RxBufLen was reserved before 6.19 (must be 0 there), EventDesc before 7.x. 96 bytes.
type IoUringZcrxIfqReg struct {
	_         structs.HostLayout
	IfIdx     uint32
	IfRxq     uint32
	RqEntries uint32 // rounded up to a power of two by the kernel
	Flags     uint32
	AreaPtr   uint64 // *IoUringZcrxAreaReg
	RegionPtr uint64 // *IoUringRegionDesc
	Offsets   IoUringZcrxOffsets
	ZcrxID    uint32 // out: sqe.zcrx_ifq_idx for RECV_ZC
	RxBufLen  uint32 // in: 0 = page size; out: the buffer size used
	EventDesc uint64 // *ZcrxEventDesc (7.x)
	Resv      [2]uint64
}

// ZcrxStats is struct zcrx_stats (7.x): copy-fallback counters the kernel keeps in the refill
// region at ZcrxEventDesc.StatsOffset. 16 bytes.
type ZcrxStats struct {
	_         structs.HostLayout
	CopyCount uint64
	CopyBytes uint64
}

// ZcrxEventDesc is struct zcrx_event_desc (7.x). 96 bytes.
type ZcrxEventDesc struct {
	_           structs.HostLayout
	UserData    uint64
	TypeMask    uint32
	Flags       uint32
	StatsOffset uint64
	Resv2       [9]uint64
}

// ZcrxCtrl is struct zcrx_ctrl (7.x), the argument of IORING_REGISTER_ZCRX_CTRL, with the union
// (48 bytes: zcrx_ctrl_flush_rq's reserved words, the only member used here) as Union. 72 bytes.
type ZcrxCtrl struct {
	_      structs.HostLayout
	ZcrxID uint32
	Op     uint32
	Resv   [2]uint64
	Union  [6]uint64
}

// IoUringQueryHdr is struct io_uring_query_hdr (v6.18), the argument of IORING_REGISTER_QUERY.
// 40 bytes.
type IoUringQueryHdr struct {
	_         structs.HostLayout
	NextEntry uint64
	QueryData uint64
	QueryOp   uint32
	Size      uint32
	Result    int32
	Resv      [3]uint32
}

// IoUringQueryZcrx is struct io_uring_query_zcrx (v6.18). 40 bytes.
type IoUringQueryZcrx struct {
	_              structs.HostLayout
	RegisterFlags  uint64
	AreaFlags      uint64
	NrCtrlOpcodes  uint32
	Features       uint32
	RqHdrSize      uint32
	RqHdrAlignment uint32
	Resv2          uint64
}

// IoUringProbe is struct io_uring_probe with room for 256 ops (the header is 16 bytes, each op 8).
type IoUringProbe struct {
	_      structs.HostLayout
	LastOp uint8
	OpsLen uint8
	Resv   uint16
	Resv2  [3]uint32
	Ops    [256]IoUringProbeOp
}

// IoUringProbeOp is struct io_uring_probe_op. 8 bytes.
type IoUringProbeOp struct {
	_     structs.HostLayout
	Op    uint8
	Resv  uint8
	Flags uint16
	Resv2 uint32
}

// IoUringGeteventsArg is struct io_uring_getevents_arg (IORING_ENTER_EXT_ARG). 24 bytes.
type IoUringGeteventsArg struct {
	_           structs.HostLayout
	Sigmask     uint64
	SigmaskSz   uint32
	MinWaitUsec uint32
	Ts          uint64 // *unix.Timespec
}

// Sizes of the structs above, as the kernel headers have them.
const (
	SizeofIoUringParams      = 120
	SizeofIoUringSqe         = 64
	SizeofIoUringCqe         = 16
	SizeofIoUringCqe32       = 32
	SizeofIoUringRegionDesc  = 64
	SizeofIoUringZcrxRqe     = 16
	SizeofIoUringZcrxCqe     = 16
	SizeofIoUringZcrxAreaReg = 48
	SizeofIoUringZcrxIfqReg  = 96
	SizeofZcrxStats          = 16
	SizeofZcrxEventDesc      = 96
	SizeofIoUringQueryHdr    = 40
	SizeofIoUringQueryZcrx   = 40
	SizeofZcrxCtrl           = 72
)
