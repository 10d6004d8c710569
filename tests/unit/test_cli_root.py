"""The `dvp` entry point: version, help, and every registered command importable."""

from __future__ import annotations

from click.testing import CliRunner

from controlplane.common.version import __version__
from installer.cli.main import COMMANDS, cli


def test_version_prints_product_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"dvp, version {__version__}"


def test_help_lists_every_registered_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name, (_, _, help_) in COMMANDS.items():
        if help_:  # an empty help line marks a hidden command (e.g. `dvp ansible-playbook`)
            assert name in result.output


def test_every_registered_command_has_help() -> None:
    for name in COMMANDS:
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "usage:" in result.output.lower()
