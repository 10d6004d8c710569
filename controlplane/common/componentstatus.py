"""What `dvp server`'s supervisor knows about each component process, shared with the API
server so `/readyz?verbose` can report every component ("[+]controllers ok",
"[-]dvcr failed: exited with signal 9; restarting in 1s").

The supervisor is the only writer: it replaces DATA_DIR/components.json atomically whenever a
component's state changes. The API server process reads it on each /readyz request (a small
file, re-read only when its mtime changes). The file is a cache of the supervisor's view, never
a source of truth for anything else.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

State = Literal["starting", "ready", "failed", "stopped"]
FILE_NAME = "components.json"


@dataclass(frozen=True)
class ComponentStatus:
    """One component: `name` as /readyz shows it, `state`, why when not ready, its pid and
    how many times the supervisor restarted it."""

    name: str
    state: State
    message: str = ""
    pid: int = 0
    restarts: int = 0

    @property
    def ready(self) -> bool:
        return self.state == "ready"


def status_path(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def write_statuses(path: Path, statuses: list[ComponentStatus]) -> None:
    """Replace the file in one rename, so a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # private, like the whole data dir
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps([asdict(s) for s in statuses], indent=1))
    os.replace(tmp, path)


def read_statuses(path: Path) -> list[ComponentStatus]:
    """The statuses as last written; none when there is no supervisor (no file)."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        return [ComponentStatus("supervisor", "failed", f"cannot read {path.name}: {exc}")]
    result: list[ComponentStatus] = []
    for item in doc if isinstance(doc, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            state = item.get("state")
            result.append(ComponentStatus(
                name=item["name"], state=state if state in ("starting", "ready", "failed", "stopped") else "failed",
                message=str(item.get("message", "")), pid=int(item.get("pid", 0) or 0),
                restarts=int(item.get("restarts", 0) or 0)))
    return result


class StatusReader:
    """Reads the file again only when it changed (mtime and size), so /readyz stays cheap."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._cached: list[ComponentStatus] = []

    def read(self) -> list[ComponentStatus]:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            return []
        if stamp != self._stamp:
            self._cached = read_statuses(self.path)
            self._stamp = stamp
        return self._cached
