#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The kernel's own judges (issue 13): boots the 7.x guest once with the softnic module and runs
#   1. the kernel's unchanged devmem.py with the upstream C ncdevmem, then with ours under the same
#      file name (drivers/net/hw/ncdevmem), over IPv4 and IPv6, the remote end in a network
#      namespace (REMOTE_TYPE=netns), and prints every KTAP output; the same for its netkit
#      siblings nk_devmem.py and userns_devmem.py (IPv6; BPF objects built here with clang), and
#      the kernel's io_uring zcrx selftest iou-zcrx.py with its C binary (built here against a
#      liburing with the zcrx API, from Debian's archive);
#   2. a side-by-side of devmem RX receivers fed by the same sender in interleaved rounds: the C
#      `ncdevmem -l`, ours with the same command line (and with --dontneed-batch), and
#      `ncdevmem run --devmem-rx`: Gbps, receiver CPU-seconds per GB, DONTNEED calls per token;
#   3. both binaries on the same command lines (devmem.py's and error cases), exit codes and output
#      line shapes compared (judges/compare.py).
# Exits non-zero when any kselftest case is not PASS (devmem.py and its siblings for either binary), an exit code differs between
# the two binaries, a side-by-side receiver fails, or the guest does not report.
#
# Inputs: the 7.x kernel and the softnic module come from the env file that run-tests.sh writes
# after building softnic (KDIR, KSRC, SOFTNIC_KO, KREL); each can be overridden. The C ncdevmem is
# built statically from the same linux-source package (cached by its version), as are the netkit
# tests' BPF objects (clang, libbpf-dev) and iou-zcrx (static, liburing from Debian's archive,
# cached by both versions). The guest's userland (python3, PyYAML, ip, tc, ethtool, bpftool, socat,
# bash, unshare/nsenter, the kselftest libraries) is packed once into a base cpio cached by the
# source and package versions.
#
# Environment:
#   NCDEVMEM_VM_CACHE          cache directory (default /var/cache/ncdevmem-vm)
#   NCDEVMEM_JUDGES_ENV        softnic env file (default $CACHE/softnic/7.x.env, written by run-tests.sh)
#   NCDEVMEM_JUDGES_KDIR       unpacked kernel dir holding vmlinuz and krel (default: KDIR of the env file)
#   NCDEVMEM_JUDGES_KSRC       prepared linux-source tree (default: KSRC of the env file, else the
#                              source .deb in $CACHE/debs is extracted)
#   NCDEVMEM_JUDGES_KO         softnic module (default: SOFTNIC_KO of the env file)
#   NCDEVMEM_JUDGES_KO_ARGS    insmod arguments for it (default none)
#   NCDEVMEM_JUDGES_IFS        "LOCAL PEER" netdev names the module creates (default "snic0 snic1")
#   NCDEVMEM_JUDGES_IPV6       1 (default) runs devmem.py over IPv4 and IPv6; 0 IPv4 only
#   NCDEVMEM_JUDGES_DEVMEM     1 (default) runs devmem.py; 0 runs only the rest (development)
#   NCDEVMEM_JUDGES_C          where the upstream C ncdevmem runs as the reference: v4 (default)
#                              devmem.py over IPv4, the run issue 13 asks for; all: also devmem.py
#                              over IPv6 and the netkit siblings (about 70 s more of guest time; run
#                              it when softnic changes, to show softnic stays faithful there too).
#                              Ours runs every kselftest either way.
#   NCDEVMEM_JUDGES_SIBLINGS   the other kselftests to run (default "nk_devmem.py userns_devmem.py
#                              iou-zcrx.py"; "" none)
#   NCDEVMEM_JUDGES_BUDGET_DEVMEM, _NK, _ZCRX   seconds each run of devmem.py, of a netkit sibling
#                              and of iou-zcrx.py may take (default 240, 240, 150: about 2-3x
#                              what each takes on a loaded 2-CPU host, so only a hang trips them)
#   NCDEVMEM_JUDGES_COMPARE    1 (default) runs compare.py on the command lines devmem.py does not
#                              run itself; all: on every one (text differences of those too); 0 skips it
#   NCDEVMEM_JUDGES_ROUNDS     side-by-side rounds (default 3; 0 skips the side-by-side)
#   NCDEVMEM_JUDGES_MB         MiB each legacy receiver takes per round (default 16)
#   NCDEVMEM_JUDGES_TIME       seconds of each `ncdevmem run --devmem-rx` round (default 2)
#   NCDEVMEM_JUDGES_TIMEOUT    seconds the guest may run (default 1800; NCDEVMEM_VM_TIMEOUT if set)
#   NCDEVMEM_VM_SMP, NCDEVMEM_VM_MEM   guest CPUs (default 2) and memory in MiB (default 2048)
set -euo pipefail

# The whole script is one compound command, so bash parses it before running any of it: an edit to
# this file while a run waits for the cache lock cannot make that run read a half-old script.
{
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
jdir=$here/judges
# shellcheck source=lib.sh
. "$here/lib.sh"
export PATH=/usr/local/go/bin:$HOME/go/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C

CACHE=${NCDEVMEM_VM_CACHE:-/var/cache/ncdevmem-vm}
ENVFILE=${NCDEVMEM_JUDGES_ENV:-$CACHE/softnic/7.x.env}
IFS_PAIR=${NCDEVMEM_JUDGES_IFS:-"snic0 snic1"}
KO_ARGS=${NCDEVMEM_JUDGES_KO_ARGS:-}
IPV6=${NCDEVMEM_JUDGES_IPV6:-1}
DEVMEM=${NCDEVMEM_JUDGES_DEVMEM:-1}
CREF=${NCDEVMEM_JUDGES_C:-v4}
COMPARE=${NCDEVMEM_JUDGES_COMPARE:-1}
SIBLINGS=${NCDEVMEM_JUDGES_SIBLINGS-nk_devmem.py userns_devmem.py iou-zcrx.py}
BUDGET_DEVMEM=${NCDEVMEM_JUDGES_BUDGET_DEVMEM:-240}
BUDGET_NK=${NCDEVMEM_JUDGES_BUDGET_NK:-240}
BUDGET_ZCRX=${NCDEVMEM_JUDGES_BUDGET_ZCRX:-150}
ROUNDS=${NCDEVMEM_JUDGES_ROUNDS:-3}
MB=${NCDEVMEM_JUDGES_MB:-16}
RUNTIME=${NCDEVMEM_JUDGES_TIME:-2}
TIMEOUT=${NCDEVMEM_JUDGES_TIMEOUT:-${NCDEVMEM_VM_TIMEOUT:-1800}}
SMP=${NCDEVMEM_VM_SMP:-2}
MEM=${NCDEVMEM_VM_MEM:-2048}
# Bump when the base cpio's contents or layout change, so a stale cached base is not reused.
PACK_REV=2
# liburing with the zcrx API (io_uring_register_ifq): bookworm has 2.3, trixie 2.9; sid's, pinned
# with its SHA-256 from the archive's index. If the pool drops it, the newest in sid is taken
# through a private apt root (and said).
LIBURING_VER=2.15-1
LIBURING_SHA256="liburing-dev=4582dcfd95abb2bf5dd911bca3fe3fb35b955c55be1c95412cdac4823f0212df
liburing2=e1034703cc586b452f4e7ed39fdeba826e338d7796b45dde3965ab47fa76cb1e"

# Host packages: QEMU and the guest userland copied from the host, and the C tool's build
# (YNL code generation needs PyYAML and jsonschema; a static link needs libc6-dev).
HOST_PKGS="qemu-system-x86 busybox-static cpio xz-utils gzip python3 python3-yaml python3-jsonschema socat
ethtool iproute2 bash coreutils gcc make libc6-dev flex bison bc clang llvm libbpf-dev bpftool util-linux curl"

t_all=$(date +%s)
t_step=$t_all
step_name=
step() {
	local now
	now=$(date +%s)
	[ -n "$step_name" ] && printf '=== judges: %-36s %4ds\n' "$step_name" $((now - t_step))
	step_name=$*
	t_step=$now
	[ -n "$step_name" ] && printf -- '--- judges: %s\n' "$step_name"
	return 0
}
die() {
	echo "judges.sh: $*" >&2
	exit 1
}
note() { echo "judges.sh: $*" >&2; }

for v in ROUNDS MB RUNTIME TIMEOUT SMP MEM BUDGET_DEVMEM BUDGET_NK BUDGET_ZCRX; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "the setting for $v (${!v}) is not a whole number"
done
case "$IPV6" in 0 | 1) ;; *) die "NCDEVMEM_JUDGES_IPV6=$IPV6: want 0 or 1" ;; esac
case "$DEVMEM" in 0 | 1) ;; *) die "NCDEVMEM_JUDGES_DEVMEM=$DEVMEM: want 0 or 1" ;; esac
case "$CREF" in v4 | all) ;; *) die "NCDEVMEM_JUDGES_C=$CREF: want v4 or all" ;; esac
case "$COMPARE" in 0 | 1 | all) ;; *) die "NCDEVMEM_JUDGES_COMPARE=$COMPARE: want 0, 1 or all" ;; esac
for s in $SIBLINGS; do
	case "$s" in nk_devmem.py | userns_devmem.py | iou-zcrx.py) ;; *) die "NCDEVMEM_JUDGES_SIBLINGS: unknown '$s' (want nk_devmem.py, userns_devmem.py, iou-zcrx.py)" ;; esac
done
read -r IF_LOCAL IF_PEER <<<"$IFS_PAIR"
[ -n "$IF_LOCAL" ] && [ -n "$IF_PEER" ] || die "NCDEVMEM_JUDGES_IFS='$IFS_PAIR': want two netdev names"
[ "$(id -u)" = 0 ] || die "needs root (apt-get, the cache in $CACHE): run it with sudo"

# --- inputs from the softnic build ---------------------------------------------------------------
KDIR= KSRC= SOFTNIC_KO= KREL=
if [ -f "$ENVFILE" ]; then
	# shellcheck disable=SC1090
	. "$ENVFILE"
fi
KDIR=${NCDEVMEM_JUDGES_KDIR:-$KDIR}
KSRC=${NCDEVMEM_JUDGES_KSRC:-$KSRC}
KO=${NCDEVMEM_JUDGES_KO:-$SOFTNIC_KO}
[ -n "$KDIR" ] || die "no 7.x kernel: $ENVFILE is missing or names no KDIR (run scripts/vm/run-tests.sh with 7.x first, or set NCDEVMEM_JUDGES_KDIR)"
[ -f "$KDIR/vmlinuz" ] && [ -f "$KDIR/krel" ] || die "$KDIR holds no vmlinuz and krel (an unpacked kernel of run-tests.sh)"
[ -n "$KO" ] && [ -f "$KO" ] || die "no softnic module: '$KO' (set SOFTNIC_KO in $ENVFILE or NCDEVMEM_JUDGES_KO)"
[ -z "$KREL" ] && KREL=$(cat "$KDIR/krel")
[ "$KREL" = "$(cat "$KDIR/krel")" ] || die "KREL=$KREL but $KDIR is $(cat "$KDIR/krel")"
vermagic=$(modinfo -F vermagic "$KO" 2>/dev/null || true)
case "$vermagic" in "$KREL "*) ;; *) die "$KO has vermagic '$vermagic', the guest kernel is $KREL" ;; esac

# When run-tests.sh runs this script it already holds the cache lock on fd 9; otherwise take it.
if [ "$(readlink /proc/self/fd/9 2>/dev/null || true)" != "$CACHE/lock" ]; then
	mkdir -p "$CACHE"
	exec 9>"$CACHE/lock"
	flock -n 9 || { note "another run holds $CACHE/lock, waiting"; flock 9; }
fi

step "host packages"
# shellcheck disable=SC2086
install_pkgs $HOST_PKGS

# --- the linux-source package: its version keys every cache below ---------------------------------
mm=$(echo "$KREL" | cut -d. -f1,2)
srcdeb=$(ls "$CACHE"/debs/linux-source-"$mm"_*.deb 2>/dev/null | sort -V | tail -1 || true)
[ -n "$srcdeb" ] || die "no linux-source-$mm .deb in $CACHE/debs (run-tests.sh downloads it for 7.x)"
srcver=$(dpkg-deb -f "$srcdeb" Version)
kver=$(dpkg-deb -f "$(ls "$CACHE"/debs/linux-binary-"$KREL"_*.deb 2>/dev/null | tail -1)" Version 2>/dev/null || echo "?")
[ "$kver" = "$srcver" ] || note "linux-source-$mm is $srcver, the kernel package is $kver"
J=$CACHE/judges
cdir=$J/c/linux-source-${mm}_$srcver
mkdir -p "$J/c" "$J/base" "$J/work"

# --- the C ncdevmem and the kselftest Python libraries, from the same source ----------------------
step "C ncdevmem (linux-source-$mm $srcver)"
if [ ! -x "$cdir/ncdevmem" ] || [ ! -s "$cdir/ksrc.tar" ]; then
	b=$J/c/build
	rm -rf "$b"
	mkdir -p "$b"
	if [ -n "$KSRC" ] && [ -f "$KSRC/Makefile" ] && [ -d "$KSRC/tools/testing/selftests/drivers/net/hw" ]; then
		# The prepared tree is shared: only `make headers` writes into it (usr/include); the YNL
		# build runs in a copy of tools/.
		note "using the prepared tree $KSRC"
		[ -f "$KSRC/usr/include/linux/netdev.h" ] || nice make -s -C "$KSRC" headers >/dev/null ||
			die "make headers in $KSRC failed"
		src=$b/src
		mkdir -p "$src/Documentation" "$src/usr" "$src/include"
		cp -a "$KSRC/tools" "$src/"
		cp -a "$KSRC/Documentation/netlink" "$src/Documentation/"
		cp -a "$KSRC/usr/include" "$src/usr/"
		cp -a "$KSRC/include/uapi" "$src/include/"
		# YNL's generator walks up from the spec to the file MAINTAINERS to name the kernel root,
		# and loops for ever without it.
		cp "$KSRC/MAINTAINERS" "$src/"
	else
		note "extracting $(basename "$srcdeb")"
		dpkg-deb --fsys-tarfile "$srcdeb" | tar -xO --wildcards './usr/src/linux-source-*.tar.*' | tar -xJ -C "$b"
		src=$(ls -d "$b"/linux-source-* | head -1)
		# Bookworm's kernel headers predate the devmem uAPI: use the source's own.
		nice make -s -C "$src" headers >/dev/null || die "make headers in $src failed"
	fi
	# /usr/bin/python3 with Debian's PyYAML and jsonschema, whatever python3 comes first in PATH.
	mkdir -p "$b/out"
	PATH=/usr/sbin:/usr/bin:/sbin:/bin nice timeout 600 make -s -C "$src/tools/testing/selftests/drivers/net/hw" \
		OUTPUT="$b/out" LDFLAGS=-static "$b/out/ncdevmem" >"$b/make.log" 2>&1 ||
		{ tail -n 30 "$b/make.log" >&2; die "building the C ncdevmem failed"; }
	file "$b/out/ncdevmem" | grep -q 'statically linked' || die "the C ncdevmem is not statically linked"
	strip "$b/out/ncdevmem"
	# The kselftest libraries in the in-tree layout devmem.py expects.
	(cd "$src" && tar -cf "$b/ksrc.tar" tools/testing/selftests/net/lib/py tools/testing/selftests/drivers/net/lib \
		tools/testing/selftests/drivers/net/hw/lib tools/testing/selftests/drivers/net/hw/devmem.py \
		tools/testing/selftests/drivers/net/hw/devmem_lib.py \
		$(cd "$src" && ls tools/testing/selftests/drivers/net/hw/userns_devmem.py tools/testing/selftests/drivers/net/hw/nk_devmem.py 2>/dev/null) \
		tools/net/ynl/pyynl Documentation/netlink/specs)
	rm -rf "$cdir.tmp"
	mkdir -p "$cdir.tmp"
	cp "$b/out/ncdevmem" "$b/ksrc.tar" "$cdir.tmp/"
	rm -rf "$cdir"
	mv "$cdir.tmp" "$cdir"
	rm -rf "$b"
fi
ls -l "$cdir/ncdevmem" | awk '{print "judges.sh: C ncdevmem " $5 " bytes"}' >&2

# A source tree of the package with its uAPI headers installed (usr/include), for the two builds
# below: the prepared tree when there is one (only `make headers` writes into it, as above), else
# the source .deb extracted once into $J/src (removed at the end).
srctree=
src_tree() {
	[ -n "$srctree" ] && return 0
	if [ -n "$KSRC" ] && [ -f "$KSRC/Makefile" ] && [ -d "$KSRC/tools/testing/selftests/drivers/net/hw" ]; then
		srctree=$KSRC
	else
		note "extracting $(basename "$srcdeb")"
		rm -rf "$J/src"
		mkdir -p "$J/src"
		dpkg-deb --fsys-tarfile "$srcdeb" | tar -xO --wildcards './usr/src/linux-source-*.tar.*' | tar -xJ -C "$J/src"
		srctree=$(ls -d "$J"/src/linux-source-* | head -1)
	fi
	[ -f "$srctree/usr/include/linux/netdev.h" ] || nice make -s -C "$srctree" headers >/dev/null ||
		die "make headers in $srctree failed"
}
H_SRC=tools/testing/selftests/drivers/net/hw

# --- the netkit tests' BPF objects (nk_*.bpf.c), built as the kselftest's bpf.mk does: clang
# --target=bpf with the source's uAPI headers and libbpf's helper headers (libbpf-dev). Keyed by the
# source version, clang's and libbpf-dev's. ----------------------------------------------------------
step "BPF objects (clang)"
clangver=$(clang --version | head -1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1)
bpfdir=$J/bpf/linux-source-${mm}_${srcver}+clang-${clangver}+libbpf-$(dpkg-query -W -f='${Version}' libbpf-dev)
if [ ! -s "$bpfdir/nk_forward.bpf.o" ]; then
	src_tree
	rm -rf "$bpfdir.tmp"
	mkdir -p "$bpfdir.tmp"
	# clang's own default include dirs after ours, as bpf.mk's get_sys_includes adds them.
	sysinc=$(clang -v -E - </dev/null 2>&1 | sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
	for c in "$srctree/$H_SRC"/*.bpf.c; do
		o=$(basename "$c" .c).o
		# shellcheck disable=SC2086
		clang -O2 -g --target=bpf -I"$srctree/usr/include" $sysinc -c "$c" -o "$bpfdir.tmp/$o" ||
			die "clang failed on $c"
	done
	rm -rf "$bpfdir"
	mv "$bpfdir.tmp" "$bpfdir"
fi
note "BPF objects: $(cd "$bpfdir" && ls | tr '\n' ' ')"

# --- iou-zcrx (the io_uring zcrx selftest's C half), static against liburing's zcrx API -----------
step "iou-zcrx (liburing $LIBURING_VER)"
# liburing_debs: prints the two .debs (liburing-dev, liburing2) in $J/debs, downloading the pinned
# version from the pool, or the newest in sid through a private apt root when the pin is gone.
liburing_debs() {
	local d=$J/debs uri p f sum ok=1
	mkdir -p "$d"
	uri=$(archive_uri)
	for p in liburing-dev liburing2; do
		f=$d/${p}_${LIBURING_VER}_amd64.deb
		sum=$(echo "$LIBURING_SHA256" | sed -n "s/^$p=//p")
		if [ ! -s "$f" ]; then
			curl -fsS --max-time 120 -o "$f.tmp" "$uri/pool/main/libu/liburing/${p}_${LIBURING_VER}_amd64.deb" 2>/dev/null &&
				mv "$f.tmp" "$f" || { rm -f "$f.tmp"; ok=0; continue; }
		fi
		echo "$sum  $f" | sha256sum -c --quiet >/dev/null 2>&1 || die "$f does not match its pinned SHA-256"
	done
	if [ "$ok" = 1 ]; then
		echo "$d/liburing-dev_${LIBURING_VER}_amd64.deb $d/liburing2_${LIBURING_VER}_amd64.deb"
		return 0
	fi
	local a=$J/apt
	note "liburing $LIBURING_VER is gone from the pool; taking sid's newest through $a"
	private_apt "$a" sid 'Acquire::Check-Valid-Until "false";'
	APT_CONFIG=$a/apt.conf apt-get update -qq >/dev/null || die "apt-get update (sid) failed"
	rm -f "$d"/liburing*.deb
	(cd "$d" && APT_CONFIG=$a/apt.conf apt-get download -qq -o APT::Sandbox::User=root liburing-dev liburing2 >/dev/null) ||
		die "apt-get download liburing-dev liburing2 (sid) failed"
	echo "$(ls "$d"/liburing-dev_*.deb) $(ls "$d"/liburing2_*.deb)"
}
read -r ldev llib <<<"$(liburing_debs)"
lver=$(dpkg-deb -f "$ldev" Version)
zdir=$J/zcrx/linux-source-${mm}_${srcver}+liburing_${lver}
if [ ! -x "$zdir/iou-zcrx" ]; then
	src_tree
	rm -rf "$zdir.tmp"
	mkdir -p "$zdir.tmp/lu"
	dpkg-deb -x "$ldev" "$zdir.tmp/lu"
	dpkg-deb -x "$llib" "$zdir.tmp/lu"
	# liburing's headers first (its own io_uring.h), then the source's uAPI (liburing's compat.h
	# wants linux/blkdev.h, which bookworm's linux-libc-dev lacks).
	nice gcc -O2 -static -isystem "$zdir.tmp/lu/usr/include" -isystem "$srctree/usr/include" \
		-o "$zdir.tmp/iou-zcrx" "$srctree/$H_SRC/iou-zcrx.c" "$zdir.tmp/lu/usr/lib/x86_64-linux-gnu/liburing.a" \
		>"$zdir.tmp/gcc.log" 2>&1 || { tail -n 30 "$zdir.tmp/gcc.log" >&2; die "building iou-zcrx failed"; }
	strip "$zdir.tmp/iou-zcrx"
	cp "$srctree/$H_SRC/iou-zcrx.py" "$zdir.tmp/"
	rm -rf "$zdir.tmp/lu" "$zdir.tmp/gcc.log" "$zdir"
	mv "$zdir.tmp" "$zdir"
fi
note "iou-zcrx $(stat -c %s "$zdir/iou-zcrx") bytes (liburing $lver)"
if [ "$srctree" = "$J/src/$(basename "$srctree")" ]; then rm -rf "$J/src"; fi

# --- our binary --------------------------------------------------------------------------------------
step "go: ncdevmem"
w=$J/work
rm -rf "$w"
mkdir -p "$w/root"
gobuild() { (cd "$top" && CGO_ENABLED=0 go build -trimpath -o "$w/ncdevmem" ./cmd/ncdevmem); }
if ! gobuild; then
	note "the Go build failed; retrying once in 20 s (a file may have been caught mid-write)"
	sleep 20
	gobuild || die "building ncdevmem failed"
fi

# --- base cpio: busybox, python3 + PyYAML, ip, tc, ethtool, bpftool, socat, bash, coreutils head and
# sleep, unshare, nsenter, kselftest libs,
# the C binary. Keyed by the source version, the packages it copies and PACK_REV. ------------------
step "guest userland (base cpio)"
py=$(readlink -f /usr/bin/python3)
pyver=$(basename "$py")
pkgvers=$(dpkg-query -W -f='${Package}=${Version}\n' "${pyver}" python3-yaml iproute2 ethtool socat bash coreutils \
	busybox-static libc6 bpftool util-linux libbpf1 libelf1 | tr '\n' ' ')
key=$(printf '%s\n' "rev=$PACK_REV" "src=$srcver" "$pkgvers" "$(sha256sum "$cdir/ncdevmem")" | sha256sum | cut -c1-16)
# Stored compressed: the kernel unpacks concatenated gzip'd archives, so a run appends its small
# overlay without recompressing the base (about 50 MB).
base=$J/base/$key.cpio.gz
if [ ! -s "$base" ]; then
	rm -f "$J"/base/*.cpio "$J"/base/*.cpio.gz
	R=$J/base/root
	rm -rf "$R"
	mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,usr/lib,proc,sys,dev,tmp,run,etc,var,lib64,judges}
	ln -s ../run "$R/var/run"
	# Real binaries first; busybox fills in the rest but never shadows them. bash is /bin/sh:
	# Debian's busybox sh runs its own `ip` applet ahead of PATH, which lacks `-j` and netns.
	# tc and bpftool attach and set the netkit tests' BPF programs; unshare and nsenter (util-linux:
	# busybox's lack --map-root-user/--setuid) make and enter userns_devmem.py's user namespace, whose
	# holder runs coreutils' `sleep infinity`.
	bins="/usr/bin/$pyver /usr/sbin/ip /usr/sbin/tc /usr/sbin/ethtool /usr/sbin/bpftool /usr/bin/socat /usr/bin/bash
		/usr/bin/head /usr/bin/sleep /usr/bin/unshare /usr/bin/nsenter"
	for f in $bins; do cp -L "$f" "$R$f"; done
	ln -s "$pyver" "$R/usr/bin/python3"
	ln -s ../usr/bin/bash "$R/bin/sh"
	ln -s ../usr/bin/bash "$R/bin/bash"
	cp /bin/busybox "$R/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ -e "$R/bin/$a" ] || [ -e "$R/usr/bin/$a" ] || [ -e "$R/sbin/$a" ] || [ -e "$R/usr/sbin/$a" ] || ln -s busybox "$R/bin/$a"
	done
	# The standard library without tests, GUI and packaging pieces.
	mkdir -p "$R/usr/lib/$pyver" "$R/usr/lib/python3/dist-packages"
	(cd "/usr/lib/$pyver" && tar -cf - --exclude=test --exclude=tests --exclude=idlelib --exclude=tkinter \
		--exclude=ensurepip --exclude=lib2to3 --exclude=pydoc_data --exclude=turtledemo --exclude='config-3*' \
		--exclude='_test*' --exclude=distutils --exclude=__pycache__ .) | tar -xf - -C "$R/usr/lib/$pyver"
	cp -a /usr/lib/python3/dist-packages/yaml "$R/usr/lib/python3/dist-packages/"
	cp -a /usr/lib/python3/dist-packages/_yaml* "$R/usr/lib/python3/dist-packages/" 2>/dev/null || true
	# Shared libraries of the binaries and of Python's extension modules, at their own paths.
	for f in $bins $(find "$R/usr/lib/$pyver/lib-dynload" "$R/usr/lib/python3/dist-packages" -name '*.so'); do
		ldd "$f" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*' || true
	done | sort -u | while read -r lib; do
		[ -f "$lib" ] || continue
		mkdir -p "$R$(dirname "$lib")"
		cp -L "$lib" "$R$lib"
	done
	# The kselftest tree (devmem.py, its libraries, YNL and the specs) at /ksrc, in-tree layout.
	mkdir -p "$R/ksrc"
	tar -xf "$cdir/ksrc.tar" -C "$R/ksrc"
	cp "$cdir/ncdevmem" "$R/judges/ncdevmem-c"
	# Bytecode now, so the TCG guest does not compile every import on every run.
	"/usr/bin/$pyver" -m compileall -q -j 2 "$R/usr/lib/$pyver" "$R/usr/lib/python3/dist-packages" "$R/ksrc/tools" \
		>/dev/null 2>&1 || true
	echo "root:x:0:0:root:/:/bin/sh" >"$R/etc/passwd"
	echo "root:x:0:" >"$R/etc/group"
	(cd "$R" && find . | cpio -o -H newc --quiet) | gzip -1 >"$base.tmp"
	mv "$base.tmp" "$base"
	note "base cpio $(du -h "$base" | cut -f1) (key $key)"
	rm -rf "$R"
fi

# --- overlay: module, our binary, init, side-by-side helper, settings ------------------------------
step "initramfs overlay"
mkdir -p "$w/root/judges"
cp "$KO" "$w/root/judges/softnic.ko"
cp "$w/ncdevmem" "$w/root/judges/ncdevmem-go"
cp "$jdir/init" "$w/root/init"
cp "$jdir/sidebyside.py" "$jdir/compare.py" "$jdir/known-failures.txt" "$w/root/judges/"
# The siblings' host-built pieces, where the kselftests look for them (drivers/net/hw).
mkdir -p "$w/root/ksrc/$H_SRC"
cp "$bpfdir"/*.bpf.o "$zdir/iou-zcrx" "$zdir/iou-zcrx.py" "$w/root/ksrc/$H_SRC/"
# The kernel's clsact qdisc and cls_bpf are modules in Debian's 7.x; tc needs both for the BPF
# programs (direct-action, so no act_bpf). run-tests.sh unpacked them into $KDIR/modules.
mkdir -p "$w/root/judges/mod"
for m in sch_ingress cls_bpf; do
	[ -f "$KDIR/modules/$m.ko" ] || die "$KDIR/modules has no $m.ko (the netkit tests need it)"
	cp "$KDIR/modules/$m.ko" "$w/root/judges/mod/"
done
chmod 755 "$w/root/init"
{
	echo "IF_LOCAL=$IF_LOCAL"
	echo "IF_PEER=$IF_PEER"
	echo "KO_ARGS='$KO_ARGS'"
	echo "IPV6=$IPV6"
	echo "DEVMEM=$DEVMEM"
	echo "CREF=$CREF"
	echo "COMPARE=$COMPARE"
	echo "SIBLINGS='$SIBLINGS'"
	echo "BUDGET_DEVMEM=$BUDGET_DEVMEM"
	echo "BUDGET_NK=$BUDGET_NK"
	echo "BUDGET_ZCRX=$BUDGET_ZCRX"
	echo "ROUNDS=$ROUNDS"
	echo "MB=$MB"
	echo "RUNTIME=$RUNTIME"
	echo "SRCVER='$srcver'"
} >"$w/root/judges/judges.env"
(cd "$w/root" && find . | cpio -o -H newc --quiet) | gzip -1 >"$w/overlay.cpio.gz"
cat "$base" "$w/overlay.cpio.gz" >"$w/initramfs.gz"

# --- boot ---------------------------------------------------------------------------------------------
step "guest $KREL: all judges, one boot"
: >"$w/results.txt"
set +e
# hugepages: check_rx_large_niov's 16 KiB niovs come from 2 MiB pages, and released bindings free
# theirs late under TCG, so the test's own reserve of 64 is not enough. udmabuf's size limit is
# raised for `ncdevmem run`'s dma-buf.
timeout --foreground -k 10 "$TIMEOUT" qemu-system-x86_64 -nodefaults -no-user-config \
	-machine q35,accel=tcg -cpu "$VM_CPU" -m "$MEM" -smp "$SMP" \
	-display none -monitor none -no-reboot \
	-serial "file:$w/console.txt" -serial "file:$w/results.txt" \
	-kernel "$KDIR/vmlinuz" -initrd "$w/initramfs.gz" \
	-append "$VM_CMDLINE hugepages=256 udmabuf.size_limit_mb=256 $VM_APPEND" \
	</dev/null 2>"$w/qemu.err"
qrc=$?
set -e
tr -d '\r' <"$w/results.txt" >"$w/results.log"
sed 's/^/[judges] /' "$w/results.log"
sed 's/^/[judges qemu] /' "$w/qemu.err" >&2
result=$(grep -aoE '^JUDGES-RESULT rc=[0-9]+' "$w/results.log" | tail -1 || true)
step ""
printf '=== judges: %-36s %4ds\n' "total" $(($(date +%s) - t_all))
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	tail -n 20 "$w/console.txt" | sed 's/^/[judges console] /'
	die "the guest did not finish within ${TIMEOUT}s; console: $w/console.txt"
elif [ -z "$result" ]; then
	tail -n 30 "$w/console.txt" | sed 's/^/[judges console] /'
	die "the guest did not report (qemu exit $qrc); console: $w/console.txt"
elif [ "$result" != "JUDGES-RESULT rc=0" ]; then
	die "a judge failed (see the [judges] lines above; logs in $w)"
fi
nknown=$(grep -ac '^JUDGES KNOWN FAIL' "$w/results.log" || true)
[ "$nknown" -gt 0 ] && note "$nknown known failure(s) (known-failures.txt; reasons in the [judges] lines above)"
if [ "$DEVMEM" = 1 ]; then
	if [ "$CREF" = all ]; then
		echo "judges: every kselftest case passed (devmem.py and the netkit siblings with both binaries); known failures: $nknown"
	else
		echo "judges: every kselftest case passed (ours: devmem.py and the siblings; the C reference: devmem.py over IPv4, NCDEVMEM_JUDGES_C=all for the rest); known failures: $nknown"
	fi
else
	echo "judges: devmem.py was NOT run (NCDEVMEM_JUDGES_DEVMEM=0); the side-by-side passed"
fi
exit 0
}
