"""Waiting in integration tests for something a server does in the background (a controller
binding a lease, the supervisor restarting a component): poll a check until it returns a truthy
value, and fail naming what was awaited and the last value seen, never a bare timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], *, timeout: float = 30, interval: float = 0.2, what: str = "") -> Any:
    """The first truthy value `check()` returns within `timeout` seconds, polled every `interval`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what or 'condition'} not reached in time (last: {last!r})")
