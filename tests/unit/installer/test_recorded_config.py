"""Commands that work on an installed platform find its install config by themselves: the one
the last `dvp install` in the state directory recorded (its path, or the run's own copy), so
`dvp upgrade history` and `dvp uninstall` need no --config."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from installer.install.rundir import RunDir
from installer.uninstall.cli import find_config

CONFIG = """apiVersion: dvp.deckhouse.io/v1alpha1
kind: InstallConfig
ssh: {user: root, connectTimeoutSeconds: 1, useAgent: false, knownHostsFile: KNOWN}
hosts: [{address: 192.0.2.1, role: master}]
virtualization: {virtualMachineCIDRs: [10.66.10.0/24]}
"""


def _state(tmp_path: Path, *, recorded: bool) -> tuple[Path, Path]:
    state = tmp_path / "state"
    run = RunDir.create(state)
    config = tmp_path / "install.yaml"
    config.write_text(CONFIG.replace("KNOWN", str(tmp_path / "known_hosts")))
    run.write_text("config.yaml", config.read_text())
    if recorded:
        run.state["config_path"] = str(config)
        run.save()
    return state, config


def test_the_recorded_config_path_then_the_runs_copy(tmp_path: Path) -> None:
    state, config = _state(tmp_path, recorded=True)
    assert find_config(None, state) == config
    config.unlink()
    assert find_config(None, state).name == "config.yaml"
    assert find_config(tmp_path / "given.yaml", state) == tmp_path / "given.yaml"


def test_no_install_recorded_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(click.UsageError) as exc:
        find_config(None, tmp_path / "empty")
    assert "give --config FILE" in str(exc.value)


def test_upgrade_history_without_config_uses_the_state_dir(tmp_path: Path) -> None:
    from installer.upgrade.cli import upgrade

    state, _ = _state(tmp_path, recorded=True)
    done = CliRunner().invoke(upgrade, ["history", "--state-dir", str(state), "-o", "json"])
    # it went for the recorded host (unreachable here) instead of demanding --config
    assert "--config" not in done.output
    assert "192.0.2.1" in done.output and done.exit_code == 2


def test_uninstall_dry_run_without_config_goes_for_the_recorded_hosts(tmp_path: Path) -> None:
    from installer.uninstall.cli import uninstall

    state, _ = _state(tmp_path, recorded=False)
    done = CliRunner().invoke(uninstall, ["--state-dir", str(state), "--dry-run", "-o", "json"])
    out = json.loads(done.output)
    assert done.exit_code == 1 and "192.0.2.1" in out["message"]
