#!/bin/bash
# SPDX-License-Identifier: MIT
# zcrx-table.sh: the guest report's io_uring zcrx tables (issue 16), from the NCDEVMEM-ZCRX-ROW
# lines the guest tests print (guesttest/zcrx_softnic_test.go):
#   1. every zcrx run: area, flows, Gbps, receiver CPU-s/GB, bytes, completions, average
#      completion, refill batches, refill stalls, re-arms, copy-fallback bytes;
#   2. the side by side (TestGuestSoftnicZcrxSideBySide): host-memory, devmem and zcrx RX on one boot,
#      interleaved rounds, median Gbps and receiver CPU-s/GB per path.
#
#   zcrx-table.sh [FILE...]     default: $NCDEVMEM_VM_CACHE/work/*/out/*.out
#
# Exit status 1 when a file holds a malformed row; prints "no zcrx rows" and exits 0 when none.
set -euo pipefail

cache=${NCDEVMEM_VM_CACHE:-/var/cache/ncdevmem-vm}
if [ $# -eq 0 ]; then
	shopt -s nullglob
	set -- "$cache"/work/*/out/*.out
fi
command -v jq >/dev/null || { echo "zcrx-table.sh: needs jq (apt-get install jq)" >&2; exit 1; }

rows=$(cat "$@" 2>/dev/null | tr -d '\026' | { grep -aoE 'NCDEVMEM-ZCRX-ROW \{.*\}' || true; } | sed 's/^NCDEVMEM-ZCRX-ROW //')
if [ -z "$rows" ]; then
	echo "no zcrx rows"
	exit 0
fi
echo "$rows" | jq -e . >/dev/null || { echo "zcrx-table.sh: a NCDEVMEM-ZCRX-ROW line is not valid JSON" >&2; exit 1; }

fmt() { column -t -s $'\t'; }
num='def n: if . == null then "-" elif type == "number" then (if . == (. | floor) then tostring else (. * 1000 | round / 1000 | tostring) end) else tostring end;'

echo "zcrx runs:"
{
	printf 'kernel\tmode\tarea\tflows\tGbps\trx CPU-s/GB\tbytes\tcompletions\tavg completion\trefill batches\trefill stalls\tre-arms\tcopy bytes\n'
	echo "$rows" | jq -r "$num"' select(.mode | startswith("side:") | not) |
		[.kernel, .mode, .area, .flows, .gbps, .rx_cpu_s_per_gb, .bytes, .completions, .avg_completion,
		 .refill_batches, .refill_stalls, .rearms, .copy_bytes] | map(n) | @tsv'
} | fmt

side=$(echo "$rows" | jq -c 'select(.mode | startswith("side:"))')
if [ -n "$side" ]; then
	echo
	echo "side by side (same boot, interleaved rounds, median of each path):"
	{
		printf 'kernel\tRX path\trounds\tGbps\trx CPU-s/GB\n'
		echo "$side" | jq -rs "$num"' group_by(.kernel + .mode)[] |
			(map(.gbps) | sort) as $g | (map(.rx_cpu_s_per_gb) | sort) as $c |
			[.[0].kernel, (.[0].mode | ltrimstr("side:")), length, $g[length/2|floor], $c[length/2|floor]] | map(n) | @tsv'
	} | fmt
fi
