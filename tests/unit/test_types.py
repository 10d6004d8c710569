"""The code's static checks are tests, so `make test` (and CI) enforces them: mypy --strict on
`controlplane` and `installer`, and ruff on everything the project ships or tests. (The import
contracts are checked in test_layers.py.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    exe = shutil.which(name, path=str(BIN))
    assert exe, f"{name} comes with the test extras"
    return exe


@pytest.mark.parametrize("package", ["controlplane", "installer"])
def test_mypy_strict_is_clean(package: str) -> None:
    result = subprocess.run([_tool("mypy"), "--strict", "--no-error-summary", package], cwd=REPO,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"mypy --strict {package}:\n{result.stdout[-6000:]}{result.stderr[-2000:]}"


def test_ruff_is_clean() -> None:
    result = subprocess.run([_tool("ruff"), "check", "installer", "controlplane", "nodeimage", "tests", "bench"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:]
