"""Run one phase's playbook with ansible-runner and turn its event stream into install events.

ansible-runner executes `ansible-playbook` — here always `dvp ansible-playbook` through a
small wrapper (installer/install/binary.py), so the single binary needs no separate ansible
install — and calls back once per Ansible event. This module keeps per-host counts
(ok/changed/failed/skipped), emits `TaskProgress` and `LogLine`s, and sums up the phase:
changed tasks per host from the final stats, and for a failure the host, the task and
Ansible's reason.
"""

from __future__ import annotations

import json
import re
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from installer.install.events import EventSink, LogLine, PhaseName, TaskProgress


@dataclass
class HostCounts:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass
class PlaybookOutcome:
    ok: bool
    rc: int
    status: str
    changed: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    changed_tasks: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.ok:
            return ""
        if self.failures:
            return "; ".join(self.failures)
        return f"ansible-playbook ended with status {self.status} (exit {self.rc}); see the run's ansible/artifacts"


def _reason(res: dict[str, Any]) -> str:
    """Ansible's explanation of a failed task, short (msg, then the end of stderr)."""
    if res.get("censored"):
        return str(res["censored"])
    parts = []
    msg = str(res.get("msg", "")).strip()
    if msg:
        parts.append(msg.splitlines()[0][:300])
    stderr = str(res.get("stderr", "")).strip()
    if stderr:
        parts.append(stderr.splitlines()[-1][:300])
    if not parts and res.get("results"):
        for item in res["results"]:
            if isinstance(item, dict) and item.get("failed"):
                return _reason(item)
    return ": ".join(parts) or "failed (no message)"


class EventTranslator:
    """ansible-runner's event_handler: Ansible events -> InstallEvents (thread-safe)."""

    def __init__(self, phase: PhaseName, sink: EventSink, log: Callable[[str], None]) -> None:
        self.phase = phase
        self.sink = sink
        self.log = log
        self.counts: dict[str, HostCounts] = {}
        self.task = ""
        self.failures: list[str] = []
        self.changed_tasks: list[str] = []
        self.stats_changed: dict[str, int] | None = None
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> bool:
        with self._lock:
            self._handle(event)
        return True

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind == "playbook_on_task_start":
            self.task = str(data.get("task", ""))
            return
        if kind == "playbook_on_stats":
            self.stats_changed = {str(h): int(n) for h, n in (data.get("changed") or {}).items()}
            return
        if not kind.startswith("runner_on_"):
            return
        host = str(data.get("host", ""))
        task = str(data.get("task", self.task))
        res = data.get("res") or {}
        counts = self.counts.setdefault(host, HostCounts())
        status = kind.removeprefix("runner_on_")
        if status == "ok":
            if res.get("changed"):
                counts.changed += 1
                self.changed_tasks.append(f"{host}: {task}")
                self._log(host, f"changed: {task}")
            else:
                counts.ok += 1
        elif status == "skipped":
            counts.skipped += 1
        elif status in ("failed", "unreachable"):
            if status == "failed" and data.get("ignore_errors"):
                counts.ok += 1
            else:
                counts.failed += 1
                what = "unreachable" if status == "unreachable" else "failed"
                reason = _reason(res)
                self.failures.append(f"host {host}: task {task!r} {what}: {reason}")
                self._log(host, f"{what}: {task}: {reason}")
        else:
            return
        self.sink(TaskProgress(self.phase, host, task, ok=counts.ok, changed=counts.changed,
                               failed=counts.failed, skipped=counts.skipped))

    def _log(self, host: str, text: str) -> None:
        self.log(f"[{self.phase}] {host}: {text}")
        self.sink(LogLine(self.phase, text, host=host))


SECRET_ENV_PREFIX = "DVP_ANSIBLE_"


def scrub_command_files(private_dir: Path, *, secret_names: list[str]) -> None:
    """ansible-runner records the whole environment in artifacts/*/command; secrets reach
    Ansible through environment variables (inventory.py), so their values are masked there as
    soon as the run ends (and, after a killed run, before the next one starts)."""
    for path in (private_dir / "artifacts").glob("*/command"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        env = data.get("env") or {}
        hidden = {k: "***" for k in env if k.startswith(SECRET_ENV_PREFIX) or k in secret_names}
        if hidden:
            data["env"] = {**env, **hidden}
            tmp = path.with_name("command.tmp")
            tmp.write_text(json.dumps(data))
            tmp.chmod(0o600)
            tmp.replace(path)


def run_playbook(
    phase: PhaseName,
    playbook: Path,
    *,
    private_dir: Path,
    inventory: dict[str, Any],
    extravars: dict[str, Any],
    envvars: dict[str, str],
    binary: Path,
    fact_cache: Path,
    sink: EventSink,
    log: Callable[[str], None],
    limit: str | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PlaybookOutcome:
    import ansible_runner

    (private_dir / "inventory").mkdir(parents=True, exist_ok=True)
    inv = private_dir / "inventory" / "hosts.yml"
    inv.write_text(yaml.safe_dump(inventory, sort_keys=False))
    inv.chmod(0o600)
    translator = EventTranslator(phase, sink, log)
    scrub_command_files(private_dir, secret_names=[k for k in envvars if k.startswith(SECRET_ENV_PREFIX)])
    runner = ansible_runner.run(
        cmdline=shlex.quote(str(playbook)),  # with a custom binary ansible-runner adds no playbook itself
        private_data_dir=str(private_dir),
        playbook=str(playbook),
        inventory=str(inv),
        fact_cache=str(fact_cache),  # absolute: used as is
        extravars=extravars,
        envvars=envvars,
        binary=str(binary),
        ident=phase,
        event_handler=translator,
        quiet=True,
        suppress_env_files=True,
        limit=limit,
        cancel_callback=cancel,
    )
    scrub_command_files(private_dir, secret_names=[k for k in envvars if k.startswith(SECRET_ENV_PREFIX)])
    stats = translator.stats_changed
    hosts = {h for group in inventory["all"]["children"].values() for h in group.get("hosts", {})}
    changed = {h: (stats.get(h, 0) if stats is not None else c.changed) for h, c in translator.counts.items()
               if h in hosts}  # not the implicit localhost of the dkp play (skipped on embedded)
    ok = runner.status == "successful" and runner.rc == 0
    failures = list(translator.failures)
    if not ok and not failures:  # no task failed: ansible itself stopped (syntax, missing role, ...)
        failures = _ansible_errors(private_dir / "artifacts" / phase / "stdout")
    return PlaybookOutcome(ok=ok, rc=int(runner.rc or 0), status=str(runner.status), changed=changed,
                           failures=failures, changed_tasks=translator.changed_tasks)


def _ansible_errors(stdout: Path) -> list[str]:
    try:
        text = re.sub(r"\x1b\[[0-9;]*m", "", stdout.read_text(errors="replace"))
    except OSError:
        return []
    return [line.strip()[:400] for line in text.splitlines() if line.startswith("ERROR!")][:3]
