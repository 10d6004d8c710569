"""The upgrade's own record: what it set out to do and how far each host got, kept on the
server host as `/var/lib/dvp/upgrades/<id>.json` and rewritten (atomically) after every step.

It is what `dvp upgrade history` shows, and what makes an interrupted upgrade recoverable: a
record whose `state` is still `running` or `rolling-back` means the installer died mid-way;
the next `dvp upgrade` reads the per-host steps and either finishes (same target bundle) or
rolls back. Steps are idempotent given the record: the binary kept as `dvp.previous` is the
one the record's `fromSha256` names, never overwritten by a later attempt.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from installer import hostlayout
from installer.upgrade.remote import HostSession

UPGRADES_DIR = f"{hostlayout.STATE_DIR}/upgrades"
UNFINISHED = ("running", "rolling-back", "reboots-pending")
STEP_NAMES = ("stage", "previous", "backup", "cordon", "drain", "replace", "restart", "reboot", "health", "uncordon")
"""Forward steps in their order; `drain` and `reboot` only with `--reboot` (then every host is cordoned)."""
REBOOT_PASS_STEPS = ("reboot-cordon", "drain", "reboot", "reboot-health", "reboot-uncordon")
"""The second pass of a two-pass `--reboot` upgrade (installer/upgrade/engine.py), per host, in order."""


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class StepResult:
    name: str
    status: str  # ok | failed | skipped | rolled-back
    started: str
    ended: str = ""
    seconds: float = 0.0
    message: str = ""


@dataclass
class HostRecord:
    name: str
    role: str
    node: str
    state: str = "pending"  # pending | upgrading | upgraded | rebooted | failed | rolled-back
    steps: list[StepResult] = field(default_factory=list)

    def done(self, step: str) -> bool:
        return any(s.name == step and s.status == "ok" for s in self.steps)


@dataclass
class UpgradeRecord:
    id: str
    from_version: str
    to_version: str
    from_sha256: str
    to_sha256: str
    started: str
    state: str = "running"  # running | succeeded | rolling-back | rolled-back | rollback-failed | reboots-pending
    ended: str = ""
    backup: str = ""
    migrations_ran: bool = False
    committed: bool = False
    """Every host runs the new version and the second pass (reboots) began: no rollback from here."""
    from_data_version: int = 0
    to_data_version: int = 0
    reboot: bool = False
    """`--reboot`: each host drained, rebooted with `reboot_command`, uncordoned (a resumed run does the same)."""
    reboot_command: str = ""
    force_stop: bool = False
    failure: dict[str, str] = field(default_factory=dict)
    hosts: list[HostRecord] = field(default_factory=list)

    @classmethod
    def new(cls, **kw: Any) -> UpgradeRecord:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return cls(id=f"{stamp}-{uuid.uuid4().hex[:6]}", started=now(), **kw)

    def host(self, name: str) -> HostRecord:
        return next(h for h in self.hosts if h.name == name)

    @property
    def unfinished(self) -> bool:
        return self.state in UNFINISHED

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["from"] = doc.pop("from_version")
        doc["to"] = doc.pop("to_version")
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> UpgradeRecord:
        doc = dict(doc)
        hosts = [HostRecord(**{**h, "steps": [StepResult(**s) for s in h.get("steps", [])]})
                 for h in doc.pop("hosts", [])]
        return cls(from_version=doc.pop("from"), to_version=doc.pop("to"), hosts=hosts, **doc)


class RecordStore:
    """The records on the server host."""

    def __init__(self, session: HostSession) -> None:
        self.session = session

    def save(self, record: UpgradeRecord) -> None:
        data = json.dumps(record.to_json(), indent=2).encode()
        self.session.write(f"{UPGRADES_DIR}/{record.id}.json", data, mode=0o600, what="recording the upgrade")

    def all(self) -> list[UpgradeRecord]:
        res = self.session.root(
            f"mkdir -p {UPGRADES_DIR}; for f in {UPGRADES_DIR}/*.json; do [ -f \"$f\" ] && cat \"$f\" && printf '\\n\\036\\n'; done; true",
            what="reading the upgrade history")
        out = []
        for chunk in res.out.split("\n\x1e\n"):
            if chunk.strip():
                try:
                    out.append(UpgradeRecord.from_json(json.loads(chunk)))
                except (ValueError, TypeError, KeyError):
                    continue
        return sorted(out, key=lambda r: r.id)

    def unfinished(self) -> UpgradeRecord | None:
        pending = [r for r in self.all() if r.unfinished]
        return pending[-1] if pending else None
