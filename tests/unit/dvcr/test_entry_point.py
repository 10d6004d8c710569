"""The controllers start the importer through DVCR's own entry point, not the installer's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from controlplane.controllers import dvcr_access


def test_importer_runs_through_dvcr_entry_point() -> None:
    cmd = dvcr_access.dvcr_command()
    assert cmd == [sys.executable, "-m", "controlplane.dvcr"]
    assert "installer" not in " ".join(cmd)
    out = subprocess.run([*cmd, "import", "--help"], capture_output=True, text=True, timeout=60, check=True)
    assert "--to" in out.stdout and "Usage: dvp dvcr import" in out.stdout


def test_frozen_binary_runs_its_dvcr_subcommand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert dvcr_access.dvcr_command() == [sys.executable, "dvcr"]
