"""Every `dvp dvcr` command has --help, and the data commands offer -o json."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from installer.cli.main import cli


@pytest.mark.parametrize("command,json_output", [("serve", False), ("import", True), ("upload-url", True),
                                                 ("gc", True)])
def test_dvcr_commands_have_help(command: str, json_output: bool) -> None:
    result = CliRunner().invoke(cli, ["dvcr", command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    assert ("-o, --output [table|json]" in result.output) == json_output


def test_dvcr_group_lists_its_commands() -> None:
    result = CliRunner().invoke(cli, ["dvcr", "--help"])
    assert result.exit_code == 0
    for name in ("serve", "import", "upload-url", "gc"):
        assert name in result.output


def test_import_names_a_missing_source() -> None:
    result = CliRunner().invoke(cli, ["dvcr", "import", "/no/such/disk.qcow2", "--to", "cvi/x", "--dvcr-url",
                                      "https://127.0.0.1:1"])
    assert result.exit_code == 1 and "/no/such/disk.qcow2: no such file" in result.output
