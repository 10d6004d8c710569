"""The JSON report keeps the shape documented in docs/check-json.md (checked here without any
host; the integration tests check real `dvp check -o json` output the same way)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from installer.checks.model import CheckResult, HostReport, PreflightReport, Severity, Status

DOC = Path(__file__).resolve().parents[3] / "docs" / "check-json.md"


def schema() -> dict:  # type: ignore[type-arg]
    block = DOC.read_text().split("## Schema", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    return json.loads(block)  # type: ignore[no-any-return]


def test_synthetic_report_matches_schema_and_exit_code() -> None:
    results = [
        CheckResult("connection.ssh", "connection", "d", Severity.ERROR, Status.PASSED, "ok", "ok"),
        CheckResult("virt.cpu_flags", "virtualization", "d", Severity.WARNING, Status.FAILED, "none", "vmx", "fix", "m"),
        CheckResult("virt.kvm_module", "virtualization", "d", Severity.ERROR, Status.BLOCKED, blocked_by="virt.cpu_flags"),
        CheckResult("virt.iommu", "virtualization", "d", Severity.WARNING, Status.SKIPPED),
    ]
    report = PreflightReport("embedded", "evaluation", "2026-01-01T00:00:00Z", [HostReport("h", "10.0.0.1", "master", "ssh", results)])
    doc = report.to_json()
    jsonschema.validate(doc, schema())
    assert doc["exitCode"] == 0 and doc["ok"] is True  # warnings allowed
    assert doc["summary"] == {"passed": 1, "error": 0, "warning": 1, "blocked": 1, "skipped": 1}
    results.append(CheckResult("leftovers.dvp", "leftovers", "d", Severity.ERROR, Status.FAILED, "found", "none", "fix"))
    assert report.to_json()["exitCode"] == 1


def test_documented_example_is_valid() -> None:
    text = DOC.read_text().split("## Example (shortened)", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    jsonschema.validate(json.loads(text), schema())
