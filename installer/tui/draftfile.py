"""The wizard's draft on disk: what the user typed so far, saved at every step (0600, written
atomically) so that quitting — or a dropped terminal — loses nothing; the next `dvp install`
on a terminal offers to restore it. A finished install discards it.

It holds the config document only (secrets are references such as `env:X`, never values), at
`<state dir>/wizard-draft.yaml` (installer/install/rundir.py has the state directory).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

DRAFT_NAME = "wizard-draft.yaml"


class DraftFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, doc: dict[str, Any]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(yaml.safe_dump(doc, sort_keys=False))
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self) -> dict[str, Any] | None:
        """The saved document, or None (none saved, or unreadable: then it is not offered)."""
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None
        return data if isinstance(data, dict) else None

    def saved_at(self) -> str:
        try:
            when = dt.datetime.fromtimestamp(self.path.stat().st_mtime)
        except OSError:
            return "?"
        return when.strftime("%Y-%m-%d %H:%M")

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
