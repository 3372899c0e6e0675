// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package uapi

import (
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The wanted figures come from a C program compiled against Linux 7.3's
// include/uapi/linux/io_uring.h, io_uring/zcrx.h and io_uring/query.h (gcc, x86_64).
func TestIoUringLayouts(t *testing.T) {
	var p IoUringParams
	var sqe IoUringSqe
	var cqe IoUringCqe
	var rd IoUringRegionDesc
	var area IoUringZcrxAreaReg
	var reg IoUringZcrxIfqReg
	var ed ZcrxEventDesc
	var qh IoUringQueryHdr
	var qz IoUringQueryZcrx
	var ga IoUringGeteventsArg
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(io_uring_params)", unsafe.Sizeof(p), SizeofIoUringParams},
		{"io_uring_params.features", unsafe.Offsetof(p.Features), 20},
		{"io_uring_params.wq_fd", unsafe.Offsetof(p.WqFd), 24},
		{"io_uring_params.sq_off", unsafe.Offsetof(p.SqOff), 40},
		{"io_uring_params.cq_off", unsafe.Offsetof(p.CqOff), 80},
		{"sizeof(io_sqring_offsets)", unsafe.Sizeof(p.SqOff), 40},
		{"io_sqring_offsets.array", unsafe.Offsetof(p.SqOff.Array), 24},
		{"io_sqring_offsets.user_addr", unsafe.Offsetof(p.SqOff.UserAddr), 32},
		{"sizeof(io_cqring_offsets)", unsafe.Sizeof(p.CqOff), 40},
		{"io_cqring_offsets.cqes", unsafe.Offsetof(p.CqOff.Cqes), 20},
		{"io_cqring_offsets.user_addr", unsafe.Offsetof(p.CqOff.UserAddr), 32},
		{"sizeof(io_uring_sqe)", unsafe.Sizeof(sqe), SizeofIoUringSqe},
		{"io_uring_sqe.ioprio", unsafe.Offsetof(sqe.Ioprio), 2},
		{"io_uring_sqe.fd", unsafe.Offsetof(sqe.Fd), 4},
		{"io_uring_sqe.off", unsafe.Offsetof(sqe.Off), 8},
		{"io_uring_sqe.addr", unsafe.Offsetof(sqe.Addr), 16},
		{"io_uring_sqe.len", unsafe.Offsetof(sqe.Len), 24},
		{"io_uring_sqe.msg_flags", unsafe.Offsetof(sqe.OpFlags), 28},
		{"io_uring_sqe.user_data", unsafe.Offsetof(sqe.UserData), 32},
		{"io_uring_sqe.buf_index", unsafe.Offsetof(sqe.BufIndex), 40},
		{"io_uring_sqe.personality", unsafe.Offsetof(sqe.Personality), 42},
		{"io_uring_sqe.zcrx_ifq_idx", unsafe.Offsetof(sqe.ZcrxIfqIdx), 44},
		{"io_uring_sqe.addr3", unsafe.Offsetof(sqe.Addr3), 48},
		{"sizeof(io_uring_cqe)", unsafe.Sizeof(cqe), SizeofIoUringCqe},
		{"io_uring_cqe.res", unsafe.Offsetof(cqe.Res), 8},
		{"io_uring_cqe.flags", unsafe.Offsetof(cqe.Flags), 12},
		{"sizeof(io_uring_region_desc)", unsafe.Sizeof(rd), SizeofIoUringRegionDesc},
		{"io_uring_region_desc.flags", unsafe.Offsetof(rd.Flags), 16},
		{"io_uring_region_desc.id", unsafe.Offsetof(rd.ID), 20},
		{"io_uring_region_desc.mmap_offset", unsafe.Offsetof(rd.MmapOffset), 24},
		{"sizeof(io_uring_zcrx_rqe)", unsafe.Sizeof(IoUringZcrxRqe{}), SizeofIoUringZcrxRqe},
		{"sizeof(io_uring_zcrx_cqe)", unsafe.Sizeof(IoUringZcrxCqe{}), SizeofIoUringZcrxCqe},
		{"sizeof(io_uring_zcrx_offsets)", unsafe.Sizeof(IoUringZcrxOffsets{}), 32},
		{"io_uring_zcrx_offsets.rqes", unsafe.Offsetof(reg.Offsets.Rqes), 8},
		{"sizeof(io_uring_zcrx_area_reg)", unsafe.Sizeof(area), SizeofIoUringZcrxAreaReg},
		{"io_uring_zcrx_area_reg.rq_area_token", unsafe.Offsetof(area.RqAreaToken), 16},
		{"io_uring_zcrx_area_reg.flags", unsafe.Offsetof(area.Flags), 24},
		{"io_uring_zcrx_area_reg.dmabuf_fd", unsafe.Offsetof(area.DmabufFd), 28},
		{"sizeof(io_uring_zcrx_ifq_reg)", unsafe.Sizeof(reg), SizeofIoUringZcrxIfqReg},
		{"io_uring_zcrx_ifq_reg.rq_entries", unsafe.Offsetof(reg.RqEntries), 8},
		{"io_uring_zcrx_ifq_reg.flags", unsafe.Offsetof(reg.Flags), 12},
		{"io_uring_zcrx_ifq_reg.area_ptr", unsafe.Offsetof(reg.AreaPtr), 16},
		{"io_uring_zcrx_ifq_reg.region_ptr", unsafe.Offsetof(reg.RegionPtr), 24},
		{"io_uring_zcrx_ifq_reg.offsets", unsafe.Offsetof(reg.Offsets), 32},
		{"io_uring_zcrx_ifq_reg.zcrx_id", unsafe.Offsetof(reg.ZcrxID), 64},
		{"io_uring_zcrx_ifq_reg.rx_buf_len", unsafe.Offsetof(reg.RxBufLen), 68},
		{"io_uring_zcrx_ifq_reg.event_desc", unsafe.Offsetof(reg.EventDesc), 72},
		{"sizeof(zcrx_stats)", unsafe.Sizeof(ZcrxStats{}), SizeofZcrxStats},
		{"sizeof(zcrx_event_desc)", unsafe.Sizeof(ed), SizeofZcrxEventDesc},
		{"zcrx_event_desc.type_mask", unsafe.Offsetof(ed.TypeMask), 8},
		{"zcrx_event_desc.flags", unsafe.Offsetof(ed.Flags), 12},
		{"zcrx_event_desc.stats_offset", unsafe.Offsetof(ed.StatsOffset), 16},
		{"sizeof(io_uring_query_hdr)", unsafe.Sizeof(qh), SizeofIoUringQueryHdr},
		{"io_uring_query_hdr.query_data", unsafe.Offsetof(qh.QueryData), 8},
		{"io_uring_query_hdr.query_op", unsafe.Offsetof(qh.QueryOp), 16},
		{"io_uring_query_hdr.size", unsafe.Offsetof(qh.Size), 20},
		{"io_uring_query_hdr.result", unsafe.Offsetof(qh.Result), 24},
		{"sizeof(io_uring_query_zcrx)", unsafe.Sizeof(qz), SizeofIoUringQueryZcrx},
		{"io_uring_query_zcrx.area_flags", unsafe.Offsetof(qz.AreaFlags), 8},
		{"io_uring_query_zcrx.nr_ctrl_opcodes", unsafe.Offsetof(qz.NrCtrlOpcodes), 16},
		{"io_uring_query_zcrx.features", unsafe.Offsetof(qz.Features), 20},
		{"io_uring_query_zcrx.rq_hdr_size", unsafe.Offsetof(qz.RqHdrSize), 24},
		{"io_uring_query_zcrx.rq_hdr_alignment", unsafe.Offsetof(qz.RqHdrAlignment), 28},
		{"sizeof(zcrx_ctrl)", unsafe.Sizeof(ZcrxCtrl{}), SizeofZcrxCtrl},
		{"zcrx_ctrl.zc_flush", unsafe.Offsetof(ZcrxCtrl{}.Union), 24},
		{"sizeof(io_uring_probe_op)", unsafe.Sizeof(IoUringProbeOp{}), 8},
		{"io_uring_probe.ops", unsafe.Offsetof(IoUringProbe{}.Ops), 16},
		{"sizeof(io_uring_getevents_arg)", unsafe.Sizeof(ga), 24},
		{"io_uring_getevents_arg.ts", unsafe.Offsetof(ga.Ts), 16},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}

func TestIoUringConstants(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want uint64
	}{
		{"IORING_OP_RECV_ZC", IORING_OP_RECV_ZC, 58},
		{"IORING_REGISTER_ZCRX_IFQ", IORING_REGISTER_ZCRX_IFQ, 32},
		{"IORING_REGISTER_QUERY", IORING_REGISTER_QUERY, 35},
		{"IORING_REGISTER_ZCRX_CTRL", IORING_REGISTER_ZCRX_CTRL, 36},
		{"IORING_REGISTER_ENABLE_RINGS", IORING_REGISTER_ENABLE_RINGS, 12},
		{"IORING_SETUP_CQE32", IORING_SETUP_CQE32, 2048},
		{"IORING_SETUP_SINGLE_ISSUER", IORING_SETUP_SINGLE_ISSUER, 4096},
		{"IORING_SETUP_DEFER_TASKRUN", IORING_SETUP_DEFER_TASKRUN, 8192},
		{"IORING_SETUP_R_DISABLED", IORING_SETUP_R_DISABLED, 64},
		{"IORING_OFF_CQ_RING", IORING_OFF_CQ_RING, 134217728},
		{"IORING_OFF_SQES", IORING_OFF_SQES, 268435456},
		{"IORING_ZCRX_AREA_MASK", IORING_ZCRX_AREA_MASK, 18446462598732840960},
		{"ZCRX_FEATURE_EVENT", ZCRX_FEATURE_EVENT, 2},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	// The syscall numbers come from x/sys; x86_64 values as a cross-check.
	if runtime.GOARCH == "amd64" && (unix.SYS_IO_URING_SETUP != 425 || unix.SYS_IO_URING_ENTER != 426 || unix.SYS_IO_URING_REGISTER != 427) {
		t.Errorf("io_uring syscall numbers %d/%d/%d, want 425/426/427", unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER)
	}
}
