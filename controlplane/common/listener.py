"""How every network listener of dvp (API server, DVCR, a node's console endpoint, the metrics
endpoints) runs aiohttp's server: a connection that stays idle, or never finishes sending its
request's headers, is closed after `IDLE_TIMEOUT` seconds, as kube-apiserver's are (Go's
`IdleTimeout`). aiohttp's default is an hour, meant for servers behind a proxy: thousands of
unfinished requests held that long would take every file descriptor of the process. A request
being handled (a watch, a console) is never cut by it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

IDLE_TIMEOUT = 90.0


def app_runner(app: web.Application, **options: Any) -> web.AppRunner:
    """An AppRunner with the idle timeout, no access log and no signal handlers (the process's own)."""
    return web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=IDLE_TIMEOUT, **options)
