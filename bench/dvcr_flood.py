"""bench/dvcr_flood: what a flood of wrong passwords costs a legitimate DVCR pull.

One standalone DVCR (HTTPS, bcrypt htpasswd users) on loopback, one 3 MB blob pushed by the
importer. The node user pulls it over a kept-alive connection, first with nothing else going
on (the peer figure), then while a flood sends `--rate` wrong passwords a second (distinct
passwords over 8 kept-alive TLS connections, as a guessing client would). Same run, same
server. Prints the pull latency p50/p95 both ways and the ratio (target: the flood costs at
most 1.2x), and how the flood was answered (401 checked, 429 refused unchecked).

    python -m bench.dvcr_flood [--rate 50] [--pulls 15] [--rounds 3] [-o json]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.report import Row, percentile, print_table
from tests.services.dvcr import DvcrProcess

BLOB = 3 * 1024 * 1024


def session(server: DvcrProcess, creds: tuple[str, str]) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.auth = creds
    s.verify = str(server.ca_file)
    return s


def pulls(s: requests.Session, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = s.get(url, timeout=60)
        assert r.status_code == 200 and len(r.content) == BLOB, r.status_code
        out.append(time.perf_counter() - t0)
        time.sleep(0.05)
    return out


class Flood:
    """`rate` requests a second with wrong passwords, sent on schedule whatever the answers."""

    def __init__(self, server: DvcrProcess, user: str, rate: float) -> None:
        self.server, self.user, self.rate = server, user, rate
        self.codes: collections.Counter[int] = collections.Counter()
        self.sent = 0
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(8)
        # kept-alive connections, as a guessing client would use: the cost measured is the
        # server's answer to each wrong password, not TLS handshakes
        self._sessions = [session(server, (user, "")) for _ in range(8)]
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _one(self, n: int) -> None:
        s = self._sessions[n % len(self._sessions)]
        try:
            r = s.get(self.server.url + "/v2/", auth=(self.user, f"guess-{n}"), timeout=30)
            self.codes[r.status_code] += 1
        except requests.RequestException:
            self.codes[0] += 1

    def _run(self) -> None:
        start = time.perf_counter()
        while not self._stop.is_set():
            self._pool.submit(self._one, self.sent)
            self.sent += 1
            delay = start + self.sent / self.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def __enter__(self) -> Flood:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="wrong passwords a second")
    parser.add_argument("--pulls", type=int, default=15, help="pulls per phase")
    parser.add_argument("--rounds", type=int, default=3, help="quiet/flood phase pairs")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of flood before measuring")
    parser.add_argument("-o", dest="output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dvp-bench-flood-") as tmp:
        server = DvcrProcess(Path(tmp) / "data")
        server.start()
        try:
            data = os.urandom(BLOB)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            pusher = session(server, server.creds("importer"))
            r = pusher.post(f"{server.url}/v2/bench/flood/blobs/uploads/", params={"digest": digest}, data=data,
                            timeout=60)
            assert r.status_code == 201, r.text
            url = f"{server.url}/v2/bench/flood/blobs/{digest}"
            node = session(server, server.creds("node"))
            pulls(node, url, 5)  # warm: TLS session, verified credentials
            quiet: list[float] = []
            loud: list[float] = []
            codes: collections.Counter[int] = collections.Counter()
            sent, flood_seconds = 0, 0.0
            for _ in range(args.rounds):  # interleaved, so drift in the machine's load hits both alike
                quiet += pulls(node, url, args.pulls)
                t0 = time.perf_counter()
                with Flood(server, server.creds("importer")[0], args.rate) as flood:
                    time.sleep(args.warmup)
                    loud += pulls(node, url, args.pulls)
                flood_seconds += time.perf_counter() - t0
                sent += flood.sent
                codes += flood.codes
            elapsed_rate = sent / flood_seconds
        finally:
            server.stop()
    rows = [
        Row("pull 3 MB p50", percentile(loud, 50) * 1000, percentile(quiet, 50) * 1000, "ms", better="lower"),
        Row("pull 3 MB p95", percentile(loud, 95) * 1000, percentile(quiet, 95) * 1000, "ms", better="lower"),
        Row("wrong passwords sent", elapsed_rate, None, "per s"),
        Row("answered 401 (checked)", float(codes[401]), None, "requests"),
        Row("answered 429 (refused unchecked)", float(codes[429]), None, "requests"),
    ]
    print_table(f"DVCR pull during a flood of {args.rate:.0f} wrong passwords/s (ratio = quiet/flood; target "
                f">= {1 / 1.2:.2f}, i.e. at most 1.2x slower)", "during the flood", "no flood (same run)", rows,
                json_out=args.output == "json")
    if args.output != "json":
        print(f"slowdown p50: {percentile(loud, 50) / percentile(quiet, 50):.2f}x (target <= 1.2x); "
              f"other answers: {dict(codes)}")


if __name__ == "__main__":
    main()
