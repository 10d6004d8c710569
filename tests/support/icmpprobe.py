"""ICMP echo probe of one address every `--every` seconds, run inside a lab host with nsenter (the
lab hosts have no `ping`): prints the wall-clock time of every answer, one per line, until its
stdin closes. `bench/migrate` reads the answers of probes on both hosts to find the longest gap.

    python -m tests.support.icmpprobe --every 0.02 10.77.0.10
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import socket
import struct
import sys
import threading
import time


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _echo(ident: int, seq: int) -> bytes:
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    payload = b"dvp-probe"
    return struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--every", type=float, default=0.02)
    p.add_argument("ip")
    args = p.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF

    def watch_stdin() -> None:
        sys.stdin.buffer.read()
        sys.stdout.flush()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()

    def receive() -> None:
        while True:
            ready, _, _ = select.select([sock], [], [], 1.0)
            if not ready:
                continue
            data, (src, _) = sock.recvfrom(2048)
            ihl = (data[0] & 0x0F) * 4
            kind, _, _, rid, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if kind == 0 and rid == ident and src == args.ip:
                print(f"{time.time():.6f}", flush=True)

    threading.Thread(target=receive, daemon=True).start()
    seq = 0
    while True:
        t0 = time.monotonic()
        with contextlib.suppress(OSError):  # no route/neighbour yet: counts as no answer
            sock.sendto(_echo(ident, seq & 0xFFFF), (args.ip, 0))
        seq += 1
        time.sleep(max(0.0, args.every - (time.monotonic() - t0)))


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(0)
