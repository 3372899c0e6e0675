#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Loopback throughput of ncdevmem against iperf3, interleaved: every round runs each case once, in
# a rotated order, so load that comes and goes on a shared machine hits every case alike. Cases:
#
#   iperf3 -P 1                   ncdevmem run --validate off        ncdevmem run --validate on
#   iperf3 -P 2                   ncdevmem run -n 2 --validate off   ncdevmem run -n 2 --validate on
#
# Prints every figure, the medians, and the checks of issue 14 (ncdevmem 1 flow, validation off
# >= iperf3 -P 1; validation on within 10% of off; -n 2 >= iperf3 -P 2). Exits 1 when a check
# fails, 2 when a tool is missing.
#
#   scripts/bench-loopback.sh [SECONDS] [ROUNDS]          (default 5 s, 5 rounds)
#   NCDEVMEM_BIN=/tmp/ncdevmem-before scripts/bench-loopback.sh   (another build)
#
# Needs iperf3 and python3. Uses only 127.0.0.1; stops the iperf3 server it started, by PID.
# Figures taken while `uptime` shows load are noise: the load average is printed before and after.
set -euo pipefail
secs=${1:-5}
rounds=${2:-5}
cd "$(dirname "$0")/.."
bin=${NCDEVMEM_BIN:-bin/ncdevmem}
[ -x "$bin" ] || make -s build
command -v iperf3 >/dev/null || { echo "bench-loopback: iperf3 missing (apt-get install iperf3)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench-loopback: python3 missing" >&2; exit 2; }

port=$((20000 + RANDOM % 20000))
iperf3 -s -p "$port" >/dev/null 2>&1 &
srv=$!
out=$(mktemp -d)
trap 'kill "$srv" 2>/dev/null || true; rm -rf "$out"' EXIT
sleep 0.5

gbps_iperf() { python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'; }
gbps_ncdevmem() { python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.3f" % sum(f["gbps"] for f in r["runs"][0]["target"]["flows"]))'; }

cases=(iperf3-P1 ncdevmem-off ncdevmem-on iperf3-P2 ncdevmem-n2-off ncdevmem-n2-on)
cmdline() {
  case $1 in
  iperf3-P1) echo "iperf3 -c 127.0.0.1 -t $secs" ;;
  iperf3-P2) echo "iperf3 -c 127.0.0.1 -t $secs -P 2" ;;
  ncdevmem-off) echo "$bin run --time ${secs}s --validate off" ;;
  ncdevmem-on) echo "$bin run --time ${secs}s --validate on" ;;
  ncdevmem-n2-off) echo "$bin run --time ${secs}s -n 2 --validate off" ;;
  ncdevmem-n2-on) echo "$bin run --time ${secs}s -n 2 --validate on" ;;
  esac
}
measure() {
  case $1 in
  iperf3-P1) iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -J | gbps_iperf ;;
  iperf3-P2) iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -P 2 -J | gbps_iperf ;;
  ncdevmem-off) "$bin" run --time "${secs}s" --validate off --json - 2>/dev/null | gbps_ncdevmem ;;
  ncdevmem-on) "$bin" run --time "${secs}s" --validate on --json - 2>/dev/null | gbps_ncdevmem ;;
  ncdevmem-n2-off) "$bin" run --time "${secs}s" -n 2 --validate off --json - 2>/dev/null | gbps_ncdevmem ;;
  ncdevmem-n2-on) "$bin" run --time "${secs}s" -n 2 --validate on --json - 2>/dev/null | gbps_ncdevmem ;;
  esac
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)   binary: $bin   $secs s x $rounds rounds"
for c in "${cases[@]}"; do printf '  %-16s %s\n' "$c" "$(cmdline "$c")"; done
n=${#cases[@]}
for r in $(seq "$rounds"); do
  line="round $r:"
  for k in $(seq 0 $((n - 1))); do
    c=${cases[$(((k + r - 1) % n))]}
    g=$(measure "$c")
    echo "$g" >>"$out/$c"
    line+=" $c=$g"
  done
  echo "$line"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" "${cases[@]}" <<'PY'
import statistics, sys
d = sys.argv[1]
med = {}
print("%-16s %8s  %s" % ("case", "median", "all (Gbps)"))
for c in sys.argv[2:]:
    v = [float(x) for x in open(f"{d}/{c}").read().split()]
    med[c] = statistics.median(v)
    print("%-16s %8.3f  %s" % (c, med[c], " ".join("%.2f" % x for x in v)))
checks = [
    ("1 flow, validation off >= iperf3 -P 1", med["ncdevmem-off"] >= med["iperf3-P1"]),
    ("1 flow, validation on within 10% of off", med["ncdevmem-on"] >= 0.9 * med["ncdevmem-off"]),
    ("-n 2, validation off >= iperf3 -P 2", med["ncdevmem-n2-off"] >= med["iperf3-P2"]),
]
bad = 0
for name, ok in checks:
    print("%s: %s" % ("PASS" if ok else "FAIL", name))
    bad += not ok
sys.exit(1 if bad else 0)
PY
