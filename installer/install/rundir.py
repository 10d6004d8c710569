"""The run directory: what one `dvp install` run leaves behind, and what `--resume` reads.

```
<state dir>/                      ~/.local/state/dvp (or --state-dir)
  kubeconfig                      admin kubeconfig of the last install that reached "verify" (0600)
  runs/<UTC time>/                one run
    config.yaml                   the config used (secrets are references, never values)
    state.json                    per phase: status, elapsed, message; the hosts
    events.jsonl                  every InstallEvent, one JSON object per line
    install.log                   human-readable log (task results, failures)
    preflight.json                the preflight report
    facts/<host>                  facts gathered by the preflight, as Ansible's jsonfile cache
    ansible/                      ansible-runner's private data dir: inventory/, env/,
                                  artifacts/<phase>/ (job_events/, stdout, rc, status)
```

State is written atomically after every phase, so a run killed at any moment resumes from the
first phase not recorded as `ok`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any

from installer.install.events import PHASES, InstallEvent, PhaseName


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dvp"


class RunDirError(Exception):
    """No run to resume, or a run directory that cannot be used."""


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.state: dict[str, Any] = self._read_state()

    # -- finding and creating runs ---------------------------------------------------------------
    @classmethod
    def create(cls, state_dir: Path) -> RunDir:
        runs = state_dir / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        for n in range(1000):
            path = runs / (stamp if n == 0 else f"{stamp}-{n}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            run = cls(path)
            run.state = {"version": 1, "started": _now(), "phases": {}, "hosts": []}
            run.save()
            return run
        raise RunDirError(f"cannot create a run directory under {runs}")

    @classmethod
    def latest(cls, state_dir: Path) -> RunDir:
        runs = sorted(p for p in (state_dir / "runs").glob("*") if (p / "state.json").is_file()) if (
            state_dir / "runs").is_dir() else []
        if not runs:
            raise RunDirError(f"nothing to resume: no earlier run under {state_dir / 'runs'} "
                              "(run `dvp install --config FILE` first, or give the --state-dir it used)")
        return cls(runs[-1])

    @staticmethod
    def all_runs(state_dir: Path) -> list[RunDir]:
        runs = state_dir / "runs"
        if not runs.is_dir():
            return []
        return [RunDir(p) for p in sorted(runs.iterdir()) if (p / "state.json").is_file()]

    # -- files -----------------------------------------------------------------------------------
    @property
    def facts_dir(self) -> Path:
        return self.path / "facts"

    @property
    def ansible_dir(self) -> Path:
        return self.path / "ansible"

    @property
    def log_file(self) -> Path:
        return self.path / "install.log"

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads((self.path / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            return {"version": 1, "phases": {}, "hosts": []}
        return data if isinstance(data, dict) else {"version": 1, "phases": {}, "hosts": []}

    def save(self) -> None:
        with self._lock:
            tmp = self.path / "state.json.tmp"
            tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True) + "\n")
            tmp.replace(self.path / "state.json")

    def write_text(self, name: str, text: str, *, mode: int = 0o600) -> Path:
        path = self.path / name
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.chmod(mode)
        tmp.replace(path)
        return path

    # -- phases ----------------------------------------------------------------------------------
    def phase_status(self, phase: PhaseName) -> str | None:
        entry = self.state.get("phases", {}).get(phase)
        return entry.get("status") if isinstance(entry, dict) else None

    def first_unfinished(self) -> PhaseName | None:
        for phase in PHASES:
            if self.phase_status(phase) != "ok":
                return phase
        return None

    def record_phase(self, phase: PhaseName, status: str, *, elapsed: float, message: str = "",
                     changed: dict[str, int] | None = None) -> None:
        self.state.setdefault("phases", {})[phase] = {
            "status": status, "elapsed": round(elapsed, 3), "message": message, "finished": _now(),
            **({"changed": changed} if changed is not None else {}),
        }
        self.save()

    def mark_started(self, phase: PhaseName) -> None:
        entry = self.state.setdefault("phases", {}).setdefault(phase, {})
        entry.update({"status": "running", "started": _now()})
        self.save()

    # -- events and log --------------------------------------------------------------------------
    def append_event(self, event: InstallEvent) -> None:
        record = {"type": type(event).__name__, "time": _now(), **dataclasses.asdict(event)}
        with self._lock, (self.path / "events.jsonl").open("a") as f:
            f.write(json.dumps(record, default=str) + "\n")

    def log(self, text: str) -> None:
        with self._lock, self.log_file.open("a") as f:
            f.write(f"{_now()} {text}\n")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
