"""An install run again from the same state directory skips the checks that would see the
platform itself (leftovers.dvp, network.ports, network.cidr_routes) only on the hosts an
earlier run got past the preflight on: a host added since is checked in full."""

from __future__ import annotations

from pathlib import Path

from installer.config import InstallConfig
from installer.install.engine import InstallOptions, _installed_here_before, _Run
from installer.install.rundir import RunDir


def config(*addresses: str) -> InstallConfig:
    return InstallConfig.model_validate({
        "apiVersion": "dvp.deckhouse.io/v1alpha1", "kind": "InstallConfig",
        "hosts": [{"address": a, "role": "master" if i == 0 else "worker"} for i, a in enumerate(addresses)],
        "virtualization": {"virtualMachineCIDRs": ["10.66.10.0/24"]},
    })


def earlier_run(state: Path, hosts: list[str], *, prepared: bool) -> None:
    run = RunDir.create(state)
    run.state["hosts"] = sorted(hosts)
    run.save()
    if prepared:
        run.mark_started("prepare")


def current(state: Path, cfg: InstallConfig) -> _Run:
    return _Run(cfg, InstallOptions(state_dir=state), lambda event: None, RunDir.create(state), state, None)


def test_only_hosts_installed_before_skip_the_platform_checks(tmp_path: Path) -> None:
    earlier_run(tmp_path, ["10.0.0.1", "10.0.0.2"], prepared=True)
    earlier_run(tmp_path, ["10.0.0.1", "10.0.0.9"], prepared=False)  # stopped in the preflight: installed nothing
    ctx = current(tmp_path, config("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.9"))
    assert _installed_here_before(ctx) == {"10.0.0.1", "10.0.0.2"}


def test_a_first_install_skips_nothing(tmp_path: Path) -> None:
    assert _installed_here_before(current(tmp_path, config("10.0.0.1"))) == set()
