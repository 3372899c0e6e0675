#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Stability of the default run (issue 14): N runs of `ncdevmem run` in a row (default 10), each the
# embedded default (loopback, 5 s, one flow, validation on, default placement). Prints every
# figure, where each run's threads and softirq ran, the median, and fails (exit 1) when a run fell
# below 0.8 x the median.
#
#   scripts/stability.sh [N]
#   NCDEVMEM_BIN=/tmp/ncdevmem-before scripts/stability.sh      (another build)
#   STABILITY_CONTROL=0 scripts/stability.sh                    (no iperf3 control)
#
# The machine is measured too, so a failed set can be told apart from a noisy host:
#   - each run's line shows the CPU time the hypervisor stole while it ran (/proc/stat "steal")
#     and the load average when it started;
#   - when iperf3 is installed, an `iperf3 -c 127.0.0.1 -t 5` run follows every ncdevmem run (a
#     control: the same loopback, a tool we did not write) and its spread is printed beside ours.
#     Only ncdevmem's spread decides PASS/FAIL; the control says whether the host moved.
set -euo pipefail
n=${1:-10}
cd "$(dirname "$0")/.."
bin=${NCDEVMEM_BIN:-bin/ncdevmem}
[ -x "$bin" ] || make -s build
command -v python3 >/dev/null || { echo "stability: python3 missing" >&2; exit 2; }
control=${STABILITY_CONTROL:-1}
if [ "$control" = 1 ] && ! command -v iperf3 >/dev/null; then
  echo "stability: iperf3 not installed, running without the control (apt-get install iperf3)" >&2
  control=0
fi
out=$(mktemp -d)
srv=
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$out"' EXIT
if [ "$control" = 1 ]; then
  port=$((20000 + RANDOM % 20000))
  iperf3 -s -p "$port" >/dev/null 2>&1 &
  srv=$!
  sleep 0.5
fi

# cpu_ticks: "total steal" over all CPUs from /proc/stat.
cpu_ticks() { awk '/^cpu /{t=0; for (i=2;i<=NF;i++) t+=$i; print t, $9}' /proc/stat; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)   binary: $bin   command: $bin run (x$n)$([ "$control" = 1 ] && echo ", each followed by iperf3 -c 127.0.0.1 -t 5")"
for i in $(seq "$n"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  read -r t0 s0 < <(cpu_ticks)
  "$bin" run --json "$out/$i.json" >/dev/null 2>"$out/$i.err" || { echo "run $i failed:"; cat "$out/$i.err"; exit 1; }
  read -r t1 s1 < <(cpu_ticks)
  steal=$(awk -v s=$((s1 - s0)) -v t=$((t1 - t0)) 'BEGIN{printf "%.1f", t ? 100*s/t : 0}')
  echo "$steal" >"$out/$i.steal"
  ctl=
  if [ "$control" = 1 ]; then
    iperf3 -c 127.0.0.1 -p "$port" -t 5 -J >"$out/$i.iperf" 2>/dev/null || { echo "control run $i (iperf3) failed"; exit 1; }
    ctl=$(python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e9))' "$out/$i.iperf")
    echo "$ctl" >"$out/$i.ctl"
  fi
  python3 - "$out/$i.json" "$i" "$steal" "$load" "$ctl" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["runs"][0]
s, t = r["source"]["flows"][0], r["target"]["flows"][0]
where = lambda f: ",".join(map(str, f.get("thread_cpus") or ([f["app_cpu"]] if f["app_cpu"] >= 0 else [])) or "?")
sirq = lambda f: ",".join(map(str, f.get("softirq_cpus") or ([f["net_cpu"]] if f["net_cpu"] >= 0 else []))) or "?"
ctl = ("   control iperf3 %7.3f Gbps" % float(sys.argv[5])) if sys.argv[5] else ""
print("run %2s: %7.3f Gbps   source app CPU %s, target app CPU %s, data softirq CPU %s   steal %s%%  load %s%s%s" % (
    sys.argv[2], t["gbps"], where(s), where(t), sirq(t), sys.argv[3], sys.argv[4], ctl,
    "   WARNING" if r.get("warnings") else ""))
PY
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" "$n" "$control" <<'PY'
import json, os, statistics, sys
d, n, control = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
g = [json.load(open(f"{d}/{i}.json"))["runs"][0]["target"]["flows"][0]["gbps"] for i in range(1, n + 1)]
steal = [float(open(f"{d}/{i}.steal").read()) for i in range(1, n + 1)]
m = statistics.median(g)
low = min(g)
print("figures: " + " ".join("%.2f" % x for x in g))
print("median %.3f Gbps, min %.3f (%.2f x median), max %.3f" % (m, low, low / m, max(g)))
print("steal during the runs: max %.1f%%, mean %.1f%%" % (max(steal), statistics.mean(steal)))
if control:
    c = [float(open(f"{d}/{i}.ctl").read()) for i in range(1, n + 1)]
    cm = statistics.median(c)
    print("control (iperf3): " + " ".join("%.2f" % x for x in c))
    print("control median %.3f Gbps, min %.3f (%.2f x median), max %.3f" % (cm, min(c), min(c) / cm, max(c)))
ok = low >= 0.8 * m
print("%s: every run >= 0.8 x median" % ("PASS" if ok else "FAIL"))
if not ok and control and min(c) < 0.8 * cm:
    print("note: the iperf3 control fell below 0.8 x its median too: the host moved during this set")
sys.exit(0 if ok else 1)
PY
