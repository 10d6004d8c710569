"""One `/metrics` for all of `dvp server`: its components run as processes of their own (the
supervisor's), each with its own registry, so each child serves its registry on a Unix socket
of the data directory (`DIR/metrics/NAME.sock`, directory 0700) and the API server's
`/metrics` appends what they answer after its own figures.

Each family is emitted once, with the samples of every process under it (the API server's own
work queues and the controllers' share `workqueue_depth`), so the exposition stays valid for
Prometheus. A component that does not answer within
the timeout is skipped for that scrape (and counted in `dvp_component_scrape_errors_total`).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
from aiohttp import web

from controlplane.common.metrics import CONTENT_TYPE, REGISTRY

SCRAPE_ERRORS = REGISTRY.counter("dvp_component_scrape_errors_total",
                                 "Scrapes of a dvp server component's registry that failed.", ("component",))


def socket_dir(data_dir: Path) -> Path:
    return data_dir / "metrics"


async def serve(data_dir: Path, name: str) -> web.AppRunner:
    """Serve this process's registry at `DIR/metrics/NAME.sock` (plain HTTP, owner only)."""
    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=REGISTRY.expose().encode(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    folder = socket_dir(data_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{name}.sock"
    path.unlink(missing_ok=True)
    await web.UnixSite(runner, str(path)).start()
    path.chmod(0o600)
    return runner


def merge(own: str, others: list[str]) -> str:
    """One exposition of several: each family once (its first HELP and TYPE lines), the
    samples of every source under it, a series repeated by a later source dropped."""
    headers: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    series: set[str] = set()
    for text in (own, *others):
        family = ""
        for line in text.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                family = line.split()[2]
                kept = headers.setdefault(family, [])
                if len(kept) < 2 and not any(h.startswith(line[:7]) for h in kept):
                    kept.append(line)
                samples.setdefault(family, [])
            elif line and family:
                key = line.rpartition(" ")[0]
                if key not in series:
                    series.add(key)
                    samples[family].append(line)
    return "\n".join(line for name in headers for line in (*headers[name], *samples[name])) + "\n"


async def _fetch(path: Path, timeout: float) -> str:
    connector = aiohttp.UnixConnector(path=str(path))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async with session.get("http://component/metrics") as resp:
            resp.raise_for_status()
            return await resp.text()


async def gather(data_dir: Path, *, timeout: float = 2.0) -> list[str]:
    """The expositions of every component serving under `data_dir`, in name order."""
    folder = socket_dir(data_dir)
    texts: list[str] = []
    sockets = sorted(folder.glob("*.sock")) if folder.is_dir() else []
    results = await asyncio.gather(*(_fetch(p, timeout) for p in sockets), return_exceptions=True)
    for path, result in zip(sockets, results, strict=True):
        if isinstance(result, BaseException):
            SCRAPE_ERRORS.inc(path.stem)
            continue
        texts.append(result)
    return texts


async def stop(runner: web.AppRunner | None) -> None:
    if runner is not None:
        with contextlib.suppress(Exception):
            await runner.cleanup()
