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
#   NCDEVMEM_VM_TIMEOUT  seconds one guest may run before it counts as not reporting (default 600)
#   NCDEVMEM_VM_SMP, NCDEVMEM_VM_MEM   guest CPUs (default 2) and memory in MiB (default 2048)
#   NCDEVMEM_VM_PKGS     packages whose tests run in the guests (default "guesttest udmabuf bind doctor nic")
#   NCDEVMEM_VM_ROOT_TESTS=1   also run those packages' host-kernel TestRoot* tests in the guests
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export PATH=/usr/local/go/bin:$HOME/go/bin:$PATH LC_ALL=C

CACHE=${NCDEVMEM_VM_CACHE:-/var/cache/ncdevmem-vm}
KERNELS=${NCDEVMEM_VM_KERNELS:-"6.12 7.x"}
PIN_612=${NCDEVMEM_VM_612:-6.12.117+deb12}
PIN_7=${NCDEVMEM_VM_7:-7.3.4+deb13}
FLAVOUR=cloud-amd64
RUN=${NCDEVMEM_VM_RUN:-}
TIMEOUT=${NCDEVMEM_VM_TIMEOUT:-600}
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
# Huge pages on every guest's cmdline so udmabuf's hugetlb backing is tested too (8 x 2 MiB).
APPEND_ALL="hugepages=8"

# Modules each guest loads, in this order after their dependencies (resolved from modules.dep).
MODS_612="virtio_net veth"
MODS_7="virtio_net veth netdevsim"

# Packages the host needs: QEMU, the guest's userland, and netdevsim's build dependencies.
HOST_PKGS="qemu-system-x86 busybox-static cpio xz-utils kmod iproute2 ethtool gcc make flex bison bc
libelf-dev libssl-dev dwarves zstd"

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
for v in TIMEOUT SMP MEM; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "NCDEVMEM_VM_$v=${!v} is not a positive whole number"
done
[ "$(id -u)" = 0 ] || die "needs root (apt-get, and building netdevsim into $CACHE): run it with sudo"
mkdir -p "$CACHE"/{debs,kernels,nsim,work}

# One run at a time per cache: a second run would race the apt roots and the work directory.
exec 9>"$CACHE/lock"
flock -n 9 || { note "another run holds $CACHE/lock, waiting"; flock 9; }

step "host packages"
missing=()
for p in $HOST_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	note "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || ldd "$busybox" 2>&1 | grep -q 'not a dynamic' ||
	die "$busybox is not statically linked (apt-get install busybox-static)"

# --- apt: the host's own sources for 6.12, a private root for 7.x ------------------------------------
# The private root leaves /etc/apt alone: its own sources, lists, cache and (empty) dpkg status, with
# the host's trusted keyrings. It names the same archive URI as the host's sources.
aptroot=$CACHE/apt
setup_private_apt() {
	[ -f "$aptroot/apt.conf" ] && return 0
	mkdir -p "$aptroot"/{etc/sources.list.d,etc/preferences.d,etc/apt.conf.d,state/lists/partial,cache/archives/partial,log}
	: >"$aptroot/state/status"
	local uri
	uri=$(grep -rhoE 'https?://[^ ]*debian\.org/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		head -1 | tr -d ' ' || true)
	[ -n "$uri" ] || uri=http://deb.debian.org/debian
	echo "deb $uri trixie-backports main" >"$aptroot/etc/sources.list"
	cat >"$aptroot/apt.conf" <<-EOF
		Dir::State "$aptroot/state";
		Dir::State::status "$aptroot/state/status";
		Dir::Cache "$aptroot/cache";
		Dir::Etc "$aptroot/etc";
		Dir::Etc::Trusted "/etc/apt/trusted.gpg";
		Dir::Etc::TrustedParts "/etc/apt/trusted.gpg.d";
		Dir::Log "$aptroot/log";
		APT::Architecture "amd64";
		APT::Architectures "amd64";
		Acquire::Languages "none";
	EOF
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

# --- netdevsim for 7.x, out of tree ------------------------------------------------------------------
# Debian builds no netdevsim. Build it (and ptp_mock, which it needs) against linux-source of the
# same version with the kernel's own config; MODVERSIONS and module signing are off in Debian's 7.x
# config, so a matching KERNELRELEASE is all vermagic needs. Cached per kernel package version.
build_netdevsim() {
	local kdir=$1 srcdeb=$2
	local krel
	krel=$(cat "$kdir/krel")
	local out=$CACHE/nsim/$(basename "$srcdeb" .deb)_for_$(basename "$kdir")
	if [ -f "$out/netdevsim.ko" ] && [ -f "$out/ptp_mock.ko" ]; then
		install_extra "$kdir" "$out"
		return 0
	fi
	local b=$CACHE/nsim/build
	rm -rf "$b"
	mkdir -p "$b"
	note "building netdevsim for $krel from $(basename "$srcdeb")"
	dpkg-deb --fsys-tarfile "$srcdeb" | tar -x -C "$b" --wildcards './usr/src/linux-source-*.tar.*'
	local tarball
	tarball=$(ls "$b"/usr/src/linux-source-*.tar.* | head -1)
	tar -xf "$tarball" -C "$b"
	rm -rf "$b/usr"
	local src
	src=$(ls -d "$b"/linux-source-* | head -1)
	cp "$kdir/config" "$src/.config"
	(
		cd "$src"
		./scripts/config -m NETDEVSIM -m PTP_1588_CLOCK_MOCK --set-str MODULE_SIG_KEY "" \
			--set-str SYSTEM_TRUSTED_KEYS "" --set-str SYSTEM_REVOCATION_KEYS "" -d MODULE_SIG_ALL
		make -s olddefconfig KERNELRELEASE="$krel" >/dev/null
		make -s -j"$(nproc)" modules_prepare KERNELRELEASE="$krel" >/dev/null
		make -s -j"$(nproc)" KERNELRELEASE="$krel" KBUILD_MODPOST_WARN=1 M=drivers/net/netdevsim modules >/dev/null 2>&1 ||
			make -j"$(nproc)" KERNELRELEASE="$krel" KBUILD_MODPOST_WARN=1 M=drivers/net/netdevsim modules
		mkdir -p ptpmock
		cp drivers/ptp/ptp_mock.c ptpmock/
		echo 'obj-m += ptp_mock.o' >ptpmock/Kbuild
		make -s KERNELRELEASE="$krel" KBUILD_MODPOST_WARN=1 M="$PWD/ptpmock" modules >/dev/null 2>&1 ||
			make KERNELRELEASE="$krel" KBUILD_MODPOST_WARN=1 M="$PWD/ptpmock" modules
	) || die "building netdevsim for $krel failed (see the make output above)"
	local vm
	vm=$(modinfo -F vermagic "$src/drivers/net/netdevsim/netdevsim.ko")
	case "$vm" in "$krel "*) ;; *) die "netdevsim was built with vermagic '$vm', the kernel is $krel" ;; esac
	mkdir -p "$out.tmp"
	cp "$src/drivers/net/netdevsim/netdevsim.ko" "$src/ptpmock/ptp_mock.ko" "$out.tmp/"
	rm -rf "$out"
	mv "$out.tmp" "$out"
	rm -rf "$b"
	install_extra "$kdir" "$out"
}
install_extra() {
	if ! cmp -s "$2/netdevsim.ko" "$1/extra/netdevsim.ko"; then
		mkdir -p "$1/extra" && cp "$2"/*.ko "$1/extra/" && rm -f "$1/exports"
	fi
}

declare -A KDIR=() KMODS=() KAPPEND=()
for k in $KERNELS; do
	case "$k" in
	6.12)
		step "kernel 6.12: fetch and unpack"
		pkg=$(cached_or_resolve host "linux-image-$PIN_612-$FLAVOUR" '^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64$')
		deb=$(fetch host "$pkg")
		KDIR[$k]=$(unpack_kernel "$(basename "$deb" .deb)" "$deb")
		KMODS[$k]=$MODS_612
		KAPPEND[$k]=""
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
		step "kernel 7.x: netdevsim module"
		build_netdevsim "${KDIR[$k]}" "$sdeb"
		KMODS[$k]=$MODS_7
		KAPPEND[$k]="udmabuf.size_limit_mb=$UDMABUF_LIMIT_7"
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
chmod 755 "$base/init"
echo "root:x:0:0:root:/:/bin/sh" >"$base/etc/passwd"
(cd "$base" && find . | cpio -o -H newc --quiet) >"$CACHE/work/base.cpio"

# --- boot each kernel --------------------------------------------------------------------------------
failed=()
for k in $KERNELS; do
	kdir=${KDIR[$k]}
	krel=$(cat "$kdir/krel")
	step "guest $k ($krel): boot and test"
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
		echo "NCDEVMEM_GUEST_RUN=$RUN"
	} >"$w/root/etc/guest.env"
	(cd "$w/root" && find . | cpio -o -H newc --quiet) >"$w/extra.cpio"
	cat "$CACHE/work/base.cpio" "$w/extra.cpio" | gzip -1 >"$w/initramfs.gz"
	: >"$w/results.txt"
	set +e
	timeout --foreground -k 10 "$TIMEOUT" qemu-system-x86_64 -nodefaults -no-user-config \
		-machine q35,accel=tcg -cpu max -m "$MEM" -smp "$SMP" \
		-display none -monitor none -no-reboot \
		-serial "file:$w/console.txt" -serial "file:$w/results.txt" \
		-kernel "$kdir/vmlinuz" -initrd "$w/initramfs.gz" \
		-append "console=ttyS0 panic=-1 quiet $APPEND_ALL ${KAPPEND[$k]}" \
		-netdev hubport,id=n1,hubid=0 -device virtio-net-pci,netdev=n1 \
		-netdev hubport,id=n2,hubid=0 -device virtio-net-pci,netdev=n2 \
		</dev/null 2>"$w/qemu.err"
	qrc=$?
	set -e
	tr -d '\r' <"$w/results.txt" >"$w/results.log"
	sed "s/^/[$k] /" "$w/results.log"
	result=$(grep -aoE '^NCDEVMEM-GUEST-RESULT rc=[0-9]+' "$w/results.log" | tail -1 || true)
	# QEMU always warns that the hub has no host side (that is the point); show anything else.
	grep -v 'hub 0 is not connected to host network' "$w/qemu.err" | sed "s/^/[$k qemu] /" >&2 || true
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		note "guest $k did not finish within ${TIMEOUT}s; console: $w/console.txt"
		tail -n 20 "$w/console.txt" | sed "s/^/[$k console] /"
		failed+=("$k (timeout)")
	elif [ -z "$result" ]; then
		note "guest $k did not report (qemu exit $qrc); console: $w/console.txt"
		tail -n 30 "$w/console.txt" | sed "s/^/[$k console] /"
		failed+=("$k (no report)")
	elif [ "$result" != "NCDEVMEM-GUEST-RESULT rc=0" ]; then
		failed+=("$k (tests failed)")
	fi
done
step ""
printf '=== %-40s %4ds\n' "total" $(($(date +%s) - t_all))

if [ ${#failed[@]} -gt 0 ]; then
	echo "guest-kernel tests FAILED: ${failed[*]} (logs in $CACHE/work/)"
	exit 1
fi
echo "guest-kernel tests passed on: $KERNELS"
