"""bench/metrics_scrape: what Prometheus scraping costs the API server. One `dvp server`,
one run: durable VirtualMachine creates per second (8 connections) while a real Prometheus
(Debian `prometheus`) scrapes its /metrics every second over HTTPS with a bearer token, and
the same workload with no scraper, alternating rounds so drift hits both alike. Ours is the
scraped figure, the peer the unscraped one; target: the ratio >= 0.95 (scraping costs <= 5%).

    python -m bench.metrics_scrape [--count 2000] [--rounds 4] [-o json]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from bench.apiserver import Api
from bench.report import Row, print_table
from tests.services.apiserver import ApiServerProcess
from tests.services.prometheus import PrometheusProcess, Target


async def _round(api: Api, ns: str, count: int, conns: int) -> float:
    await api.namespace(ns)
    wall, _lat = await api.creates(ns, count, conns)
    return count / wall


def run(count: int, rounds: int, conns: int) -> tuple[list[Row], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        root = Path(tmp)
        server = ApiServerProcess(root / "data", extra_args=["--no-controllers"])
        server.start()
        try:
            api = Api(server)
            asyncio.run(_round(api, "warmup", min(count, 500), conns))
            plain: list[float] = []
            scraped: list[float] = []
            scrape_seconds: list[float] = []
            for r in range(rounds):
                # alternate which goes first, so a datastore growing over the run weighs on both alike
                if r % 2 == 0:
                    plain.append(asyncio.run(_round(api, f"plain-{r}", count, conns)))
                prom = PrometheusProcess(root / f"prometheus-{r}", [
                    Target("dvp-apiserver", f"127.0.0.1:{server.port}", server.ca_file, server.token)])
                prom.start()
                try:
                    prom.wait_query('up{job="dvp-apiserver"} == 1', what="the first scrape")
                    scraped.append(asyncio.run(_round(api, f"scraped-{r}", count, conns)))
                    got = prom.query('avg_over_time(scrape_duration_seconds{job="dvp-apiserver"}[1m])')
                    if got:
                        scrape_seconds.append(float(got[0]["value"][1]))
                finally:
                    prom.stop()
                if r % 2 == 1:
                    plain.append(asyncio.run(_round(api, f"plain-{r}", count, conns)))
        finally:
            server.stop()
    ours, peer = statistics.median(scraped), statistics.median(plain)
    rows = [Row(f"creates/s, {conns} connections, scraped every 1 s vs not scraped", ours, peer, "creates/s")]
    extra = {"scrape_duration_ms": 1000 * statistics.mean(scrape_seconds) if scrape_seconds else float("nan"),
             "cost_percent": 100 * (1 - ours / peer)}
    return rows, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    rows, extra = run(args.count, args.rounds, args.connections)
    print_table(f"bench/metrics_scrape: {args.count} VirtualMachine creates x {args.rounds} rounds",
                "scraped by Prometheus every 1 s", "not scraped (same server, same run)", rows,
                json_out=args.output == "json")
    if args.output != "json":
        print(f"scraping cost: {extra['cost_percent']:.1f}% of creates/s (target <= 5%); "
              f"one scrape of /metrics takes {extra['scrape_duration_ms']:.1f} ms on average")


if __name__ == "__main__":
    main()
