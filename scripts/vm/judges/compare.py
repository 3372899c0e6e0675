#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The C ncdevmem and ours on the same command lines, outputs compared (scripts/vm/judges.sh).

Each case runs the C binary, then ours, with the same arguments, stdin and peer traffic. Compared:
the exit code, and stdout and stderr as sequences of line shapes (every run of digits becomes '#',
so ifindexes, tokens and offsets do not count; repeated shapes are counted). Printed per case: SAME,
or DIFF with the exit codes and the shapes only one side printed, with their counts.

A difference in outcome (the exit code, or one binary still running at the deadline) fails (exit
status 1): devmem.py and scripts read exit codes, and the issue's rule is that the C behaviour wins
unless it is a bug. The differences already judged are in KNOWN with the reason; there a case
passes with either equal outcomes or exactly the known pair.
Differences in text are reported only.

By default the command lines that devmem.py itself runs with both binaries (the probes and its
RX/TX shapes) are left out: devmem.py already checks their exit codes and the peer's bytes, and
they are the slow half. --all runs them too, for their text.
"""

import argparse
import collections
import glob
import re
import signal
import subprocess
import sys
import time

PATTERN = bytes([1, 2, 3, 4, 5, 6, 10])

# Exit-code differences already judged: case name -> ((C outcome, ours outcome), why). An outcome
# is the exit code, or "stopped" when the binary was still running at the deadline.
KNOWN = {
    "probe, no such device": (
        (-11, 1),
        "C bug, ours kept: the C tool crashes with SIGSEGV on an interface that does not exist "
        "(if_nametoindex gives 0 and it carries on); ours exits 1 naming the interface"),
}


def listening(port, ns=None, timeout=20.0):
    """Wait for a TCP listener on port (in netns ns), reading /proc/net/tcp{,6} there."""
    want = f":{port:04X}"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            args = ["cat", name] if ns is None else ["ip", "netns", "exec", ns, "cat", name]
            text = subprocess.run(args, capture_output=True, check=False).stdout.decode()
            for line in text.splitlines()[1:]:
                f = line.split()
                if f[1].endswith(want) and f[3] == "0A":
                    return True
        time.sleep(0.05)
    return False


def finish(p, stdin=None, timeout=60):
    """communicate() with a deadline; past it SIGTERM (both tools restore the NIC on it or not at
    all), then SIGKILL 10 s later. Returns (stdout, stderr, note)."""
    try:
        out, err = p.communicate(stdin, timeout=timeout)
        return out, err, ""
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=10)
            return out, err, f"(still running after {timeout} s: SIGTERM)"
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            return out, err, f"(still running after {timeout} s: SIGTERM, then SIGKILL)"


def nic_state(ifname):
    """What the tools may change on the NIC: channels, rings (tcp-data-split), RSS table, rules."""
    text = ""
    for opt in ("-l", "-g", "-x", "-n"):
        text += subprocess.run(["ethtool", opt, ifname], capture_output=True,
                               check=False).stdout.decode(errors="replace")
    return text


def shapes(text):
    return collections.Counter(re.sub(r"\d+", "#", ln) for ln in text.splitlines())


class Case:
    """One command line run by both binaries. kind: plain, rx (a sender feeds the listener), or tx
    (a socat listener in the peer namespace receives)."""

    def __init__(self, name, args, kind="plain", payload=b"", stdin=b"", nodelay=0, ksft=False):
        self.name, self.args, self.kind = name, args, kind
        self.payload, self.stdin, self.nodelay = payload, stdin, nodelay
        # ksft: a command line the kselftests themselves run with both binaries (their exit codes
        # and the peer's bytes are checked there); only --all runs it here again, for the text.
        self.ksft = ksft

    def run(self, a, binary, port):
        args = [binary] + [x.replace("PORT", str(port)) for x in self.args]
        peer_out = b""
        if self.kind == "rx":
            p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if listening(port):
                opts = ",nodelay" if self.nodelay else ""
                buf = f"-b {self.nodelay}" if self.nodelay else ""
                subprocess.run(["ip", "netns", "exec", a.ns, "socat", *buf.split(), "-u", "-",
                                f"TCP4:{a.local}:{port},bind={a.remote}:{port}{opts}"],
                               input=self.payload, capture_output=True, timeout=60, check=False)
            out, err, note = finish(p)
        elif self.kind == "tx":
            lp = subprocess.Popen(["ip", "netns", "exec", a.ns, "socat", "-U", "-",
                                   f"TCP4-LISTEN:{port}"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
            listening(port, ns=a.ns)
            p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            out, err, note = finish(p, self.stdin)
            try:
                peer_out = lp.communicate(timeout=20)[0]
            except subprocess.TimeoutExpired:
                lp.kill()
                peer_out = lp.communicate()[0]
        else:
            # A command that unexpectedly listens would wait for a peer forever: 10 s.
            p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            out, err, note = finish(p, self.stdin, timeout=10)
        return {"cmd": " ".join(args), "rc": p.returncode, "note": note,
                "out": out.decode(errors="replace"), "err": err.decode(errors="replace"),
                "peer": peer_out}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--if", dest="ifname", required=True)
    ap.add_argument("--ns", required=True)
    ap.add_argument("--local", required=True)
    ap.add_argument("--remote", required=True)
    ap.add_argument("--c-bin", required=True)
    ap.add_argument("--ours-bin", required=True)
    ap.add_argument("--all", action="store_true",
                    help="also the command lines devmem.py runs itself (compares their text too)")
    a = ap.parse_args()
    i, loc, rem = a.ifname, a.local, a.remote
    kib = (PATTERN * 200)[:1024]
    bad = (bytes([1, 2, 3, 9, 5, 6, 10]) * 200)[:1024]  # 146 mismatches: beyond the C tool's 20
    cases = [
        Case("probe", ["-f", i], ksft=True),
        Case("probe 16K niov", ["-f", i, "-b", "16384"], ksft=True),
        Case("probe, no such device", ["-f", "nosuch0"]),
        Case("no -f", ["-l", "-s", loc, "-p", "PORT"]),
        Case("unknown option", ["-f", i, "-Z"]),
        Case("rx, bad -b", ["-l", "-f", i, "-s", loc, "-p", "PORT", "-b", "1000"]),
        Case("rx, queue out of range", ["-l", "-f", i, "-s", loc, "-p", "PORT", "-t", "3", "-q", "2"]),
        Case("rx 1K -v 7 -c (check_rx)", ["-l", "-f", i, "-s", loc, "-p", "PORT", "-c", rem, "-v", "7"],
             "rx", kib, ksft=True),
        Case("rx 1K, no -v (payload to stdout)", ["-l", "-f", i, "-s", loc, "-p", "PORT", "-c", rem],
             "rx", kib),
        Case("rx wrong pattern -v 7", ["-l", "-f", i, "-s", loc, "-p", "PORT", "-c", rem, "-v", "7"],
             "rx", bad),
        Case("rx 1 B -L nodelay (check_rx_hds)", ["-l", "-f", i, "-s", loc, "-p", "PORT", "-L"],
             "rx", b"\0", nodelay=1, ksft=True),
        Case("rx 32K -b 16384 (check_rx_large_niov)",
             ["-l", "-f", i, "-s", loc, "-p", "PORT", "-c", rem, "-v", "7", "-b", "16384"],
             "rx", (PATTERN * 5000)[:32768], ksft=True),
        Case("tx hello world (check_tx)", ["-f", i, "-s", rem, "-p", "PORT"], "tx",
             stdin=b"hello\nworld\n", ksft=True),
        Case("tx -z 3 (check_tx_chunks)", ["-f", i, "-s", rem, "-p", "PORT", "-z", "3"], "tx",
             stdin=b"hello\nworld\n", ksft=True),
    ]
    if not a.all:
        skipped = [c.name for c in cases if c.ksft]
        cases = [c for c in cases if not c.ksft]
        print(f"CMP not run again here (devmem.py ran them with both binaries): {', '.join(skipped)}",
              flush=True)
    port = 21000
    rc = 0
    ndiff = 0
    # The NIC as the last run left it (ethtool runs once per run, not twice: each spawn is slow
    # under TCG). Every run must leave it as it found it.
    state = nic_state(a.ifname)
    for c in cases:
        port += 2
        diffs = []
        res = []
        for name, binary, p in (("C", a.c_bin, port), ("ours", a.ours_bin, port + 1)):
            before = state
            r = c.run(a, binary, p)
            if r["note"]:
                diffs.append(f"{name}: {r['note']}")
            # A tool killed (or buggy) may leave the NIC changed: say so, and put it back so the
            # next case starts clean (ours journals its changes; `ncdevmem cleanup` replays them).
            if glob.glob("/run/ncdevmem/*.journal"):
                cl = subprocess.run([a.ours_bin, "cleanup", "-f", a.ifname], capture_output=True,
                                    check=False)
                diffs.append(f"{name}: left a restore journal; `ncdevmem cleanup` exit "
                             f"{cl.returncode}")
            state = nic_state(a.ifname)
            if state != before:
                diffs.append(f"{name}: the NIC's channels/rings/RSS/rules differ after the run")
            res.append(r)
        rc_c, rc_o = res
        known = KNOWN.get(c.name)
        oc = tuple("stopped" if r["note"] else r["rc"] for r in (rc_c, rc_o))
        if oc[0] != oc[1]:
            if known and known[0] == oc:
                diffs.append(f"outcome: C {oc[0]}, ours {oc[1]}: KNOWN: {known[1]}")
            else:
                diffs.append(f"outcome: C {oc[0]}, ours {oc[1]}: FAIL")
                rc = 1
        if rc_c["peer"] != rc_o["peer"]:
            diffs.append(f"peer received: C {rc_c['peer']!r}, ours {rc_o['peer']!r}")
        for stream in ("out", "err"):
            sc, so = shapes(rc_c[stream]), shapes(rc_o[stream])
            for shape in sorted(set(sc) | set(so)):
                if sc[shape] != so[shape]:
                    diffs.append(f"std{stream}: C {sc[shape]}x, ours {so[shape]}x: {shape[:160]!r}")
        verdict = "SAME" if not diffs else "DIFF"
        print(f"CMP {verdict} {c.name}: outcome C {oc[0]} ours {oc[1]}  [{rc_c['cmd']}]",
              flush=True)
        if diffs:
            ndiff += 1
            for d in diffs:
                print(f"CMP     {d}", flush=True)
    print(f"CMP {len(cases)} cases, {ndiff} with differences; outcomes (exit code, or stopped): "
          f"{'an unexplained difference' if rc else 'equal or known'}", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
