"""Preflight and install output read well anywhere: off a terminal (`dvp check | cat`) one
whole line per check `host check result observed — expected — fix`, nothing cut at any width;
the summary counts passed, warnings, errors and blocked."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from installer.checks.model import CheckResult, HostReport, PreflightReport, Severity, Status
from installer.checks.render import check_line, print_report, summary_line
from installer.install.events import InstallResult
from installer.install.progress import print_result

LONG_PATH = "/var/lib/dvp/some/very/long/path/that/must/never/be/cut/in/the/middle/of/a/word/datastore.sqlite"


def _result(name: str, status: str, *, severity: str = "error", **kw: str) -> CheckResult:
    return CheckResult(name=name, group=name.split(".")[0], description=name, severity=Severity(severity),
                       status=Status(status), **kw)  # type: ignore[arg-type]


def _report() -> PreflightReport:
    results = [
        _result("virtualization.kvm", "passed", observed="/dev/kvm usable", expected="/dev/kvm usable"),
        _result("resources.disk", "failed", observed=f"2 GiB free on {LONG_PATH}", expected="at least 50 GiB",
                fix=f"free space on {LONG_PATH}", severity="warning"),
        _result("leftovers.dvp", "failed", observed="found /etc/dvp", expected="none", fix="dvp uninstall",
                severity="error"),
        _result("network.ports", "blocked", blocked_by="connection.facts", expected="free"),
    ]
    host = HostReport(name="node-1", address="10.0.0.1", role="master", connection="ssh", results=results)
    return PreflightReport(target="embedded", profile="production", started_at="2026-01-01T00:00:00Z", hosts=[host],
                           duration_ms=1200)


@pytest.mark.parametrize("width", [80, 200], ids=["80-columns", "200-columns"])
def test_check_report_off_a_terminal_is_one_line_per_check(width: int) -> None:
    out = io.StringIO()
    report = _report()
    print_report(report, Console(file=out, width=width, force_terminal=False))
    lines = out.getvalue().splitlines()
    checks = [line for line in lines if line.startswith("node-1 ")]
    assert len(checks) == 4
    assert LONG_PATH in out.getvalue()  # never cut, whatever the width
    assert "node-1 leftovers.dvp FAIL found /etc/dvp — none — dvp uninstall" in checks
    assert not any(ch in out.getvalue() for ch in "┃│╭┏")  # no box table
    assert "4 checks: 1 passed, 1 warning, 1 error, 1 blocked" in lines[-1]


def test_summary_counts_every_verdict() -> None:
    assert summary_line(_report()) == "4 checks: 1 passed, 1 warning, 1 error, 1 blocked"
    line = check_line("h", _result("a.b", "passed", observed="ok", expected="ok"))
    assert line == "h a.b pass ok — ok"


@pytest.mark.parametrize("width", [80, 200], ids=["80-columns", "200-columns"])
def test_install_summary_keeps_paths_whole(width: int) -> None:
    out = io.StringIO()
    result = InstallResult(ok=True, run_dir=Path(LONG_PATH), kubeconfig=Path(LONG_PATH + ".kubeconfig"),
                           message="the platform is installed",
                           next_steps=["dvp examples quickstart | kubectl apply -f -"])
    phases = [{"phase": "verify", "status": "ok", "elapsed": 1.0, "message": f"kubeconfig in {LONG_PATH}"}]
    print_result(Console(file=out, width=width, force_terminal=False), result, phases)
    text = out.getvalue()
    assert text.count(LONG_PATH) == 3
    assert "dvp examples quickstart | kubectl apply -f -" in text
