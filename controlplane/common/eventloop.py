"""The event loop every long-running `dvp` process runs on (`dvp server`, `dvp dvcr serve`).

uvloop when it is installed (it is a dependency; its TLS and socket paths cost DVCR and the
API server less CPU per byte, see bench/dvcr), the standard loop otherwise. The garbage
collector is set up for a long-running process first (`gc_tuning`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from controlplane.common import gc_tuning


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    gc_tuning.tune()
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)
