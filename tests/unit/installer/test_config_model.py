"""The install config's happy path: the example validates, every field is documented, the
YAML the TUI will write reads back the same, secrets are resolved but never printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from installer.checks.catalog import check_names
from installer.cli.main import cli
from installer.config import InstallConfig, Secret, SecretRef, dump_config, models, parse_config
from installer.config.cli import example_text
from installer.ssh.target import targets_from_config


def _models() -> list[type[BaseModel]]:
    return [
        obj for obj in vars(models).values()
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == models.__name__ and not obj.__name__.startswith("_")
    ] + [SecretRef]


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_field_has_a_docstring(model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no docstring"


def test_example_is_valid_and_round_trips() -> None:
    config = parse_config(example_text(), "example.yaml", known_checks=check_names())
    assert [h.display_name for h in config.hosts] == ["dvp-master-1", "dvp-worker-1", "dvp-worker-2"]
    again = parse_config(dump_config(config), "dumped.yaml", known_checks=check_names())
    assert again == config


def test_cli_example_and_validate(tmp_path: Path) -> None:
    runner = CliRunner()
    example = runner.invoke(cli, ["config", "example"])
    assert example.exit_code == 0
    path = tmp_path / "install.yaml"
    path.write_text(example.output)
    ok = runner.invoke(cli, ["config", "validate", str(path)])
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip() == f"{path}: valid (target embedded, 3 hosts, profile production)"
    path.write_text(example.output.replace("role: worker", "role: wroker", 1))
    bad = runner.invoke(cli, ["config", "validate", str(path)])
    assert bad.exit_code == 2
    line = example.output.splitlines().index("    role: worker") + 1
    assert f'{path}:{line}:5 hosts[1].role: expected master or worker, got "wroker"' in bad.output


def test_host_overrides_and_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pw_file = tmp_path / "pw"
    pw_file.write_text("file-secret\n")
    monkeypatch.setenv("DVP_T_SUDO", "env-secret")
    text = f"""
apiVersion: dvp.deckhouse.io/v1alpha1
kind: InstallConfig
ssh:
  user: admin
  sudoPassword: {{fromEnv: DVP_T_SUDO}}
  bastion: {{address: jump.example.com, user: jumper}}
hosts:
  - address: localhost
    role: master
  - address: 10.0.0.2
    role: worker
    ssh: {{user: other, port: 2200, password: {{fromFile: {pw_file}}}}}
virtualization:
  virtualMachineCIDRs: [10.66.10.0/24]
"""
    config = parse_config(text, "install.yaml")
    local, remote = targets_from_config(config)
    assert local.local and local.bastion is None  # no SSH, no jump host for localhost
    assert remote.endpoint.user == "other" and remote.endpoint.port == 2200
    assert remote.endpoint.password == Secret("file-secret")
    assert remote.sudo_password is not None and remote.sudo_password.reveal() == "env-secret"
    assert remote.bastion is not None and remote.bastion.user == "jumper" and remote.bastion.port == 22
    assert "env-secret" not in repr(remote) and "file-secret" not in repr(remote)
    assert str(remote.sudo_password) == "***"


def test_defaults() -> None:
    config = InstallConfig.model_validate({
        "apiVersion": "dvp.deckhouse.io/v1alpha1", "kind": "InstallConfig",
        "hosts": [{"address": "localhost", "role": "master"}],
        "virtualization": {"virtualMachineCIDRs": ["10.66.0.0/16"]},
    })
    assert config.target == "embedded"
    assert config.checks.profile == "production"
    assert config.ssh.known_hosts_file == Path("~/.ssh/known_hosts").expanduser()
    assert [p for p, _ in config.platform_cidrs()] == [
        "cluster.podSubnetCIDR", "cluster.serviceSubnetCIDR", "virtualization.virtualMachineCIDRs[0]",
    ]
