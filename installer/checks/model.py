"""Results of the preflight checks as plain dataclasses: what the CLI prints, what `-o json`
emits (see docs/check-json.md), what a Textual screen shows live, and what the install phase
(issue 7) reads to decide whether it may go on.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SCHEMA_API_VERSION = "dvp.deckhouse.io/v1alpha1"
SCHEMA_KIND = "PreflightReport"


class Severity(enum.StrEnum):
    """What a failure means: `error` stops the install, `warning` does not."""

    ERROR = "error"
    WARNING = "warning"


class Status(enum.StrEnum):
    """Outcome of one check on one host."""

    PASSED = "passed"
    FAILED = "failed"
    BLOCKED = "blocked"  # a check it depends on did not pass (or was skipped)
    SKIPPED = "skipped"  # skipped by name (config `checks.skip` or `--skip`)


@dataclass(frozen=True)
class CheckResult:
    """One check evaluated on one host."""

    name: str
    group: str
    description: str
    severity: Severity
    status: Status
    observed: str = ""
    expected: str = ""
    fix: str = ""
    message: str = ""
    blocked_by: str | None = None
    duration_ms: int = 0

    @property
    def is_error(self) -> bool:
        return self.status is Status.FAILED and self.severity is Severity.ERROR

    @property
    def is_warning(self) -> bool:
        return self.status is Status.FAILED and self.severity is Severity.WARNING

    @property
    def verdict(self) -> str:
        """passed / error / warning / blocked / skipped: one word for tables and JSON."""
        if self.status is Status.FAILED:
            return self.severity.value
        return self.status.value

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "description": self.description,
            "severity": self.severity.value,
            "status": self.status.value,
            "verdict": self.verdict,
            "observed": self.observed,
            "expected": self.expected,
            "fix": self.fix,
            "message": self.message,
            "blockedBy": self.blocked_by,
            "durationMs": self.duration_ms,
        }


def _summary(results: list[CheckResult]) -> dict[str, int]:
    counts = Counter(r.verdict for r in results)
    return {k: counts.get(k, 0) for k in ("passed", "error", "warning", "blocked", "skipped")}


@dataclass
class HostReport:
    """Every check of one host, in catalog order."""

    name: str
    address: str
    role: str
    connection: str  # "ssh" or "local"
    results: list[CheckResult] = field(default_factory=list)
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return not any(r.is_error for r in self.results)

    def result(self, name: str) -> CheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no result for check {name} on {self.name}")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "role": self.role,
            "connection": self.connection,
            "ok": self.ok,
            "summary": _summary(self.results),
            "durationMs": self.duration_ms,
            "checks": [r.to_json() for r in self.results],
        }


@dataclass
class PreflightReport:
    """The whole run: every host's report plus what the run was asked to do."""

    target: str
    profile: str
    started_at: str
    hosts: list[HostReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return all(h.ok for h in self.hosts)

    @property
    def exit_code(self) -> int:
        """0: every check passed (warnings allowed); 1: a check failed with severity error."""
        return 0 if self.ok else 1

    def host(self, name: str) -> HostReport:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(f"no host {name} in the report")

    def to_json(self) -> dict[str, Any]:
        return {
            "apiVersion": SCHEMA_API_VERSION,
            "kind": SCHEMA_KIND,
            "target": self.target,
            "profile": self.profile,
            "startedAt": self.started_at,
            "durationMs": self.duration_ms,
            "ok": self.ok,
            "exitCode": self.exit_code,
            "skipped": list(self.skipped),
            "summary": _summary([r for h in self.hosts for r in h.results]),
            "hosts": [h.to_json() for h in self.hosts],
        }
