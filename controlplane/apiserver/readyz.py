"""The readiness checks of `dvp server`'s components, one per component, for `/readyz`.

The API server's own check (`apiserver`: serving) comes from this process; the other
components' (`dvcr`, `controllers`, `node-handler`) from the supervisor's status file (see
`controlplane.common.componentstatus`), so one request to `/readyz?verbose` tells a test or
an operator what is up and, for a component that is not, what state it is in. `health.py`
answers the requests; this is one of its check sources.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from controlplane.common.componentstatus import StatusReader


class ComponentChecks:
    """This server's readiness plus, when a supervisor runs it, every other component's state
    from `status_file`: a `health.Source`."""

    def __init__(self, ready: Callable[[], bool], *, status_file: Path | None = None,
                 own_name: str = "apiserver") -> None:
        self.ready = ready
        self.own_name = own_name
        self.reader = StatusReader(status_file) if status_file is not None else None

    def __call__(self) -> list[tuple[str, str | None]]:
        result: list[tuple[str, str | None]] = [(self.own_name, None if self.ready() else "not serving yet")]
        if self.reader is not None:
            for status in self.reader.read():
                if status.name != self.own_name:
                    result.append((status.name, None if status.ready else status.message or status.state))
        return result
