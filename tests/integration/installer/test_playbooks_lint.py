"""ansible-lint (production profile, settings in playbooks/.ansible-lint) passes on the
playbooks and roles `dvp install` runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"


def test_ansible_lint_passes() -> None:
    lint = Path(sys.executable).with_name("ansible-lint")
    done = subprocess.run([str(lint), "--offline", "--nocolor"], cwd=PLAYBOOKS, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "Passed" in done.stderr + done.stdout
