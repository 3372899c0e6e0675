// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package ethtool

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
	"golang.org/x/sys/unix"
)

// This file issues SIOCETHTOOL ioctls: a struct ifreq naming the interface, and ifr_data pointing
// at the command struct in Go memory. The command buffers are heap slices of uint64 (8-byte
// aligned, no Go pointers inside) kept alive past the call.

// IoctlClient issues the SIOCETHTOOL commands that have no ethtool netlink equivalent in every
// kernel this tool supports: driver info, ntuple rules, the RSS table and RSS contexts. Every
// command goes through ioctl on the one socket it was made with.
type IoctlClient struct {
	fd    int
	owned bool
}

// OpenIoctl opens an AF_INET datagram socket for the ioctls. Close it.
func OpenIoctl() (*IoctlClient, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open ioctl socket: %w", err)
	}
	return &IoctlClient{fd: fd, owned: true}, nil
}

// NewIoctl returns a client issuing its ioctls on fd, a socket the caller owns (any socket of
// the network namespace to act in; Close leaves it open).
func NewIoctl(fd int) *IoctlClient { return &IoctlClient{fd: fd} }

// Close closes the socket OpenIoctl opened.
func (c *IoctlClient) Close() error {
	if !c.owned {
		return nil
	}
	return unix.Close(c.fd)
}

// ioctl runs one SIOCETHTOOL command on ifname with data as the command struct.
func (c *IoctlClient) ioctl(ifname string, data unsafe.Pointer) error {
	if len(ifname) >= unix.IFNAMSIZ {
		return unix.EINVAL
	}
	ifr := &uapi.Ifreq{Data: data}
	copy(ifr.Name[:], ifname)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(c.fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(ifr)))
	runtime.KeepAlive(ifr)
	if errno != 0 {
		return errno
	}
	return nil
}

// words allocates an 8-byte aligned zeroed buffer of at least n bytes.
func words(n int) []uint64 { return make([]uint64, (n+7)/8) }

// u32s views n u32s at byte offset off of buf (off a multiple of 4, inside buf): the variable
// arrays that follow the command headers. Slicing a view of the whole buffer keeps every pointer
// inside the allocation (checkptr).
func u32s(buf []uint64, off, n int) []uint32 {
	all := unsafe.Slice((*uint32)(unsafe.Pointer(&buf[0])), len(buf)*2)
	return all[off/4 : off/4+n]
}

// DriverInfo is ETHTOOL_GDRVINFO.
func (c *IoctlClient) DriverInfo(ifname string) (*Driver, error) {
	di := &unix.EthtoolDrvinfo{Cmd: unix.ETHTOOL_GDRVINFO}
	if err := c.ioctl(ifname, unsafe.Pointer(di)); err != nil {
		return nil, NewError(ifname, "get driver info", "", err, "")
	}
	return driverOf(di), nil
}

func driverOf(di *unix.EthtoolDrvinfo) *Driver {
	return &Driver{
		Driver:   cstring(di.Driver[:]),
		Version:  cstring(di.Version[:]),
		Firmware: cstring(di.Fw_version[:]),
		Bus:      cstring(di.Bus_info[:]),
	}
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// rxnfc runs an rxnfc command whose reply fits the fixed struct.
func (c *IoctlClient) rxnfc(ifname string, fill func(*uapi.EthtoolRxnfc)) (*uapi.EthtoolRxnfc, error) {
	buf := words(uapi.SizeofEthtoolRxnfc)
	nfc := (*uapi.EthtoolRxnfc)(unsafe.Pointer(&buf[0]))
	fill(nfc)
	if err := c.ioctl(ifname, unsafe.Pointer(nfc)); err != nil {
		return nil, err
	}
	out := *nfc
	return &out, nil
}

// RXRings is ETHTOOL_GRXRINGS: the number of RX rings RSS spreads over.
func (c *IoctlClient) RXRings(ifname string) (uint32, error) {
	nfc, err := c.rxnfc(ifname, func(n *uapi.EthtoolRxnfc) { n.Cmd = unix.ETHTOOL_GRXRINGS })
	if err != nil {
		return 0, NewError(ifname, "get RX ring count", "", err, "ethtool -x "+ifname)
	}
	return uint32(nfc.Data), nil
}

// RuleCount is ETHTOOL_GRXCLSRLCNT: rules installed, table size, and RX_CLS_LOC_SPECIAL (the
// driver picks the slot).
func (c *IoctlClient) RuleCount(ifname string) (count, tableSize uint32, special bool, err error) {
	nfc, err := c.rxnfc(ifname, func(n *uapi.EthtoolRxnfc) { n.Cmd = unix.ETHTOOL_GRXCLSRLCNT })
	if err != nil {
		return 0, 0, false, NewError(ifname, "get RX class rule count", "", err, "ethtool -n "+ifname)
	}
	return nfc.RuleCnt, uint32(nfc.Data) &^ uapi.RX_CLS_LOC_SPECIAL, nfc.Data&uapi.RX_CLS_LOC_SPECIAL != 0, nil
}

// RuleLocations is ETHTOOL_GRXCLSRLALL for up to count rules.
func (c *IoctlClient) RuleLocations(ifname string, count uint32) ([]uint32, error) {
	if count == 0 {
		return nil, nil
	}
	if count > 1<<20 {
		return nil, fmt.Errorf("list rules %s: driver reports %d rules, more than this tool handles", ifname, count)
	}
	buf := words(uapi.OffsetofEthtoolRxnfcLocs + 4*int(count))
	nfc := (*uapi.EthtoolRxnfc)(unsafe.Pointer(&buf[0]))
	nfc.Cmd = unix.ETHTOOL_GRXCLSRLALL
	nfc.RuleCnt = count
	if err := c.ioctl(ifname, unsafe.Pointer(nfc)); err != nil {
		return nil, NewError(ifname, "list RX class rules", "", err, "ethtool -n "+ifname)
	}
	n := min(nfc.RuleCnt, count)
	locs := u32s(buf, uapi.OffsetofEthtoolRxnfcLocs, int(n))
	return append([]uint32(nil), locs...), nil
}

// Rule is ETHTOOL_GRXCLSRULE.
func (c *IoctlClient) Rule(ifname string, loc uint32) (*Rule, error) {
	nfc, err := c.rxnfc(ifname, func(n *uapi.EthtoolRxnfc) {
		n.Cmd = unix.ETHTOOL_GRXCLSRULE
		n.FS.Location = loc
	})
	if err != nil {
		return nil, NewError(ifname, fmt.Sprintf("get rule %d", loc), "", err, "ethtool -n "+ifname)
	}
	r := decodeFlowSpec(&nfc.FS, nfc.RuleCnt)
	return &r, nil
}

// insertRequest builds the SRXCLSRLINS command for r (pure; golden-tested).
func insertRequest(r Rule) uapi.EthtoolRxnfc {
	nfc := uapi.EthtoolRxnfc{Cmd: unix.ETHTOOL_SRXCLSRLINS, FS: encodeFlowSpec(r)}
	nfc.FlowType = nfc.FS.FlowType
	if r.Context != 0 {
		nfc.RuleCnt = r.Context // the rss_context member of the union
	}
	return nfc
}

// InsertRule is ETHTOOL_SRXCLSRLINS; r.Location may be RX_CLS_LOC_ANY. It returns the location
// used. Needs CAP_NET_ADMIN.
func (c *IoctlClient) InsertRule(ifname string, r Rule) (uint32, error) {
	req := insertRequest(r)
	nfc, err := c.rxnfc(ifname, func(n *uapi.EthtoolRxnfc) { *n = req })
	if err != nil {
		return 0, NewError(ifname, "insert rule "+r.String(), "", err, "ethtool -N "+ifname+" "+r.String())
	}
	return nfc.FS.Location, nil
}

// DeleteRule is ETHTOOL_SRXCLSRLDEL. Needs CAP_NET_ADMIN.
func (c *IoctlClient) DeleteRule(ifname string, loc uint32) error {
	_, err := c.rxnfc(ifname, func(n *uapi.EthtoolRxnfc) {
		n.Cmd = unix.ETHTOOL_SRXCLSRLDEL
		n.FS.Location = loc
	})
	if err != nil {
		return NewError(ifname, fmt.Sprintf("delete rule %d", loc), "", err, fmt.Sprintf("ethtool -N %s delete %d", ifname, loc))
	}
	return nil
}

// MaxIndir bounds tables from the driver: real NICs have at most a few thousand entries.
const MaxIndir = 1 << 16

// Indir is ETHTOOL_GRXFHINDIR: the main RSS indirection table, nil when the driver has none.
func (c *IoctlClient) Indir(ifname string) ([]uint32, error) {
	hdr := words(uapi.SizeofEthtoolRxfhIndir)
	h := (*uapi.EthtoolRxfhIndir)(unsafe.Pointer(&hdr[0]))
	h.Cmd = unix.ETHTOOL_GRXFHINDIR
	if err := c.ioctl(ifname, unsafe.Pointer(h)); err != nil {
		return nil, NewError(ifname, "get RSS indirection table size", "", err, "ethtool -x "+ifname)
	}
	size := h.Size
	if size == 0 {
		return nil, nil
	}
	if size > MaxIndir {
		return nil, fmt.Errorf("get RSS indirection table %s: driver reports %d entries, more than %d", ifname, size, MaxIndir)
	}
	buf := words(uapi.SizeofEthtoolRxfhIndir + 4*int(size))
	h = (*uapi.EthtoolRxfhIndir)(unsafe.Pointer(&buf[0]))
	h.Cmd, h.Size = unix.ETHTOOL_GRXFHINDIR, size
	if err := c.ioctl(ifname, unsafe.Pointer(h)); err != nil {
		return nil, NewError(ifname, "get RSS indirection table", "", err, "ethtool -x "+ifname)
	}
	t := u32s(buf, uapi.SizeofEthtoolRxfhIndir, int(size))
	return append([]uint32(nil), t...), nil
}

// indirRequest builds the SRXFHINDIR command: header then the table (pure; golden-tested).
func indirRequest(table []uint32) []uint64 {
	buf := words(uapi.SizeofEthtoolRxfhIndir + 4*len(table))
	h := (*uapi.EthtoolRxfhIndir)(unsafe.Pointer(&buf[0]))
	h.Cmd, h.Size = unix.ETHTOOL_SRXFHINDIR, uint32(len(table))
	copy(u32s(buf, uapi.SizeofEthtoolRxfhIndir, len(table)), table)
	return buf
}

// SetIndir is ETHTOOL_SRXFHINDIR; an empty table resets the driver default. Needs CAP_NET_ADMIN.
func (c *IoctlClient) SetIndir(ifname string, table []uint32) error {
	buf := indirRequest(table)
	if err := c.ioctl(ifname, unsafe.Pointer(&buf[0])); err != nil {
		if len(table) == 0 {
			return NewError(ifname, "reset RSS indirection table", "", err, "ethtool -X "+ifname+" default")
		}
		return NewError(ifname, "set RSS indirection table", "", err, "ethtool -X "+ifname+" weight ...")
	}
	return nil
}

// rxfhRequest builds an SRSSH/GRSSH command: header then table (pure; golden-tested).
func rxfhRequest(cmd, ctx uint32, table []uint32) []uint64 {
	buf := words(uapi.SizeofEthtoolRxfh + 4*len(table))
	h := (*uapi.EthtoolRxfh)(unsafe.Pointer(&buf[0]))
	h.Cmd, h.RSSContext, h.IndirSize = cmd, ctx, uint32(len(table))
	copy(u32s(buf, uapi.SizeofEthtoolRxfh, len(table)), table)
	return buf
}

// RSSContext is ETHTOOL_GRSSH for context ctx (> 0): its indirection table. A missing context
// is ENOENT, a driver without contexts EOPNOTSUPP.
func (c *IoctlClient) RSSContext(ifname string, ctx uint32) ([]uint32, error) {
	op := fmt.Sprintf("get RSS context %d", ctx)
	cmd := fmt.Sprintf("ethtool -x %s context %d", ifname, ctx)
	hdr := rxfhRequest(unix.ETHTOOL_GRSSH, ctx, nil)
	if err := c.ioctl(ifname, unsafe.Pointer(&hdr[0])); err != nil {
		return nil, NewError(ifname, op, "", err, cmd)
	}
	h := (*uapi.EthtoolRxfh)(unsafe.Pointer(&hdr[0]))
	size, keySize := h.IndirSize, h.KeySize
	if size > MaxIndir || keySize > MaxIndir {
		return nil, fmt.Errorf("%s %s: driver reports %d entries and a %d-byte key", op, ifname, size, keySize)
	}
	buf := words(uapi.SizeofEthtoolRxfh + 4*int(size) + int(keySize))
	h = (*uapi.EthtoolRxfh)(unsafe.Pointer(&buf[0]))
	h.Cmd, h.RSSContext, h.IndirSize, h.KeySize = unix.ETHTOOL_GRSSH, ctx, size, keySize
	if err := c.ioctl(ifname, unsafe.Pointer(h)); err != nil {
		return nil, NewError(ifname, op, "", err, cmd)
	}
	t := u32s(buf, uapi.SizeofEthtoolRxfh, int(size))
	return append([]uint32{}, t...), nil
}

// CreateRSSContext is ETHTOOL_SRSSH with ETH_RXFH_CONTEXT_ALLOC; it returns the new context ID.
// Needs CAP_NET_ADMIN.
func (c *IoctlClient) CreateRSSContext(ifname string, table []uint32) (uint32, error) {
	buf := rxfhRequest(unix.ETHTOOL_SRSSH, uapi.ETH_RXFH_CONTEXT_ALLOC, table)
	if err := c.ioctl(ifname, unsafe.Pointer(&buf[0])); err != nil {
		return 0, NewError(ifname, "create RSS context", "", err, "ethtool -X "+ifname+" context new")
	}
	h := (*uapi.EthtoolRxfh)(unsafe.Pointer(&buf[0]))
	return h.RSSContext, nil
}

// DeleteRSSContext is ETHTOOL_SRSSH with indir_size 0 and key_size 0 (delete). Needs
// CAP_NET_ADMIN.
func (c *IoctlClient) DeleteRSSContext(ifname string, ctx uint32) error {
	// indir_size 0 on a non-default context means delete (net/ethtool/ioctl.c ethtool_set_rxfh).
	buf := rxfhRequest(unix.ETHTOOL_SRSSH, ctx, nil)
	if err := c.ioctl(ifname, unsafe.Pointer(&buf[0])); err != nil {
		return NewError(ifname, fmt.Sprintf("delete RSS context %d", ctx), "", err, fmt.Sprintf("ethtool -X %s context %d delete", ifname, ctx))
	}
	return nil
}
