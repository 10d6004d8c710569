"""`--mac-prefix`, the platform's MAC prefix: checked where it is given (a clear error naming the
flag), and carried by the server's flags to the supervised controllers' settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from controlplane.controllers.cmd import controller
from controlplane.embedded.config import ServerFlags, platform_settings


def test_the_prefix_reaches_the_controllers_settings(tmp_path: Path) -> None:
    flags = ServerFlags.from_json(ServerFlags(data_dir=tmp_path, mac_prefix="02:5a:7e").to_json())
    assert platform_settings(flags).mac_address_prefix == "02:5a:7e"
    assert platform_settings(ServerFlags(data_dir=tmp_path)).mac_address_prefix == "02:d8:76"


def test_a_bad_prefix_is_refused_naming_the_flag(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    result = CliRunner().invoke(controller, ["--kubeconfig", str(kubeconfig), "--mac-prefix", "02:d8"])
    assert result.exit_code == 2
    assert "--mac-prefix" in result.output and "three octets" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--mac-prefix", "01:00:5e"], "is a multicast prefix"),
    (["--mac-prefix", "zz02d876"], "must be three octets"),
    (["--vm-cidr", "fd00::/64"], "is not an IPv4 CIDR"),
    (["--advertise-address", "999.1.1.1"], "'999.1.1.1' is neither an IP address nor a DNS name"),
    (["--advertise-address", "my_host"], "'my_host' is neither an IP address nor a DNS name"),
    (["--tls-san", ""], "'' is neither an IP address nor a DNS name"),
])
def test_server_flags_refuse_what_no_vm_or_certificate_could_use(args: list[str], message: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by giving `dvp server` odd values: each of these started a server (a multicast MAC
    prefix gives guests NICs that cannot work, an IPv6 VM network cannot be routed here)."""
    from controlplane.embedded import cmd
    from installer.cli.main import cli

    def started(_flags: object) -> None:  # a value let through must fail here, not start a server
        raise AssertionError(f"dvp server started with {args}")

    monkeypatch.setattr(cmd, "run_server", started)
    result = CliRunner().invoke(cli, ["server", "--data-dir", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and args[0] in result.output


@pytest.mark.parametrize(("value", "expected"), [("02:D8:76", "02:d8:76"), ("02-d8-76", "02:d8:76"),
                                                 ("02d876", "02:d8:76"), (" 0a.58.00 ", "0a:58:00")])
def test_a_prefix_is_read_in_the_usual_spellings(value: str, expected: str) -> None:
    from controlplane.controllers.ipam.mac_allocator import oui

    assert oui(value) == expected


def test_names_a_certificate_may_carry() -> None:
    from controlplane.common.hostport import check_host

    assert check_host("10.0.0.1") == "10.0.0.1" and check_host("::1") == "::1"
    assert check_host("node-1.example.com") == "node-1.example.com"
    assert check_host("*.example.com", wildcard=True) == "*.example.com"
    with pytest.raises(ValueError):
        check_host("*.example.com")
