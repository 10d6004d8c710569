"""One HOST:PORT parser for every listener flag: a port out of range is refused (the socket layer
wrapped 99999 to 34463 and `dvp server` said it listened on 99999), IPv6 brackets come off, an
empty host takes the caller's default or is refused."""

from __future__ import annotations

import pytest

from controlplane.common.hostport import split_host_port


@pytest.mark.parametrize(("value", "default", "expected"), [
    ("127.0.0.1:6443", "0.0.0.0", ("127.0.0.1", 6443)),
    (":6443", "0.0.0.0", ("0.0.0.0", 6443)),
    ("[::1]:10250", "0.0.0.0", ("::1", 10250)),
    ("host.example:0", None, ("host.example", 0)),
    ("127.0.0.1:65535", "0.0.0.0", ("127.0.0.1", 65535)),
])
def test_accepted(value: str, default: str | None, expected: tuple[str, int]) -> None:
    assert split_host_port(value, default_host=default) == expected


@pytest.mark.parametrize(("value", "default"), [
    ("127.0.0.1:99999", "0.0.0.0"), ("127.0.0.1:65536", "0.0.0.0"), ("127.0.0.1", "0.0.0.0"),
    ("127.0.0.1:http", "0.0.0.0"), ("127.0.0.1:-1", "0.0.0.0"), (":8080", None), ("", "0.0.0.0"),
])
def test_refused_naming_the_value(value: str, default: str | None) -> None:
    with pytest.raises(ValueError, match="is not HOST:PORT with a port from 0 to 65535") as err:
        split_host_port(value, default_host=default)
    assert repr(value) in str(err.value)


@pytest.mark.parametrize(("args", "message"), [
    (["server", "--listen", "127.0.0.1:99999"], "with a port from 0 to 65535"),
    (["server", "--dvcr-listen", "127.0.0.1:70000"], "with a port from 0 to 65535"),
    (["dvcr", "serve", "--listen", "0.0.0.0:65536"], "with a port from 0 to 65535"),
    (["dvcr", "serve", "--advertise-address", "999.1.1.1"], "neither an IP address nor a DNS name"),
    (["dvcr", "serve", "--tls-san", "a b"], "neither an IP address nor a DNS name"),
])
def test_listener_flags_refuse_what_cannot_be_served(args: list[str], message: str, tmp_path: object,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from controlplane.dvcr import server as dvcr_server
    from controlplane.embedded import cmd
    from installer.cli.main import cli

    def started(*_args: object, **_kw: object) -> None:  # a value let through fails here, never serves
        raise AssertionError(f"a server started with {args}")

    monkeypatch.setattr(cmd, "run_server", started)
    monkeypatch.setattr(dvcr_server, "DvcrServer", started)
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in result.output
