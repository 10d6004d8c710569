"""`--mac-prefix`, the platform's MAC prefix: checked where it is given (a clear error naming the
flag), and carried by the server's flags to the supervised controllers' settings."""

from __future__ import annotations

from pathlib import Path

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
