#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Side-by-side single-flow loopback throughput: iperf3 against ncdevmem run (validation off, then
# on), same duration, same machine, one after the other. Prints one line per tool.
#
#   scripts/bench-loopback.sh [SECONDS] [ROUNDS]
#
# Needs iperf3 and python3 (for reading the JSON). Uses only 127.0.0.1; stops the iperf3 server it
# started, by PID.
set -euo pipefail
secs=${1:-10}
rounds=${2:-1}
cd "$(dirname "$0")/.."
bin=${NCDEVMEM_BIN:-bin/ncdevmem}
[ -x "$bin" ] || make -s build
command -v iperf3 >/dev/null || { echo "bench-loopback: iperf3 missing (apt-get install iperf3)" >&2; exit 2; }

port=$((20000 + RANDOM % 20000))
iperf3 -s -p "$port" >/dev/null 2>&1 &
srv=$!
trap 'kill "$srv" 2>/dev/null || true' EXIT
sleep 0.5

gbps_iperf() { python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'; }
gbps_ncdevmem() { python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.3f" % sum(f["gbps"] for f in r["runs"][0]["target"]["flows"]))'; }

for r in $(seq "$rounds"); do
  printf 'round %d  iperf3 -c 127.0.0.1 -t %s:           %s Gbps\n' "$r" "$secs" "$(iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -J | gbps_iperf)"
  printf 'round %d  ncdevmem run --time %ss --validate off: %s Gbps\n' "$r" "$secs" "$("$bin" run --time "${secs}s" --validate off --json - 2>/dev/null | gbps_ncdevmem)"
  printf 'round %d  ncdevmem run --time %ss --validate on:  %s Gbps\n' "$r" "$secs" "$("$bin" run --time "${secs}s" --validate on --json - 2>/dev/null | gbps_ncdevmem)"
done
