#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Stability of the default run (issue 14): N runs of `ncdevmem run` in a row (default 10), each the
# embedded default (loopback, 5 s, one flow, validation on, default placement). Prints every
# figure, where each run's threads and softirq ran, the median, and fails (exit 1) when a run fell
# below 0.8 x the median.
#
#   scripts/stability.sh [N]
#   NCDEVMEM_BIN=/tmp/ncdevmem-before scripts/stability.sh      (another build)
#
# Figures taken while `uptime` shows load are noise: the load average is printed before and after.
set -euo pipefail
n=${1:-10}
cd "$(dirname "$0")/.."
bin=${NCDEVMEM_BIN:-bin/ncdevmem}
[ -x "$bin" ] || make -s build
command -v python3 >/dev/null || { echo "stability: python3 missing" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)   binary: $bin   command: $bin run (x$n)"
for i in $(seq "$n"); do
  "$bin" run --json "$out/$i.json" >/dev/null 2>"$out/$i.err" || { echo "run $i failed:"; cat "$out/$i.err"; exit 1; }
  python3 - "$out/$i.json" "$i" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["runs"][0]
s, t = r["source"]["flows"][0], r["target"]["flows"][0]
where = lambda f: ",".join(map(str, f.get("thread_cpus") or ([f["app_cpu"]] if f["app_cpu"] >= 0 else [])) or "?")
sirq = lambda f: ",".join(map(str, f.get("softirq_cpus") or ([f["net_cpu"]] if f["net_cpu"] >= 0 else []))) or "?"
print("run %2s: %7.3f Gbps   source app CPU %s, target app CPU %s, data softirq CPU %s%s" % (
    sys.argv[2], t["gbps"], where(s), where(t), sirq(t), "   WARNING" if r.get("warnings") else ""))
PY
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" "$n" <<'PY'
import json, statistics, sys
d, n = sys.argv[1], int(sys.argv[2])
g = [json.load(open(f"{d}/{i}.json"))["runs"][0]["target"]["flows"][0]["gbps"] for i in range(1, n + 1)]
m = statistics.median(g)
low = min(g)
print("figures: " + " ".join("%.2f" % x for x in g))
print("median %.3f Gbps, min %.3f (%.2f x median), max %.3f" % (m, low, low / m, max(g)))
ok = low >= 0.8 * m
print("%s: every run >= 0.8 x median" % ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
