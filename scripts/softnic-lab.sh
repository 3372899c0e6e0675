#!/bin/sh
# SPDX-License-Identifier: MIT
# The two-namespace lab for softnic (see softnic/README.md): one end of a softnic pair in network
# namespace A, the other in B, addressed and up, like two hosts joined by a cable.
#
#   softnic-lab.sh up [--v6]     snic0 -> netns snic-a (192.0.2.1/24, 2001:db8:5::1/64),
#                                snic1 -> netns snic-b (192.0.2.2/24, 2001:db8:5::2/64), links up,
#                                waits for carrier, prints the lab as shell assignments
#                                (ADDR_A/ADDR_B are the IPv6 addresses with --v6)
#   softnic-lab.sh down          moves both back to the initial namespace, down and without
#                                addresses, and deletes the namespaces
#   softnic-lab.sh status        prints the lab as shell assignments; exit 1 when it is not up
#
# Names and addresses can be changed with SOFTNIC_LAB_IF_A, SOFTNIC_LAB_IF_B (snic0, snic1),
# SOFTNIC_LAB_NS_A, SOFTNIC_LAB_NS_B (snic-a, snic-b), SOFTNIC_LAB_V4_A, SOFTNIC_LAB_V4_B,
# SOFTNIC_LAB_V6_A, SOFTNIC_LAB_V6_B (without prefix length), SOFTNIC_LAB_WAIT (seconds to wait
# for carrier, default 10). Needs root (CAP_NET_ADMIN) and iproute2. POSIX sh: runs under busybox.
set -eu

IF_A=${SOFTNIC_LAB_IF_A:-snic0}
IF_B=${SOFTNIC_LAB_IF_B:-snic1}
NS_A=${SOFTNIC_LAB_NS_A:-snic-a}
NS_B=${SOFTNIC_LAB_NS_B:-snic-b}
V4_A=${SOFTNIC_LAB_V4_A:-192.0.2.1}
V4_B=${SOFTNIC_LAB_V4_B:-192.0.2.2}
V6_A=${SOFTNIC_LAB_V6_A:-2001:db8:5::1}
V6_B=${SOFTNIC_LAB_V6_B:-2001:db8:5::2}
WAIT=${SOFTNIC_LAB_WAIT:-10}

# The real iproute2 ip: busybox sh runs its own `ip` applet ahead of PATH, which lacks netns.
IP=${SOFTNIC_LAB_IP:-}
if [ -z "$IP" ]; then
	for c in /usr/sbin/ip /sbin/ip /usr/bin/ip /bin/ip; do
		if [ -x "$c" ] && ! readlink -f "$c" | grep -q busybox; then
			IP=$c
			break
		fi
	done
fi

die() {
	echo "softnic-lab.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: softnic-lab.sh up [--v6] | down | status" >&2
	exit 2
}

# in_ns NS IF: true when IF exists in NS.
in_ns() { "$IP" -n "$1" link show dev "$2" >/dev/null 2>&1; }
ns_exists() { "$IP" netns list 2>/dev/null | grep -q "^$1\( \|$\)"; }

print_lab() {
	a=$V4_A
	b=$V4_B
	if [ "$1" = 6 ]; then
		a=$V6_A
		b=$V6_B
	fi
	echo "NS_A=$NS_A IF_A=$IF_A ADDR_A=$a"
	echo "NS_B=$NS_B IF_B=$IF_B ADDR_B=$b"
	echo "ADDR4_A=$V4_A ADDR4_B=$V4_B ADDR6_A=$V6_A ADDR6_B=$V6_B"
}

# wait_carrier NS IF: waits up to WAIT seconds for IF's lower layer to come up.
wait_carrier() {
	i=0
	while [ "$i" -lt $((WAIT * 10)) ]; do
		if "$IP" -n "$1" -o link show dev "$2" | grep -q 'LOWER_UP'; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# down_one NS IF: IF back to the initial namespace, down, addresses flushed; NS deleted.
down_one() {
	if ns_exists "$1"; then
		if in_ns "$1" "$2"; then
			"$IP" -n "$1" link set dev "$2" down
			"$IP" -n "$1" addr flush dev "$2"
			"$IP" -n "$1" link set dev "$2" netns 1
		fi
		"$IP" netns del "$1"
	fi
	if "$IP" link show dev "$2" >/dev/null 2>&1; then
		"$IP" link set dev "$2" down
		"$IP" addr flush dev "$2"
	fi
}

lab_down() {
	down_one "$NS_A" "$IF_A"
	down_one "$NS_B" "$IF_B"
}

# up_one NS IF V4 V6
up_one() {
	"$IP" netns add "$1"
	"$IP" -n "$1" link set dev lo up
	"$IP" link set dev "$2" netns "$1"
	"$IP" -n "$1" addr add "$3/24" dev "$2"
	"$IP" -n "$1" -6 addr add "$4/64" dev "$2" nodad
	"$IP" -n "$1" link set dev "$2" up
}

lab_up() {
	fam=4
	for arg in "$@"; do
		case "$arg" in
		--v6) fam=6 ;;
		*) usage ;;
		esac
	done
	[ "$(id -u)" = 0 ] || die "needs root (it creates network namespaces and moves $IF_A and $IF_B)"
	for ns in "$NS_A" "$NS_B"; do
		ns_exists "$ns" && die "network namespace $ns exists already (run 'softnic-lab.sh down' first)"
	done
	for dev in "$IF_A" "$IF_B"; do
		"$IP" link show dev "$dev" >/dev/null 2>&1 ||
			die "no interface $dev in this namespace (load the module: insmod softnic/softnic.ko)"
	done
	if ! up_one "$NS_A" "$IF_A" "$V4_A" "$V6_A" || ! up_one "$NS_B" "$IF_B" "$V4_B" "$V6_B"; then
		lab_down
		die "setting up the lab failed (commands above); everything was put back"
	fi
	if ! wait_carrier "$NS_A" "$IF_A" || ! wait_carrier "$NS_B" "$IF_B"; then
		lab_down
		die "no carrier on $IF_A/$IF_B after ${WAIT}s (are they the two ends of one pair?); everything was put back"
	fi
	print_lab "$fam"
}

lab_status() {
	in_ns "$NS_A" "$IF_A" && in_ns "$NS_B" "$IF_B" || {
		echo "softnic-lab.sh: the lab is not up" >&2
		exit 1
	}
	print_lab "${1:-4}"
}

[ $# -ge 1 ] || usage
[ -n "$IP" ] || die "needs iproute2's ip (not busybox's): install iproute2 or set SOFTNIC_LAB_IP"
cmd=$1
shift
case "$cmd" in
up) lab_up "$@" ;;
down)
	[ $# = 0 ] || usage
	lab_down
	;;
status)
	case "${1:-}" in --v6) lab_status 6 ;; "") lab_status 4 ;; *) usage ;; esac
	;;
*) usage ;;
esac
