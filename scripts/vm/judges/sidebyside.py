#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Side-by-side devmem RX receivers in the judges guest (scripts/vm/judges.sh).

Interleaved rounds, rotating the order each round, one devmem RX flow each:
  C        the kernel selftest's C `ncdevmem -l ... -v 7` (validation on)
  ours     our binary with exactly the same command line
  ours-b   the same plus --dontneed-batch 128 --json (batched token return)
  run      `ncdevmem run --devmem-rx -n 1` between two `ncdevmem server`s

The three legacy receivers get the same sender: socat in the peer namespace sending a tmpfs file of
the C tool's -v 7 pattern (1..6, '\\n'), bound to the destination port as devmem.py's sender is (the
C tool's -c steering rule matches on it). `run` uses our own source server, in the same namespace.

Figures per receiver and round:
  Gbps         legacy: bytes / (receiver exit - sender release); run: the target's window figure
  CPU s/GB     receiver process user+sys CPU (utime+stime+cutime+cstime from /proc/PID/stat) over
               the data phase only: legacy from the sender's release to exit (os.wait4 rusage minus
               the /proc stat read at release); run: the target server's CPU sampled every 50 ms,
               interpolated to the run's own measurement window, over the window's bytes
  tokens, DONTNEED calls
               C: frags counted from its per-frag stderr line; by its source (ncdevmem.c do_server)
               it makes one SO_DEVMEM_DONTNEED call with token_count 1 per frag. ours: the same
               stderr lines (it prints them too) and, for ours-b and run, the counts from --json.
Exit status 1 if any receiver failed (non-zero exit, short count, validation error).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime

PATTERN = bytes([1, 2, 3, 4, 5, 6, 10])  # the C tool's -v 7 sequence: seed 1..6, then '\n'
TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    """User+sys CPU seconds of pid and its reaped children, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK


def listening(port, ipv6=False, timeout=30.0):
    """Wait until a TCP socket listens on port in this namespace (state 0A in /proc/net/tcp*)."""
    files = ["/proc/net/tcp6", "/proc/net/tcp"]
    want = f":{port:04X}"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for name in files:
            try:
                with open(name, encoding="ascii") as f:
                    for line in f.readlines()[1:]:
                        parts = line.split()
                        if parts[1].endswith(want) and parts[3] == "0A":
                            return True
            except FileNotFoundError:
                pass
        time.sleep(0.02)
    return False


class Sender:
    """socat in the peer namespace, started ahead and released by a newline on its stdin."""

    def __init__(self, a, port):
        script = (f"read go; exec socat -u -b 65536 OPEN:{a.pattern} "
                  f"TCP4:{a.local}:{port},bind={a.remote}:{port}")
        self.cmd = f"ip netns exec {a.ns} bash -c '{script}'"
        self.p = subprocess.Popen(["ip", "netns", "exec", a.ns, "bash", "-c", script],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)

    def release(self):
        self.p.stdin.write(b"go\n")
        self.p.stdin.flush()

    def wait(self):
        err = self.p.communicate(timeout=120)[1]
        return self.p.returncode, err.decode(errors="replace").strip()


def legacy_round(a, name, binary, extra, port):
    args = [binary, "-l", "-f", a.ifname, "-s", a.local, "-p", str(port), "-c", a.remote, "-v", "7"]
    args += extra
    out = f"/tmp/sbs.{name}.out"
    err = f"/tmp/sbs.{name}.err"
    sender = Sender(a, port)
    with open(out, "wb") as fo, open(err, "wb") as fe:
        p = subprocess.Popen(args, stdout=fo, stderr=fe)
        ok = listening(port)
        cpu0 = cpu_of(p.pid) if ok else 0.0
        t0 = time.monotonic()
        if ok:
            sender.release()
        _, status, ru = os.wait4(p.pid, 0)
        t1 = time.monotonic()
    p.returncode = os.waitstatus_to_exitcode(status)
    if not ok:
        sender.p.kill()
    src_rc, src_err = sender.wait()
    cpu = ru.ru_utime + ru.ru_stime - cpu0
    with open(err, encoding="utf-8", errors="replace") as f:
        text = f.read()
    frags = len(re.findall(r"^received frag_page=", text, re.M))
    got = re.findall(r"^total_received=(\d+)$", text, re.M)
    received = int(got[-1]) if got else 0
    res = {"name": name, "cmd": " ".join(args), "sender": sender.cmd, "rc": p.returncode,
           "bytes": received, "secs": t1 - t0, "cpu": cpu, "tokens": frags,
           "dontneed": frags, "dontneed_src": "1 per frag (stderr lines)",
           "fail": None}
    if "--json" in extra:
        with open(extra[extra.index("--json") + 1], encoding="utf-8") as f:
            j = json.load(f).get("rx") or {}
        res["tokens"], res["dontneed"] = j.get("tokens", 0), j.get("dontneed_calls", 0)
        res["dontneed_src"] = "--json"
        if j.get("dmabuf_bytes") != received:
            res["fail"] = f"--json dmabuf_bytes {j['dmabuf_bytes']} != stderr total {received}"
    if not ok:
        res["fail"] = f"no listener on port {port} within 30 s"
    elif p.returncode != 0:
        res["fail"] = f"exit {p.returncode}: {text.strip().splitlines()[-3:]}"
    elif received != a.bytes:
        res["fail"] = f"received {received} of {a.bytes} bytes"
    elif "Failed validation" in text:
        res["fail"] = "validation errors"
    elif src_rc != 0:
        res["fail"] = f"sender exit {src_rc}: {src_err}"
    return res


class Sampler(threading.Thread):
    """Samples a process's CPU seconds with wall-clock (epoch) times every 50 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.samples.append((time.time(), cpu_of(self.pid)))
            time.sleep(0.05)

    def at(self, t):
        s = self.samples
        for (ta, ca), (tb, cb) in zip(s, s[1:]):
            if ta <= t <= tb:
                return ca + (cb - ca) * (t - ta) / (tb - ta) if tb > ta else ca
        raise ValueError(f"time {t} outside the sampled span {s[0][0]}..{s[-1][0]}")


def run_round(a, target_pid, idx):
    js = f"/tmp/sbs.run.{idx}.json"
    args = [a.ours_bin, "run", "--src", f"{a.remote}:18400", "--dst", f"{a.local}:18400",
            "--devmem-rx", "-f", a.ifname, "--rx-mem", "udmabuf", "-n", "1",
            "--time", f"{a.run_time}s", "--json", js]
    samp = Sampler(target_pid)
    samp.start()
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
                       check=False)
    time.sleep(0.1)
    samp.stop.set()
    samp.join()
    res = {"name": "run", "cmd": " ".join(args), "sender": "ncdevmem server (source, netns rem)",
           "rc": p.returncode, "fail": None}
    if p.returncode != 0:
        res["fail"] = f"exit {p.returncode}: {p.stdout.decode(errors='replace').strip()[-600:]}"
        return res
    with open(js, encoding="utf-8") as f:
        r = json.load(f)["runs"][0]
    start = datetime.fromisoformat(r["start"].replace("Z", "+00:00")).timestamp()
    flow = r["target"]["flows"][0]
    dm = r["target"].get("devmem") or {}
    res.update(bytes=flow["bytes"], secs=flow["usec"] / 1e6, gbps=flow["gbps"],
               cpu=samp.at(start + r["duration_sec"]) - samp.at(start),
               tokens=dm.get("tokens", 0), dontneed=dm.get("dontneed_calls", 0),
               dontneed_src="--json")
    if flow["bytes"] == 0:
        res["fail"] = "no bytes in the window"
    return res


def probe_times(a, binary):
    """Wall and CPU seconds of the probe `BIN -f IF`, which devmem.py runs before every case."""
    walls, cpus = [], []
    for _ in range(a.probes):
        t0 = time.monotonic()
        p = subprocess.Popen([binary, "-f", a.ifname], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        walls.append(time.monotonic() - t0)
        cpus.append(ru.ru_utime + ru.ru_stime)
        if os.waitstatus_to_exitcode(status) != 0:
            return None
    return median(walls), median(cpus)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--if", dest="ifname", required=True)
    ap.add_argument("--ns", required=True)
    ap.add_argument("--local", required=True)
    ap.add_argument("--remote", required=True)
    ap.add_argument("--c-bin", required=True)
    ap.add_argument("--ours-bin", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mib", type=int, default=16)
    ap.add_argument("--probes", type=int, default=3)
    ap.add_argument("--run-time", type=int, default=2)
    a = ap.parse_args()
    a.bytes = a.mib << 20
    a.pattern = "/tmp/sbs.pattern"
    with open(a.pattern, "wb") as f:
        f.write((PATTERN * (a.bytes // len(PATTERN) + 1))[:a.bytes])

    # The two servers for `ncdevmem run`: target here (devmem RX on the NIC), source in the netns.
    logs = [open("/tmp/sbs.server-dst.log", "wb"), open("/tmp/sbs.server-src.log", "wb")]
    dst = subprocess.Popen([a.ours_bin, "server", "--listen", f"{a.local}:18400", "-q"],
                           stdout=logs[0], stderr=subprocess.STDOUT)
    src = subprocess.Popen(["ip", "netns", "exec", a.ns, a.ours_bin, "server", "--listen",
                            f"{a.remote}:18400", "-q"], stdout=logs[1], stderr=subprocess.STDOUT)
    listening(18400)

    failed = False
    cmdline = f"BIN -f {a.ifname}"
    for name, binary in (("C", a.c_bin), ("ours", a.ours_bin)):
        t = probe_times(a, binary)
        if t is None:
            failed = True
            print(f"SBS probe {name}: FAIL `{cmdline}` exited non-zero", flush=True)
        else:
            print(f"SBS probe {name:4s} `{cmdline}`: median of {a.probes}: {t[0]:.3f} s wall, "
                  f"{t[1]:.3f} s CPU", flush=True)

    kinds = ["C", "ours", "ours-b", "run"]
    results = {k: [] for k in kinds}
    port = 20000
    for rnd in range(a.rounds):
        order = kinds[rnd % len(kinds):] + kinds[:rnd % len(kinds)]
        for k in order:
            port += 1
            if k == "C":
                r = legacy_round(a, k, a.c_bin, [], port)
            elif k == "ours":
                r = legacy_round(a, k, a.ours_bin, [], port)
            elif k == "ours-b":
                r = legacy_round(a, k, a.ours_bin,
                                 ["--dontneed-batch", "128", "--json", "/tmp/sbs.ours-b.json"], port)
            else:
                r = run_round(a, dst.pid, rnd)
            if "gbps" not in r and r.get("secs"):
                r["gbps"] = r["bytes"] * 8 / r["secs"] / 1e9
            if r["fail"]:
                failed = True
                print(f"SBS round {rnd + 1} {k}: FAIL {r['fail']}  [{r['cmd']}]", flush=True)
            else:
                cpugb = r["cpu"] / (r["bytes"] / 1e9)
                r["cpugb"] = cpugb
                print(f"SBS round {rnd + 1} {k:6s} {r['gbps']:6.3f} Gbps  {cpugb:6.3f} CPU-s/GB  "
                      f"{r['bytes']} B in {r['secs']:.2f} s, cpu {r['cpu']:.2f} s, "
                      f"{r['tokens']} tokens, {r['dontneed']} DONTNEED", flush=True)
                results[k].append(r)
    for p in (dst, src):
        p.terminate()
        p.wait(timeout=10)

    print("SBS commands:")
    for k in kinds:
        if results[k]:
            print(f"SBS   {k:6s} {results[k][0]['cmd']}")
            print(f"SBS   {'':6s} sender: {results[k][0]['sender']}")
    c_g = median([r["gbps"] for r in results["C"]])
    c_c = median([r["cpugb"] for r in results["C"]])
    print(f"SBS | receiver | rounds | Gbps (median) | x C | CPU-s/GB (median) | x C | "
          f"DONTNEED per 10k tokens |")
    print("SBS |---|---|---|---|---|---|---|")
    for k in kinds:
        rs = results[k]
        if not rs:
            print(f"SBS | {k} | 0 | - | - | - | - | - |")
            continue
        g = median([r["gbps"] for r in rs])
        c = median([r["cpugb"] for r in rs])
        tok = sum(r["tokens"] for r in rs)
        dn = sum(r["dontneed"] for r in rs)
        per = f"{dn * 10000 / tok:.0f} ({rs[0]['dontneed_src']})" if tok else "-"
        print(f"SBS | {k} | {len(rs)} | {g:.3f} | {g / c_g:.2f} | {c:.3f} | {c / c_c:.2f} | {per} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
