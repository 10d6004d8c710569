"""Waiting for a long libvirt job of a running domain (a disk's backup copy, a block stream):
asked for soon after it starts, then less often, and aborted past its time."""

from __future__ import annotations

import time
from collections.abc import Callable

from controlplane.nodehandler.storage import VolumeError


def wait_for_job(running: Callable[[], bool], abort: Callable[[], object], *, timeout: float, poll: float,
                 what: str) -> None:
    """Until `running()` is false: asked every 10 ms at first, then half as often again each
    time, up to every `poll` seconds (a small job ends within a poll or two; a long one is not
    asked many times a second). Past `timeout` the job is aborted and VolumeError says so."""
    deadline = time.monotonic() + timeout
    every = min(0.01, poll)
    while running():
        if time.monotonic() > deadline:
            abort()
            raise VolumeError(f"{what}: not done within {timeout:.0f}s; aborted")
        time.sleep(every)
        every = min(every * 1.5, poll)
