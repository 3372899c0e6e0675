#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Guest-kernel test tier: boots Debian's 6.12 and 7.x kernels under QEMU (software emulation; KVM does
# not work for stock kernels on this kind of host) and runs the guesttest package inside each, with
# real udmabuf, real bind-rx/bind-tx calls and, on 7.x, an out-of-tree netdevsim.
#
# Everything is fetched with apt and cached under $NCDEVMEM_VM_CACHE (default /var/cache/ncdevmem-vm)
# keyed by package version, so only the first run downloads and builds. Needs root. Exits non-zero
# when any guest test failed or a guest did not report. See scripts/vm/README.md.
#
# Environment:
#   NCDEVMEM_VM_CACHE    cache directory (default /var/cache/ncdevmem-vm)
#   NCDEVMEM_VM_KERNELS  which kernels to boot, a subset of "6.12 7.x" (default both)
#   NCDEVMEM_VM_612      pinned 6.12 ABI name (default 6.12.117+deb12)
#   NCDEVMEM_VM_7        pinned 7.x ABI name (default 7.3.4+deb13)
#   NCDEVMEM_VM_RUN      -test.run pattern for the guest tests (default all)
#   NCDEVMEM_VM_TIMEOUT  seconds one guest may run before it counts as not reporting (default 1200)
#   NCDEVMEM_VM_SMP, NCDEVMEM_VM_MEM   guest CPUs (default 2) and memory in MiB (default 2048)
#   NCDEVMEM_VM_JOBS     guests (and the judges) run at once (default 3, all; 1: one after another)
#   NCDEVMEM_VM_CPU      QEMU -cpu model of the guests (default max)
#   NCDEVMEM_VM_APPEND   extra guest kernel arguments (the guests boot with mitigations=off)
#   NCDEVMEM_VM_PKGS     packages whose tests run in the guests (default "guesttest udmabuf bind doctor nic")
#   NCDEVMEM_VM_ROOT_TESTS=1   also run those packages' host-kernel TestRoot* tests in the guests
set -euo pipefail

# The whole script is one compound command, so bash parses it before running any of it: an edit to
# this file while a run is under way (or waits for the cache lock) cannot make that run read a
# half-old script.
{
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
export PATH=/usr/local/go/bin:$HOME/go/bin:$PATH LC_ALL=C

CACHE=${NCDEVMEM_VM_CACHE:-/var/cache/ncdevmem-vm}
KERNELS=${NCDEVMEM_VM_KERNELS:-"6.12 7.x"}
PIN_612=${NCDEVMEM_VM_612:-6.12.117+deb12}
PIN_7=${NCDEVMEM_VM_7:-7.3.4+deb13}
FLAVOUR=cloud-amd64
RUN=${NCDEVMEM_VM_RUN:-}
TIMEOUT=${NCDEVMEM_VM_TIMEOUT:-1200}
SMP=${NCDEVMEM_VM_SMP:-2}
MEM=${NCDEVMEM_VM_MEM:-2048}
# The 7.x guest gets a udmabuf size limit above the 64 MiB default so the large-buffer test can run;
# the 6.12 guest keeps the default so the refusal can be tested.
UDMABUF_LIMIT_7=256

# Test binaries run in every guest: this tier's own package, and packages whose tests exercise the
# real kernel surface when it is present (udmabuf's are told it must be: NCDEVMEM_REQUIRE_UDMABUF=1).
# NCDEVMEM_VM_PKGS replaces the list (e.g. "bind nic cmd/ncdevmem") and NCDEVMEM_VM_ROOT_TESTS=1
# turns on the packages' host-kernel TestRoot* tests, to run them against the guest kernels.
GUEST_PKGS=${NCDEVMEM_VM_PKGS:-"guesttest udmabuf bind doctor nic"}
# Huge pages on every guest's cmdline so udmabuf's hugetlb backing is tested too: 8 x 2 MiB on 6.12;
# 96 on 7.x, where selftest's check_rx_large_niov (ncdevmem -b 16384) takes a 64 MiB hugetlb buffer
# and, in TCG, pages of earlier bindings come back late (kernel-judges.md). A boot reservation,
# because raising vm.nr_hugepages at run time fails once the guest's memory is fragmented.
HUGEPAGES_612=8
HUGEPAGES_7=96

# Modules each guest loads, in this order after their dependencies (resolved from modules.dep).
MODS_612="virtio_net veth softnic"
MODS_7="virtio_net veth netdevsim softnic"

# Packages the host needs: QEMU, the guest's userland, and netdevsim's build dependencies.
HOST_PKGS="qemu-system-x86 busybox-static cpio xz-utils kmod iproute2 ethtool gcc make flex bison bc
libelf-dev libssl-dev dwarves zstd jq bsdextrautils"

t_all=$(date +%s)
t_step=$t_all
step_name=
step() {
	local now
	now=$(date +%s)
	[ -n "$step_name" ] && printf '=== %-40s %4ds\n' "$step_name" $((now - t_step))
	step_name=$*
	t_step=$now
	[ -n "$step_name" ] && printf -- '--- %s\n' "$step_name"
	return 0
}
die() {
	echo "run-tests.sh: $*" >&2
	exit 1
}
note() { echo "run-tests.sh: $*" >&2; }

for k in $KERNELS; do
	case "$k" in 6.12 | 7.x) ;; *) die "unknown kernel '$k' in NCDEVMEM_VM_KERNELS (choose from: 6.12 7.x)" ;; esac
done
[[ $RUN != *"'"* ]] || die "NCDEVMEM_VM_RUN may not contain a single quote (it is passed to the guest's shell quoted)"
for v in TIMEOUT SMP MEM; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "NCDEVMEM_VM_$v=${!v} is not a positive whole number"
done
[ "$(id -u)" = 0 ] || die "needs root (apt-get, and building netdevsim into $CACHE): run it with sudo"
mkdir -p "$CACHE"/{debs,kernels,nsim,src,hdr,softnic,work}

# One run at a time per cache: a second run would race the apt roots and the work directory.
exec 9>"$CACHE/lock"
flock -n 9 || { note "another run holds $CACHE/lock, waiting"; flock 9; }

step "host packages"
# shellcheck disable=SC2086
install_pkgs $HOST_PKGS
busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || ldd "$busybox" 2>&1 | grep -q 'not a dynamic' ||
	die "$busybox is not statically linked (apt-get install busybox-static)"

# --- apt: the host's own sources for 6.12, a private root (lib.sh) for 7.x ---------------------------
aptroot=$CACHE/apt
setup_private_apt() {
	[ -f "$aptroot/apt.conf" ] || private_apt "$aptroot" trixie-backports
}
# aptc KIND CMD... runs apt-get/apt-cache against the host's sources (KIND=host) or the private root.
aptc() {
	local kind=$1
	shift
	if [ "$kind" = host ]; then "$@"; else APT_CONFIG=$aptroot/apt.conf "$@"; fi
}
declare -A updated=()
apt_update() {
	[ -n "${updated[$1]:-}" ] && return 0
	note "apt-get update ($1 sources)"
	aptc "$1" apt-get update -qq >/dev/null
	updated[$1]=1
}
# resolve KIND PKG REGEX: prints PKG when the archive has it, else the newest package whose name
# matches REGEX (an ERE over package names), saying so on stderr.
resolve() {
	local kind=$1 pkg=$2 regex=$3 alt
	if ! aptc "$kind" apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1; then
		apt_update "$kind"
	fi
	if aptc "$kind" apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1; then
		echo "$pkg"
		return 0
	fi
	alt=$(aptc "$kind" apt-cache search --names-only "$regex" | awk '{print $1}' | grep -E "$regex" | sort -V | tail -1)
	[ -n "$alt" ] || die "no package matches $regex in the $kind apt sources (pinned $pkg is gone too)"
	note "pinned package $pkg has vanished from the archive; falling back to the newest available: $alt"
	echo "$alt"
}
# fetch KIND PKG: prints the path of PKG's .deb in the cache, downloading it the first time.
fetch() {
	local kind=$1 pkg=$2 deb
	deb=$(ls "$CACHE/debs/${pkg}"_*.deb 2>/dev/null | sort -V | tail -1 || true)
	if [ -z "$deb" ]; then
		# The download runs as root into the cache: tell apt not to drop to _apt for it.
		if ! (cd "$CACHE/debs" && aptc "$kind" apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1); then
			apt_update "$kind"
			(cd "$CACHE/debs" && aptc "$kind" apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null) ||
				die "apt-get download $pkg failed"
		fi
		deb=$(ls "$CACHE/debs/${pkg}"_*.deb | sort -V | tail -1)
		note "downloaded $(basename "$deb")"
	fi
	echo "$deb"
}
# cached_or_resolve KIND PINNED_PKG REGEX: the pinned package if its .deb is cached (no network at
# all on a warm run), else what resolve picks.
# A fallback is remembered in debs/PINNED.resolved, so a warm run with a vanished pin stays offline too.
cached_or_resolve() {
	local pin=$2 memo=$CACHE/debs/$2.resolved alt
	if ls "$CACHE/debs/${pin}"_*.deb >/dev/null 2>&1; then
		echo "$pin"
		return 0
	fi
	if [ -f "$memo" ] && alt=$(cat "$memo") && ls "$CACHE/debs/${alt}"_*.deb >/dev/null 2>&1; then
		note "pinned package $pin has vanished from the archive; using $alt (resolved on an earlier run)"
		echo "$alt"
		return 0
	fi
	alt=$(resolve "$@")
	[ "$alt" = "$pin" ] || echo "$alt" >"$memo"
	echo "$alt"
}
debver() { dpkg-deb -f "$1" Version; }

# --- kernels -----------------------------------------------------------------------------------------
# Each kernel is unpacked once into $CACHE/kernels/<package>_<version>/: vmlinuz, config, krel, and
# modules/ holding the decompressed .ko files the guest needs plus their modules.dep.
# unpack KEY DEB...: extracts the debs and keeps what the guest needs.
unpack_kernel() {
	local key=$1
	shift
	local dir=$CACHE/kernels/$key
	[ -f "$dir/ok" ] && { echo "$dir"; return 0; }
	rm -rf "$dir" "$dir.tmp"
	mkdir -p "$dir.tmp/x"
	local d
	for d in "$@"; do dpkg-deb -x "$d" "$dir.tmp/x"; done
	# 6.12 ships /boot/vmlinuz-KREL; 7.x ships /usr/lib/modules/KREL/vmlinuz (with the config beside it).
	local vml krel
	vml=$(ls "$dir.tmp/x"/boot/vmlinuz-* "$dir.tmp/x"/usr/lib/modules/*/vmlinuz 2>/dev/null | head -1 || true)
	[ -n "$vml" ] || die "no vmlinuz in $*"
	case "$vml" in
	*/boot/vmlinuz-*) krel=${vml##*/vmlinuz-} ;;
	*) krel=$(basename "$(dirname "$vml")") ;;
	esac
	cp "$vml" "$dir.tmp/vmlinuz"
	echo "$krel" >"$dir.tmp/krel"
	local cfg
	cfg=$(ls "$dir.tmp/x/boot/config-$krel" "$dir.tmp/x/usr/lib/modules/$krel/config" 2>/dev/null | head -1 || true)
	[ -n "$cfg" ] || die "no kernel config in $*"
	cp "$cfg" "$dir.tmp/config"
	local mdir
	mdir=$(ls -d "$dir.tmp/x"/lib/modules/"$krel" "$dir.tmp/x"/usr/lib/modules/"$krel" 2>/dev/null | head -1)
	[ -d "$mdir" ] || die "no modules for $krel in $*"
	# modules.dep is written by depmod at install time, which did not run here. depmod -b BASE reads
	# BASE/lib/modules/KREL, so BASE is whatever precedes that (the modules sit in /lib or /usr/lib).
	depmod -b "${mdir%/lib/modules/$krel}" "$krel" 2>/dev/null || die "depmod for $krel failed"
	[ -s "$mdir/modules.dep" ] || die "depmod wrote no modules.dep for $krel"
	mkdir -p "$dir.tmp/modules"
	cp "$mdir/modules.dep" "$dir.tmp/modules/"
	# Keep the networking modules the guests may load; everything else is dropped to save space.
	local ko
	while read -r ko; do
		local name=${ko##*/}
		name=${name%%.ko*}
		case "$ko" in
		*.xz) xz -dc "$ko" >"$dir.tmp/modules/$name.ko" ;;
		*.zst) zstd -qdc "$ko" >"$dir.tmp/modules/$name.ko" ;;
		*.gz) gzip -dc "$ko" >"$dir.tmp/modules/$name.ko" ;;
		*) cp "$ko" "$dir.tmp/modules/$name.ko" ;;
		esac
	done < <(find "$mdir/kernel/net" "$mdir/kernel/drivers/net" "$mdir/kernel/drivers/ptp" "$mdir/kernel/lib" \
		-name '*.ko*' 2>/dev/null)
	rm -rf "$dir.tmp/x"
	touch "$dir.tmp/ok"
	mv "$dir.tmp" "$dir"
	echo "$dir"
}

# extra_deps KDIR NAME: the modules an out-of-tree module needs. Built without Module.symvers, it
# records no "depends", so match its undefined symbols against what the other modules export.
extra_deps() {
	local kdir=$1 m=$2 ko
	if [ ! -s "$kdir/exports" ]; then
		for ko in "$kdir"/modules/*.ko "$kdir"/extra/*.ko; do
			nm "$ko" 2>/dev/null | awk -v m="$(basename "$ko" .ko)" '$3 ~ /^__ksymtab_/ {print substr($3, 11), m}'
		done | sort -u >"$kdir/exports.tmp"
		mv "$kdir/exports.tmp" "$kdir/exports"
	fi
	nm -u "$kdir/extra/$m.ko" | awk '{print $2}' | sort -u |
		join - "$kdir/exports" | awk '{print $2}' | sort -u | tr '\n' ' '
}

# mod_order KDIR NAME...: the modules to insmod, dependencies first, each once.
mod_order() {
	local kdir=$1
	shift
	declare -A seen=()
	local out=()
	visit() {
		local m=$1 line deps d
		[ -n "${seen[$m]:-}" ] && return 0
		seen[$m]=1
		if [ -f "$kdir/extra/$m.ko" ]; then
			deps=$(extra_deps "$kdir" "$m")
		else
			line=$(grep -E "(^|/)${m//_/[_-]}\.ko[^:]*:" "$kdir/modules/modules.dep" | head -1 || true)
			[ -n "$line" ] || { note "module $m is not in $(cat "$kdir/krel")'s modules.dep (built in?)"; return 0; }
			deps=$(echo "${line#*:}" | tr ' ' '\n' | sed -E 's#.*/##; s#\.ko.*##' | tr '\n' ' ')
		fi
		for d in $deps; do visit "${d//-/_}"; done
		out+=("$m")
	}
	local m
	for m in "$@"; do visit "$m"; done
	echo "${out[@]}"
}

# --- 7.x: the prepared linux-source tree ---------------------------------------------------------
# Debian's 7.x headers were built with gcc-14, which bookworm lacks, so out-of-tree modules for 7.x
# are built against linux-source of the same version, prepared once (olddefconfig + modules_prepare
# with the kernel's own config and KERNELRELEASE) and kept in $CACHE/src/<source deb>_for_<kernel>/
# with an `ok` marker. Others reuse it (make headers, tools/net/ynl, selftests): see README.md.
# MODVERSIONS and module signing are off in Debian's 7.x config, so KERNELRELEASE is all vermagic
# needs. Sets KSRC to the tree.
prepare_src() {
	local kdir=$1 srcdeb=$2 krel
	krel=$(cat "$kdir/krel")
	local d=$CACHE/src/$(basename "$srcdeb" .deb)_for_$(basename "$kdir")
	if [ ! -f "$d/ok" ]; then
		rm -rf "$d" "$d.tmp"
		mkdir -p "$d.tmp"
		note "preparing $(basename "$srcdeb") for $krel in $d"
		dpkg-deb --fsys-tarfile "$srcdeb" | tar -x -C "$d.tmp" --wildcards './usr/src/linux-source-*.tar.*'
		local tarball
		tarball=$(ls "$d.tmp"/usr/src/linux-source-*.tar.* | head -1)
		tar -xf "$tarball" -C "$d.tmp"
		rm -rf "$d.tmp/usr"
		local src
		src=$(ls -d "$d.tmp"/linux-source-* | head -1)
		cp "$kdir/config" "$src/.config"
		(
			cd "$src"
			./scripts/config -m NETDEVSIM -m PTP_1588_CLOCK_MOCK --set-str MODULE_SIG_KEY "" \
				--set-str SYSTEM_TRUSTED_KEYS "" --set-str SYSTEM_REVOCATION_KEYS "" -d MODULE_SIG_ALL
			make -s olddefconfig KERNELRELEASE="$krel" >/dev/null
			nice make -s -j"$(nproc)" modules_prepare KERNELRELEASE="$krel" >/dev/null
		) || die "preparing linux-source for $krel failed (see the make output above)"
		touch "$d.tmp/ok"
		mv "$d.tmp" "$d"
	fi
	KSRC=$(ls -d "$d"/linux-source-* | head -1)
}

# --- netdevsim for 7.x, out of tree ------------------------------------------------------------------
# Debian builds no netdevsim. Build it (and ptp_mock, which it needs) in the prepared tree.
# Cached per kernel package version.
build_netdevsim() {
	local kdir=$1 srcdeb=$2 src=$3
	local krel
	krel=$(cat "$kdir/krel")
	local out=$CACHE/nsim/$(basename "$srcdeb" .deb)_for_$(basename "$kdir")
	if [ -f "$out/netdevsim.ko" ] && [ -f "$out/ptp_mock.ko" ]; then
		install_extra "$kdir" "$out"/*.ko
		return 0
	fi
	note "building netdevsim for $krel from $(basename "$srcdeb")"
	local b=$CACHE/nsim/build
	rm -rf "$b"
	mkdir -p "$b/ptpmock"
	(
		cd "$src"
		nice make -s -j"$(nproc)" KERNELRELEASE="$krel" KBUILD_MODPOST_WARN=1 M=drivers/net/netdevsim modules >/dev/null 2>&1 ||
			make -j"$(nproc)" KERNELRELEASE="$krel" KBUILD_MODPOST_WARN=1 M=drivers/net/netdevsim modules
		cp drivers/ptp/ptp_mock.c "$b/ptpmock/"
		echo 'obj-m += ptp_mock.o' >"$b/ptpmock/Kbuild"
		make -s KERNELRELEASE="$krel" KBUILD_MODPOST_WARN=1 M="$b/ptpmock" modules >/dev/null 2>&1 ||
			make KERNELRELEASE="$krel" KBUILD_MODPOST_WARN=1 M="$b/ptpmock" modules
	) || die "building netdevsim for $krel failed (see the make output above)"
	local vm
	vm=$(modinfo -F vermagic "$src/drivers/net/netdevsim/netdevsim.ko")
	case "$vm" in "$krel "*) ;; *) die "netdevsim was built with vermagic '$vm', the kernel is $krel" ;; esac
	mkdir -p "$out.tmp"
	cp "$src/drivers/net/netdevsim/netdevsim.ko" "$b/ptpmock/ptp_mock.ko" "$out.tmp/"
	rm -rf "$out"
	mv "$out.tmp" "$out"
	rm -rf "$b"
	install_extra "$kdir" "$out"/*.ko
}
# install_extra KDIR KO...: puts out-of-tree modules in KDIR/extra for the guest (if changed).
install_extra() {
	local kdir=$1 ko
	shift
	mkdir -p "$kdir/extra"
	for ko in "$@"; do
		if ! cmp -s "$ko" "$kdir/extra/$(basename "$ko")"; then
			cp "$ko" "$kdir/extra/" && rm -f "$kdir/exports"
		fi
	done
}

# --- 6.12: the kernel headers packages ----------------------------------------------------------------
# linux-headers-ABI-FLAVOUR (with Module.symvers: 6.12 has MODVERSIONS), its -common package and
# linux-kbuild-ABI, unpacked once into $CACHE/hdr/<headers deb>/. Their Makefile includes the -common
# tree by absolute path under /usr/src; it is pointed at the unpacked copy. Sets KHDR to the tree.
prepare_headers() {
	local abi=$1 hdeb cdeb kdeb
	hdeb=$(fetch host "linux-headers-$abi-$FLAVOUR")
	cdeb=$(fetch host "linux-headers-$abi-common")
	kdeb=$(fetch host "linux-kbuild-$abi")
	local d=$CACHE/hdr/$(basename "$hdeb" .deb)
	if [ ! -f "$d/ok" ]; then
		rm -rf "$d" "$d.tmp"
		mkdir -p "$d.tmp"
		local x
		for x in "$hdeb" "$cdeb" "$kdeb"; do dpkg-deb -x "$x" "$d.tmp"; done
		touch "$d.tmp/ok"
		mv "$d.tmp" "$d"
		sed -i "s#^include /usr/src/#include $d/usr/src/#" "$d/usr/src/linux-headers-$abi-$FLAVOUR/Makefile"
	fi
	KHDR=$d/usr/src/linux-headers-$abi-$FLAVOUR
	[ -f "$KHDR/Module.symvers" ] || die "$KHDR has no Module.symvers"
}

# --- softnic ------------------------------------------------------------------------------------------
# The software devmem NIC (../../softnic), built for each kernel and cached by (kernel package, hash
# of the module's sources), so an edited module is rebuilt and an unchanged one is not.
softnic_hash() { (cd "$top/softnic" && cat Kbuild ./*.c ./*.h | sha256sum | cut -c1-12); }
# build_softnic KDIR TREE [MAKE ARGS...]: builds against TREE, installs into KDIR/extra and sets
# SOFTNIC_KO.
build_softnic() {
	local kdir=$1 tree=$2 krel key
	shift 2
	krel=$(cat "$kdir/krel")
	key=$(basename "$kdir")
	local out=$CACHE/softnic/${key}_$(softnic_hash)
	if [ ! -f "$out/softnic.ko" ]; then
		local b=$CACHE/softnic/build
		rm -rf "$b"
		mkdir -p "$b"
		cp "$top"/softnic/Kbuild "$top"/softnic/*.c "$top"/softnic/*.h "$b/"
		note "building softnic for $krel"
		nice make -C "$tree" M="$b" "$@" modules >"$b/make.log" 2>&1 || {
			cat "$b/make.log" >&2
			die "building softnic for $krel failed (make output above)"
		}
		# The module must build clean; modpost's unresolved-symbol notes (7.x has no Module.symvers
		# in the prepared tree) are not compiler warnings.
		if grep -E '(warning|error):' "$b/make.log" >&2; then
			die "softnic for $krel built with compiler warnings (above)"
		fi
		local vm
		vm=$(modinfo -F vermagic "$b/softnic.ko")
		case "$vm" in "$krel "*) ;; *) die "softnic was built with vermagic '$vm', the kernel is $krel" ;; esac
		rm -rf "$CACHE/softnic/${key}_"*
		mkdir -p "$out.tmp"
		cp "$b/softnic.ko" "$out.tmp/"
		mv "$out.tmp" "$out"
		rm -rf "$b"
	fi
	install_extra "$kdir" "$out/softnic.ko"
	SOFTNIC_KO=$out/softnic.ko
}

# write_env KERNEL KDIR TREE KSRC: the file other scripts (scripts/vm/judges.sh, people building the C
# ncdevmem) read to find what this run built: $CACHE/softnic/KERNEL.env, and for 7.x also
# $CACHE/softnic/softnic.env.
write_env() {
	local k=$1 kdir=$2 tree=$3 ksrc=$4 f=$CACHE/softnic/$1.env
	{
		echo "# written by scripts/vm/run-tests.sh; see scripts/vm/README.md"
		echo "KREL=$(cat "$kdir/krel")"
		echo "KDIR=$kdir"
		echo "KBUILD=$tree"
		echo "KSRC=$ksrc"
		echo "SOFTNIC_KO=$SOFTNIC_KO"
	} >"$f.tmp"
	mv "$f.tmp" "$f"
	if [ "$k" = 7.x ]; then cp "$f" "$CACHE/softnic/softnic.env"; fi
}

declare -A KDIR=() KMODS=() KAPPEND=()
for k in $KERNELS; do
	case "$k" in
	6.12)
		step "kernel 6.12: fetch and unpack"
		pkg=$(cached_or_resolve host "linux-image-$PIN_612-$FLAVOUR" '^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64$')
		deb=$(fetch host "$pkg")
		KDIR[$k]=$(unpack_kernel "$(basename "$deb" .deb)" "$deb")
		abi=${pkg#linux-image-}
		abi=${abi%-"$FLAVOUR"}
		step "kernel 6.12: softnic module"
		prepare_headers "$abi"
		build_softnic "${KDIR[$k]}" "$KHDR"
		write_env "$k" "${KDIR[$k]}" "$KHDR" ""
		KMODS[$k]=$MODS_612
		KAPPEND[$k]="hugepages=$HUGEPAGES_612"
		;;
	7.x)
		step "kernel 7.x: fetch and unpack"
		setup_private_apt
		bin=$(cached_or_resolve private "linux-binary-$PIN_7-$FLAVOUR" '^linux-binary-7\.[0-9]+\.[0-9]+\+deb13-cloud-amd64$')
		abi=${bin#linux-binary-}
		abi=${abi%-"$FLAVOUR"}
		bdeb=$(fetch private "$bin")
		mdeb=$(fetch private "linux-modules-$abi-$FLAVOUR")
		cdeb=$(fetch private "linux-base-$abi-$FLAVOUR")
		KDIR[$k]=$(unpack_kernel "$(basename "$bdeb" .deb)" "$bdeb" "$mdeb" "$cdeb")
		mm=$(echo "$abi" | cut -d. -f1,2)
		sdeb=$(fetch private "linux-source-$mm")
		if [ "$(debver "$sdeb")" != "$(debver "$bdeb")" ]; then
			note "linux-source-$mm is $(debver "$sdeb") but the kernel is $(debver "$bdeb"); building netdevsim anyway"
		fi
		step "kernel 7.x: prepared source, netdevsim and softnic modules"
		prepare_src "${KDIR[$k]}" "$sdeb"
		build_netdevsim "${KDIR[$k]}" "$sdeb" "$KSRC"
		build_softnic "${KDIR[$k]}" "$KSRC" KERNELRELEASE="$(cat "${KDIR[$k]}/krel")" KBUILD_MODPOST_WARN=1
		write_env "$k" "${KDIR[$k]}" "$KSRC" "$KSRC"
		KMODS[$k]=$MODS_7
		KAPPEND[$k]="hugepages=$HUGEPAGES_7 udmabuf.size_limit_mb=$UDMABUF_LIMIT_7"
		;;
	*) die "unknown kernel '$k' in NCDEVMEM_VM_KERNELS (choose from: 6.12 7.x)" ;;
	esac
done

# --- Go binaries -------------------------------------------------------------------------------------
step "go: guest test binary and ncdevmem"
gobin=$CACHE/work/go
rm -rf "$gobin"
mkdir -p "$gobin"
gobuild() {
	(
		cd "$top"
		export CGO_ENABLED=0
		local p
		for p in $GUEST_PKGS; do
			go test -c -trimpath -o "$gobin/${p//\//_}.test" "./$p" || return 1
		done
		go build -trimpath -o "$gobin/ncdevmem" ./cmd/ncdevmem
	)
}
if ! gobuild; then
	# Several people edit this tree at once; a file caught mid-write fails once and then builds.
	note "the Go build failed; retrying once in 20 s"
	sleep 20
	gobuild || die "building the guest binaries failed (see the go output above)"
fi

# --- initramfs ---------------------------------------------------------------------------------------
# A common userland (busybox, ip, ethtool and their libraries, the Go binaries, /init) plus, per
# kernel, the modules and their load order.
step "initramfs"
base=$CACHE/work/rootfs
rm -rf "$base"
mkdir -p "$base"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,guest,lib/modules,var}
cp "$busybox" "$base/bin/busybox"
for b in /usr/sbin/ip /usr/sbin/ethtool; do
	[ -x "$b" ] || continue
	cp "$b" "$base$b"
	ldd "$b" | grep -oE '/[^ ]+' | while read -r lib; do
		mkdir -p "$base$(dirname "$lib")"
		cp -L "$lib" "$base$lib"
	done
done
for p in $GUEST_PKGS; do cp "$gobin/${p//\//_}.test" "$base/guest/"; done
cp "$gobin/ncdevmem" "$base/bin/ncdevmem"
cp "$here/init" "$base/init"
cp "$top/scripts/softnic-lab.sh" "$base/bin/softnic-lab.sh"
chmod 755 "$base/init"
echo "root:x:0:0:root:/:/bin/sh" >"$base/etc/passwd"
(cd "$base" && find . | cpio -o -H newc --quiet) >"$CACHE/work/base.cpio"

# split_results WORKDIR: cuts WORKDIR/results.log into one section per test binary and converts each
# into `go test -json` events, WORKDIR/json/PKG.json (PKG: the package path with / as _), for
# internal/testcheck. The kernel log goes to WORKDIR/dmesg.txt.
split_results() {
	local w=$1 f name
	mkdir -p "$w/json" "$w/out"
	awk -v dir="$w/out" '
		/^NCDEVMEM-GUEST running \/guest\/.*\.test$/ {
			name = $3; sub(".*/", "", name); sub("\\.test$", "", name)
			f = dir "/" name ".out"; printf "" > f; cur = 1; next
		}
		/^NCDEVMEM-GUEST \/guest\/.*\.test exit [0-9]+$/ { if (cur) close(f); cur = 0; next }
		/^NCDEVMEM-DMESG-BEGIN$/ { d = 1; next }
		/^NCDEVMEM-DMESG-END$/ { d = 0; next }
		d { print > (dir "/../dmesg.txt"); next }
		cur { print > f }
	' "$w/results.log"
	for f in "$w"/out/*.out; do
		[ -e "$f" ] || continue
		name=$(basename "$f" .out)
		(cd "$top" && go tool test2json -t -p "github.com/devmemtcp/ncdevmem/${name//_//}" <"$f" >"$w/json/$name.json") ||
			note "test2json failed on $f"
	done
}

# check_dmesg KERNEL WORKDIR: fails, printing the offending lines, when the guest's kernel log has a
# warning, BUG, oops, lockdep report or refcount_t complaint.
DMESG_BAD='WARNING:|BUG:|kernel BUG|Oops|general protection fault|refcount_t|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|Call Trace:|UBSAN:|KASAN:|hung_task|blocked for more than'
# Known kernel warnings that are not ours, per kernel, as an ERE that must match the warning's
# "cut here" block: 6.12 maps a dma-buf for a bind-rx on a device without a DMA mask (virtio-net, in
# the bind tests) before it checks the device, and WARNs once in __dma_map_sg_attrs; 6.15+ checks
# the device first ("Device doesn't support DMA").
declare -A DMESG_KNOWN=(
	[6.12]='WARNING: [^\n]* at kernel/dma/mapping\.c:[0-9]+ __dma_map_sg_attrs.*net_devmem_bind_dmabuf'
)
check_dmesg() {
	local k=$1 w=$2 known=${DMESG_KNOWN[$1]:-}
	if [ ! -s "$w/dmesg.txt" ]; then
		note "guest $k wrote no kernel log"
		return 1
	fi
	# Drop each "cut here" ... "end trace" block that is a known warning, check the rest.
	KNOWN=$known perl -0777 -pe '
		s{-+\[ cut here \]-+\n.*?---\[ end trace [^\n]*\n}{ my $b = $&; ($ENV{KNOWN} ne "" && $b =~ /$ENV{KNOWN}/s) ? "[known warning, allowed: see run-tests.sh DMESG_KNOWN]\n" : $b }gse;
	' <"$w/dmesg.txt" >"$w/dmesg.checked"
	if grep -aEq "$DMESG_BAD" "$w/dmesg.checked"; then
		note "guest $k: the kernel log has warnings or splats (all of it: $w/dmesg.txt):"
		grep -aE -B2 -A12 "$DMESG_BAD" "$w/dmesg.checked" | head -80 | sed "s/^/[$k dmesg] /"
		return 1
	fi
	if grep -q 'known warning, allowed' "$w/dmesg.checked"; then
		note "guest $k: the kernel log has a known kernel warning that is not ours (allowed, see DMESG_KNOWN)"
	fi
	return 0
}

# devmem_table: the NCDEVMEM-ROW {json} lines the guest tests print, one aligned table over all
# kernels. Fails when a row has mismatches, or when the 7.x guest ran the tests that print rows
# (a guesttest file that prints them exists, no -test.run filter) and printed none.
devmem_table() {
	local rows=$CACHE/work/devmem-rows.tsv k w rc=0
	: >"$rows"
	for k in $KERNELS; do
		w=$CACHE/work/$k
		[ -d "$w/out" ] || continue
		cat "$w"/out/*.out 2>/dev/null | tr -d '\026' | { grep -aoE 'NCDEVMEM-ROW \{.*\}' || true; } | sed 's/^NCDEVMEM-ROW //' |
			jq -r --arg k "$k" '[(.kernel // $k), .mode, .flows, (.gbps | if . == null then null else (. * 1000 | round / 1000) end), .validated_bytes, .linear_bytes, .tokens,
				.dontneed_calls, .mismatches] | map(if . == null then "-" else tostring end) | @tsv' >>"$rows" ||
			{ note "a NCDEVMEM-ROW line from the $k guest is not valid JSON"; rc=1; }
	done
	if [ ! -s "$rows" ]; then
		echo "no devmem rows"
		if [[ " $KERNELS " == *" 7.x "* ]] && [ -z "$RUN" ] && [[ " $GUEST_PKGS " == *" guesttest "* ]] &&
			grep -lq 'NCDEVMEM-ROW' "$top"/guesttest/*.go 2>/dev/null; then
			note "the 7.x guest ran the devmem tests but printed no NCDEVMEM-ROW line"
			return 1
		fi
		return $rc
	fi
	{
		printf 'kernel\tmode\tflows\tGbps\tdma-buf bytes validated\tlinear bytes\ttokens returned\tDONTNEED calls\tmismatches\n'
		cat "$rows"
	} | column -t -s $'\t'
	if awk -F'\t' '$9 != "-" && $9 + 0 > 0 { bad = 1 } END { exit !bad }' "$rows"; then
		note "devmem rows with mismatches (table above)"
		rc=1
	fi
	return $rc
}

# --- boot each kernel, and the judges --------------------------------------------------------------
# boot_guest K: boots kernel K with the test binaries and prints what its tests printed; a failure is
# a line in $CACHE/work/K.failed.
boot_guest() {
	local k=$1 kdir=${KDIR[$1]} w order qrc result m
	fail() { echo "$1" >>"$CACHE/work/$k.failed"; }
	w=$CACHE/work/$k
	rm -rf "$w"
	mkdir -p "$w/root/lib/modules" "$w/root/etc"
	order=$(mod_order "$kdir" ${KMODS[$k]})
	for m in $order; do
		if [ -f "$kdir/extra/$m.ko" ]; then cp "$kdir/extra/$m.ko" "$w/root/lib/modules/"; else cp "$kdir/modules/$m.ko" "$w/root/lib/modules/"; fi
	done
	echo "$order" >"$w/root/etc/modules.order"
	{
		echo "NCDEVMEM_GUEST=1"
		echo "NCDEVMEM_BIN=/bin/ncdevmem"
		echo "NCDEVMEM_REQUIRE_UDMABUF=1"
		echo "NCDEVMEM_ROOT_TESTS=${NCDEVMEM_VM_ROOT_TESTS:-}"
		echo "NCDEVMEM_GUEST_KERNEL=$k"
		echo "NCDEVMEM_GUEST_RUN='$RUN'"
		echo "NCDEVMEM_SOFTNIC_LAB=/bin/softnic-lab.sh"
		echo "NCDEVMEM_SOFTNIC_KO=/lib/modules/softnic.ko"
	} >"$w/root/etc/guest.env"
	(cd "$w/root" && find . | cpio -o -H newc --quiet) >"$w/extra.cpio"
	cat "$CACHE/work/base.cpio" "$w/extra.cpio" | gzip -1 >"$w/initramfs.gz"
	: >"$w/results.txt"
	set +e
	timeout --foreground -k 10 "$TIMEOUT" nice -n "$(job_nice "$k")" qemu-system-x86_64 -nodefaults -no-user-config \
		-machine q35,accel=tcg -cpu "$VM_CPU" -m "$MEM" -smp "$SMP" \
		-display none -monitor none -no-reboot \
		-serial "file:$w/console.txt" -serial "file:$w/results.txt" \
		-kernel "$kdir/vmlinuz" -initrd "$w/initramfs.gz" \
		-append "$VM_CMDLINE ${KAPPEND[$k]} $VM_APPEND" \
		-netdev hubport,id=n1,hubid=0 -device virtio-net-pci,netdev=n1 \
		-netdev hubport,id=n2,hubid=0 -device virtio-net-pci,netdev=n2 \
		</dev/null 2>"$w/qemu.err"
	qrc=$?
	set -e
	tr -d '\r' <"$w/results.txt" >"$w/results.log"
	# The test output as people read it (test2json's ^V framing removed), without the kernel log.
	sed '/^NCDEVMEM-DMESG-BEGIN$/,/^NCDEVMEM-DMESG-END$/d' "$w/results.log" | tr -d '\026' | sed "s/^/[$k] /"
	split_results "$w"
	check_dmesg "$k" "$w" || fail "$k (kernel log)"
	result=$(grep -aoE '^NCDEVMEM-GUEST-RESULT rc=[0-9]+' "$w/results.log" | tail -1 || true)
	# QEMU always warns that the hub has no host side (that is the point); show anything else.
	grep -v 'hub 0 is not connected to host network' "$w/qemu.err" | sed "s/^/[$k qemu] /" >&2 || true
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		note "guest $k did not finish within ${TIMEOUT}s; console: $w/console.txt"
		tail -n 20 "$w/console.txt" | sed "s/^/[$k console] /"
		fail "$k (timeout)"
	elif [ -z "$result" ]; then
		note "guest $k did not report (qemu exit $qrc); console: $w/console.txt"
		tail -n 30 "$w/console.txt" | sed "s/^/[$k console] /"
		fail "$k (no report)"
	elif [ "$result" != "NCDEVMEM-GUEST-RESULT rc=0" ]; then
		fail "$k (tests failed)"
	fi
}

# The guests and the judges are independent jobs. A TCG guest alone keeps about one of the host's
# two CPUs busy (its vCPUs wait on emulated timers and on each other), so up to NCDEVMEM_VM_JOBS of
# them run at once (default 3: all three, which keeps both CPUs busy to the end; 1 runs them one
# after another). Each job's output is kept and printed whole when it ends, in the order the jobs
# were listed, so the log reads as it did when they ran in turn.
JOBS=${NCDEVMEM_VM_JOBS:-3}
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "NCDEVMEM_VM_JOBS=$JOBS is not a positive whole number"
jobs_list=()
# The longest job first: the 7.x guest, then the judges, then 6.12.
[[ " $KERNELS " == *" 7.x "* ]] && jobs_list+=(7.x)
if [ -x "$here/judges.sh" ] && [[ " $KERNELS " == *" 7.x "* ]] && [ "${NCDEVMEM_VM_JUDGES:-1}" != 0 ]; then
	jobs_list+=(judges)
fi
[[ " $KERNELS " == *" 6.12 "* ]] && jobs_list+=(6.12)
# job_nice J: the niceness job J runs at. The first job of the list (the longest, the 7.x guest)
# keeps the default priority and the others yield to it: the host's CPUs are the limit when all
# run at once, and the run ends when the longest job does, so the shorter ones take what it leaves
# (7.x 264 s, judges 210 s and 6.12 181 s at equal priority).
job_nice() {
	if [ "$1" = "${jobs_list[0]}" ]; then echo 0; else echo 10; fi
}
run_job() {
	local j=$1 t0
	t0=$(date +%s)
	rm -f "$CACHE/work/$j.failed"
	case $j in
	judges) NCDEVMEM_JUDGES_ENV=$CACHE/softnic/7.x.env nice -n "$(job_nice judges)" "$here/judges.sh" || echo "judges" >>"$CACHE/work/$j.failed" ;;
	*) boot_guest "$j" ;;
	esac
	echo $(($(date +%s) - t0)) >"$CACHE/work/$j.secs"
}
job_title() {
	case $1 in
	judges) echo "kernel judges (scripts/vm/judges.sh)" ;;
	*) echo "guest $1 ($(cat "${KDIR[$1]}/krel")): boot and test" ;;
	esac
}
step "guests and judges (${#jobs_list[@]} jobs, $JOBS at a time)"
declare -A job_pid=()
running=0
for j in "${jobs_list[@]}"; do
	if [ "$running" -ge "$JOBS" ]; then
		wait -n || true
		running=$((running - 1))
	fi
	run_job "$j" >"$CACHE/work/$j.log" 2>&1 &
	job_pid[$j]=$!
	running=$((running + 1))
done
failed=()
for j in "${jobs_list[@]}"; do
	wait "${job_pid[$j]}" || true
	printf -- '--- %s\n' "$(job_title "$j")"
	cat "$CACHE/work/$j.log"
	printf '=== %-40s %4ds\n' "$(job_title "$j")" "$(cat "$CACHE/work/$j.secs" 2>/dev/null || echo 0)"
	if [ -s "$CACHE/work/$j.failed" ]; then
		mapfile -t f <"$CACHE/work/$j.failed"
		failed+=("${f[@]}")
	elif [ ! -f "$CACHE/work/$j.secs" ]; then
		failed+=("$j (job died)")
	fi
done
step "test accounting, devmem and zcrx tables"
for k in $KERNELS; do
	w=$CACHE/work/$k
	ls "$w"/json/*.json >/dev/null 2>&1 || { failed+=("$k (no test events)"); continue; }
	(cd "$top" && go run ./internal/testcheck -q -tier "guest-$k" -allow ".ci/skips/guest-$k.txt" "$w"/json/*.json) ||
		failed+=("$k (test accounting)")
done
devmem_table || failed+=("devmem table")
zcrx_outs=()
for k in $KERNELS; do
	for f in "$CACHE/work/$k"/out/*.out; do [ -f "$f" ] && zcrx_outs+=("$f"); done
done
if [ ${#zcrx_outs[@]} -gt 0 ]; then
	"$here/zcrx-table.sh" "${zcrx_outs[@]}" || failed+=("zcrx table")
fi

step ""
printf '=== %-40s %4ds\n' "total" $(($(date +%s) - t_all))

if [ ${#failed[@]} -gt 0 ]; then
	echo "guest-kernel tests FAILED: ${failed[*]} (logs in $CACHE/work/)"
	exit 1
fi
echo "guest-kernel tests passed on: $KERNELS"
exit 0
}
