"""Timing an aiohttp handler for request metrics: the API server's and DVCR's metrics
middlewares both answer through `timed`, which reports the status code (500 for anything
but an HTTP exception, as the client sees it) and the seconds the handler took."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Done = Callable[[int, float], None]


async def timed(request: web.Request, handler: Handler, done: Done) -> web.StreamResponse:
    """`handler(request)`, then `done(status code, seconds)` however it ended."""
    start = time.perf_counter()
    code = 500
    try:
        response = await handler(request)
        code = response.status
        return response
    except web.HTTPException as exc:
        code = exc.status
        raise
    finally:
        done(code, time.perf_counter() - start)
