"""`dvp install --smoke`'s check against a real platform: the smoke VM reaches Running on the
node, and nothing of it is left afterwards."""

from __future__ import annotations

import pytest

from installer.install.smoke import run_smoke
from tests.integration.quickstart.platform import Platform

pytestmark = pytest.mark.integration


def test_smoke_vm_runs_and_is_deleted(platform: Platform) -> None:
    lines: list[str] = []
    summary = run_smoke(platform.server.kubeconfig, timeout=180, log=lines.append)
    assert f"on node {platform.node}" in summary, (summary, lines)
    assert any(line.endswith(": Running") for line in lines), lines
    assert platform.kubectl("get", "vm,vd", "-o", "name").strip() == ""
    assert not platform.domains()
