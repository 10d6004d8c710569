"""Probe guests' `/cgi-bin/uptime` over HTTP every `--every` seconds from inside a lab host
(run there with nsenter): one thread per guest, one JSON line per probe
(`ip`, start time `t`, `ok`, guest `uptime`, `latency`). A probe that gets no answer within
`--timeout` counts as unreachable. Used by the upgrade tests and `bench/upgrade` to show VMs
stay reachable and never reboot across an upgrade; `unreachable_intervals()` reads the lines.

    python -m tests.support.guestprobe --every 0.1 10.66.0.20 10.66.0.21
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.request
from typing import Any


def uptime(ip: str, timeout: float) -> float | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{ip}/cgi-bin/uptime", timeout=timeout) as resp:
            return float(resp.read().decode().strip())
    except (OSError, ValueError):
        return None


_out = threading.Lock()


def probe(ip: str, every: float, timeout: float, count: int) -> None:
    n = 0
    while count <= 0 or n < count:
        t0 = time.time()
        up = uptime(ip, timeout)
        line = json.dumps({"ip": ip, "t": t0, "ok": up is not None, "uptime": up, "latency": time.time() - t0})
        with _out:
            print(line, flush=True)
        n += 1
        time.sleep(max(0.0, every - (time.time() - t0)))


def unreachable_intervals(lines: list[dict[str, Any]]) -> dict[str, float]:
    """ip -> longest time from a failed probe's start to the next successful probe's start."""
    out: dict[str, float] = {}
    for ip in {ln["ip"] for ln in lines}:
        probes = sorted((ln for ln in lines if ln["ip"] == ip), key=lambda ln: ln["t"])
        worst, down_since = 0.0, None
        for ln in probes:
            if not ln["ok"]:
                down_since = ln["t"] if down_since is None else down_since
            elif down_since is not None:
                worst, down_since = max(worst, ln["t"] - down_since), None
        if down_since is not None and probes:
            worst = max(worst, probes[-1]["t"] + probes[-1]["latency"] - down_since)
        out[ip] = worst
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--every", type=float, default=0.1)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--count", type=int, default=0, help="probes per guest (0: until killed)")
    p.add_argument("ips", nargs="+")
    args = p.parse_args()
    if args.count <= 0:  # until stdin closes: whoever started us (through nsenter) stops us by closing it
        def watch_stdin() -> None:
            sys.stdin.buffer.read()
            sys.stdout.flush()
            os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()
    threads = [threading.Thread(target=probe, args=(ip, args.every, args.timeout, args.count), daemon=True)
               for ip in args.ips]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(0)
