"""`dvp user create --ttl`: durations read as kube users write them, bad ones refused naming the flag."""

from __future__ import annotations

import click
import pytest

from controlplane.embedded.user_cmd import parse_ttl


@pytest.mark.parametrize(("text", "seconds"), [("90m", 5400), ("24h", 86400), ("30d", 2592000), ("45", 45),
                                               ("10s", 10)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["0h", "-1d", "1w", "h", "1.5h", ""])
def test_bad_durations_name_the_flag(text: str) -> None:
    with pytest.raises(click.BadParameter) as bad:
        parse_ttl(text)
    assert "--ttl" in str(bad.value.param_hint)


def test_add_and_revoke_are_hidden_aliases_of_create_and_delete() -> None:
    from click.testing import CliRunner

    from controlplane.embedded import user_cmd

    listing = CliRunner().invoke(user_cmd.user, ["--help"]).output
    assert "create" in listing and "add" not in listing.split("Commands:")[1]
    for alias, original in (("add", "create"), ("revoke", "delete")):
        out = CliRunner().invoke(user_cmd.user, [alias, "--help"])
        assert out.exit_code == 0
        assert out.output.split("\n", 1)[1] == CliRunner().invoke(user_cmd.user, [original, "--help"]).output.split(
            "\n", 1)[1]  # the same command, only the usage line names the alias
