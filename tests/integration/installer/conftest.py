"""Session-wide test hosts for the installer: real sshd servers in network namespaces (see
tests/support/hostlab.py), some judged on recorded host files (tests/fixtures/hosts/)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from installer.checks.catalog import check_names
from installer.config import InstallConfig, parse_config
from tests.support.hostfiles import materialize
from tests.support.hostlab import HostLab, LabHost

RECORDED = ("intel-nested", "amd-no-nested", "vm-no-flags", "pvm-this-machine")


@dataclass
class Lab:
    lab: HostLab
    hosts: dict[str, LabHost]
    roots: dict[str, Path]
    silent: tuple[str, int]
    blackhole: str

    def __getitem__(self, name: str) -> LabHost:
        return self.hosts[name]


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.fail("the SSH test hosts need root (network namespaces, sshd, mknod)")
    base = tmp_path_factory.mktemp("installer-lab")
    hl = HostLab()
    try:
        hosts: dict[str, LabHost] = {}
        roots: dict[str, Path] = {}
        hosts["plain"] = hl.add_host("plain")
        hosts["port2222"] = hl.add_host("p2222", port=2222)
        hosts["inner"] = hl.add_host("inner", behind=hosts["plain"])
        hosts["badname"] = hl.add_host("badname", hostname="Bad_Name", resolve_self=False)
        hosts["twin1"] = hl.add_host("twin1", hostname="twin")
        hosts["twin2"] = hl.add_host("twin2", hostname="twin")
        for case in RECORDED:
            roots[case] = materialize(case, base / "roots" / case)
            hosts[case] = hl.add_host(case.split("-")[0], host_root=roots[case], hostname=case)
        dirty_root = base / "roots" / "dirty"
        (dirty_root / "etc" / "kubernetes").mkdir(parents=True)
        (dirty_root / "etc" / "kubernetes" / "admin.conf").write_text("apiVersion: v1\nkind: Config\n")
        (dirty_root / "etc" / "dvp").mkdir(parents=True)
        materialize("pvm-this-machine", dirty_root)
        roots["dirty"] = dirty_root
        hosts["dirty"] = hl.add_host("dirty", host_root=dirty_root)
        slow_root = base / "roots" / "slow"
        (slow_root / "proc").mkdir(parents=True)
        os.mkfifo(slow_root / "proc" / "meminfo")  # reading it blocks: the fact script hangs
        roots["slow"] = slow_root
        hosts["slow"] = hl.add_host("slow", host_root=slow_root)
        silent = hl.add_silent("silent")
        blackhole = hl.add_blackhole("void")
        yield Lab(hl, hosts, roots, silent, blackhole)
    finally:
        hl.close()


ConfigFactory = Callable[..., InstallConfig]


def build_config(
    lab: Lab,
    workdir: Path,
    hosts: list[dict[str, Any]],
    *,
    ssh: dict[str, Any] | None = None,
    profile: str = "production",
    cluster: dict[str, Any] | None = None,
    skip: list[str] | None = None,
    known_hosts: Path | None = None,
    write_to: Path | None = None,
) -> InstallConfig:
    """Build a config for some lab hosts, validated exactly like a config file."""
    if known_hosts is None:
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(lab.lab.known_hosts())
    ssh_settings: dict[str, Any] = {
        "privateKeyFiles": [str(lab.lab.client_key)],
        "useAgent": False,
        "knownHostsFile": str(known_hosts),
        "connectTimeoutSeconds": 5,
        "commandTimeoutSeconds": 20,
    }
    ssh_settings.update(ssh or {})
    if not any(h.get("role") == "master" for h in hosts):
        hosts[0]["role"] = "master"
    doc: dict[str, Any] = {
        "apiVersion": "dvp.deckhouse.io/v1alpha1",
        "kind": "InstallConfig",
        "ssh": ssh_settings,
        "hosts": hosts,
        "virtualization": {"virtualMachineCIDRs": ["10.66.10.0/24"]},
        "checks": {"profile": profile, "skip": skip or []},
    }
    if cluster:
        doc["cluster"] = cluster
    text = yaml.safe_dump(doc, sort_keys=False)
    path = write_to or workdir / "install.yaml"
    path.write_text(text)
    return parse_config(text, str(path), known_checks=check_names())


@pytest.fixture
def known_hosts(lab: Lab, tmp_path: Path) -> Path:
    """A known_hosts file that trusts every lab host."""
    path = tmp_path / "known_hosts"
    path.write_text(lab.lab.known_hosts())
    return path


@pytest.fixture
def make_config(lab: Lab, tmp_path: Path, known_hosts: Path) -> ConfigFactory:
    def factory(hosts: list[dict[str, Any]], **kwargs: Any) -> InstallConfig:
        kwargs.setdefault("known_hosts", known_hosts)
        return build_config(lab, tmp_path, hosts, **kwargs)

    return factory


def host(lab_host: LabHost, role: str = "worker", **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"address": lab_host.address, "role": role, "name": lab_host.name.lower()}
    if lab_host.port != 22:
        entry.setdefault("ssh", {})["port"] = lab_host.port
    for key, value in extra.items():
        if key == "ssh":
            entry.setdefault("ssh", {}).update(value)
        else:
            entry[key] = value
    return entry
