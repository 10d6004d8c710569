"""`dvp __component NAME`: one component of `dvp server` in a process of its own (hidden; the
supervisor starts it with the same executable, which works in the one-file binary too).

The process builds its configuration from the server's flags (`--flags`, JSON of
`ServerFlags`), starts the component, and tells the supervisor over an inherited pipe
(`--ready-fd`) one JSON line: `{"ready": true, "url": ...}` once it serves, or
`{"ready": false, "error": "..."}` when a start-up step failed (then it exits 1). It stops on
SIGTERM/SIGINT, and on its own when the supervisor dies (Linux parent-death signal), so no
component outlives `dvp server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Protocol

import click

from controlplane.common import component_metrics, cpu_share
from controlplane.common.logs import setup_logging
from controlplane.embedded.config import ServerFlags

log = logging.getLogger(__name__)

API, DVCR, CONTROLLERS, NODE_HANDLER = "apiserver", "dvcr", "controllers", "node-handler"
NAMES = (API, DVCR, CONTROLLERS, NODE_HANDLER)
PR_SET_PDEATHSIG = 1
SUPERVISOR_PID_ENV = "DVP_SUPERVISOR_PID"


class Part(Protocol):
    name: str

    @property
    def url(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def build(name: str, flags: ServerFlags) -> Part:
    """The component NAME, configured from the server's flags."""
    from controlplane.embedded import components
    from controlplane.embedded.config import agent_config, api_config, dvcr_config, platform_settings

    if name == API:
        return components.ApiServerComponent(api_config(flags, supervised=True))
    if name == DVCR:
        return components.DvcrComponent(dvcr_config(flags))
    if name == CONTROLLERS:
        return components.ControllersComponent(flags.controllers_kubeconfig, flags.dvcr_info,
                                               platform_settings(flags), local_socket=flags.api_socket)
    if name == NODE_HANDLER:
        return components.AgentComponent(agent_config(flags), flags.dvcr_info)
    raise ValueError(f"unknown component {name!r} (known: {', '.join(NAMES)})")


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the supervisor goes away, however it goes; and exit now
    if it went away already (while this process was still importing, before it could ask)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    expected = os.environ.get(SUPERVISOR_PID_ENV, "")
    if expected.isdigit() and os.getppid() != int(expected):
        sys.exit(1)


async def run(part: Part, report: int, *, metrics_dir: Path | None = None, name: str = "") -> int:
    """Start `part`, tell the supervisor, serve its metrics (under `metrics_dir`), run until told to stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def tell(doc: dict[str, object]) -> None:
        with contextlib.suppress(OSError):
            os.write(report, (json.dumps(doc) + "\n").encode())

    try:
        await part.start()
    except Exception as exc:
        log.debug("starting %s", part.name, exc_info=True)
        tell({"ready": False, "error": str(exc) or type(exc).__name__})
        with contextlib.suppress(Exception):
            await part.stop()
        return 1
    runner = None
    if metrics_dir is not None:  # the API server's /metrics appends what this answers
        try:
            runner = await component_metrics.serve(metrics_dir, name)
        except OSError as exc:
            log.warning("%s: its metrics are not served: %s", name, exc)
    tell({"ready": True, "url": part.url, "pid": os.getpid()})
    await stop.wait()
    await component_metrics.stop(runner)
    try:
        await part.stop()
    except Exception:
        log.exception("stopping %s", part.name)
    return 0


@click.command("__component", hidden=True)
@click.argument("name", type=click.Choice(NAMES))
@click.option("--flags", "flags_json", required=True, help="The server's flags (JSON of ServerFlags).")
@click.option("--ready-fd", type=int, required=True, help="Pipe to the supervisor for the readiness line.")
def component(name: str, flags_json: str, ready_fd: int) -> None:
    """Run one component of `dvp server` (started by `dvp server`, not by hand)."""
    from controlplane.common.eventloop import run_event_loop

    _die_with_parent()
    flags = ServerFlags.from_json(flags_json)
    setup_logging(flags.log_level)
    cpu_share.claim(flags.cpu_nice, quiet=True)  # a session of its own (the supervisor starts it so): its own CPU group
    try:
        part = build(name, flags)
    except Exception as exc:
        os.write(ready_fd, (json.dumps({"ready": False, "error": f"configuring: {exc}"}) + "\n").encode())
        sys.exit(1)
    codes: list[int] = []

    async def main() -> None:
        codes.append(await run(part, ready_fd, metrics_dir=None if name == API else flags.data_dir, name=name))

    run_event_loop(main())
    sys.exit(codes[0] if codes else 1)
