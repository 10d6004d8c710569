"""Bad input gets errors that name the field (instance spec) or the setting and file (agent
configuration); the node's dnsmasq files are read and written as dnsmasq does."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from controlplane.api.instance import SpecError, parse_instance
from controlplane.nodehandler.config import AgentConfig, ConfigError, load_config_file
from controlplane.nodehandler.network import parse_hosts, parse_leases, render_hosts

NET = ipaddress.IPv4Network("10.66.0.0/24")


def _inst(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"nodeName": "n", "cpu": {"cores": 1}, "memory": {"size": "256Mi"}}
    base.update(spec)
    return {"metadata": {"name": "vm", "namespace": "ns"}, "spec": base}


BAD_SPECS = [
    ("memory-not-a-quantity", {"memory": {"size": "lots"}}, "spec.memory.size"),
    ("memory-too-small", {"memory": {"size": "1Mi"}}, "spec.memory.size"),
    ("disk-without-source", {"disks": [{"name": "a"}]}, "spec.disks[0]"),
    ("disk-with-two-sources", {"disks": [{"name": "a", "volume": {"name": "v"}, "image": {"ref": "r"}}]},
     "spec.disks[0]"),
    ("cdrom-on-virtio", {"disks": [{"name": "a", "image": {"ref": "r"}, "cdrom": True, "bus": "virtio"}]},
     "spec.disks[0].bus"),
    ("duplicate-disks", {"disks": [{"name": "a", "volume": {"name": "v"}}, {"name": "a", "volume": {"name": "w"}}]},
     "spec.disks"),
    ("same-boot-order", {"disks": [{"name": "a", "volume": {"name": "v"}, "bootOrder": 1},
                                   {"name": "b", "volume": {"name": "w"}, "bootOrder": 1}]}, "bootOrder"),
    ("ip-outside-network", {"nics": [{"name": "n", "mac": "52:54:00:00:00:01", "ip": "192.168.1.5"}]},
     "spec.nics[0].ip"),
    ("ip-of-the-node", {"nics": [{"name": "n", "mac": "52:54:00:00:00:01", "ip": "10.66.0.1"}]}, "spec.nics[0].ip"),
    ("core-fraction", {"cpu": {"cores": 1, "coreFraction": "0%"}}, "spec.cpu.coreFraction"),
    # shapes the schema refuses, met in an object of an earlier schema (found by mutating one): SpecError too
    ("run-state-unknown", {"runState": "Paused"}, "spec: a value of the wrong shape (ValueError"),
    ("disks-a-string", {"disks": "vd-root"}, "spec: a value of the wrong shape (AttributeError"),
    ("cpu-a-list", {"cpu": [1]}, "spec: a value of the wrong shape (AttributeError"),
    ("grace-empty", {"shutdownGracePeriodSeconds": ""}, "spec: a value of the wrong shape (ValueError"),
    ("power-request-no-id", {"powerRequest": {"action": "Stop"}}, "spec: a value of the wrong shape (KeyError"),
]


@pytest.mark.parametrize("spec,field", [c[1:] for c in BAD_SPECS], ids=[c[0] for c in BAD_SPECS])
def test_spec_errors_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_instance(_inst(**spec), vm_net=NET)
    assert field in str(err.value)


def test_defaults_follow_paravirtualization() -> None:
    spec = parse_instance(_inst(paravirtualization=False, disks=[{"name": "a", "volume": {"name": "v"}},
                                                                 {"name": "c", "image": {"ref": "r"}, "cdrom": True}],
                                nics=[{"name": "n", "mac": "52:54:00:00:00:0A"}]), vm_net=NET)
    assert [d.bus for d in spec.disks] == ["sata", "sata"]
    assert spec.disks[1].read_only and spec.nics[0].model == "e1000" and spec.nics[0].mac == "52:54:00:00:00:0a"
    assert spec.hostname == "vm" and spec.run_state == "Running" and spec.grace_period == 60


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


BAD_CONFIGS = [
    ("unknown-key", "kubeconfig: /k\nbridges: x\n", "bridges: unknown setting"),
    ("bad-cidr", "kubeconfig: /k\npki-dir: /p\nvm-cidr: 10.66.0.1/24\n", "vm-cidr"),
    ("tiny-cidr", "kubeconfig: /k\npki-dir: /p\nvm-cidr: 10.66.0.0/30\n", "vm-cidr"),
    ("bad-bridge", "kubeconfig: /k\npki-dir: /p\nbridge: a-very-long-bridge-name\n", "bridge"),
    ("no-tls", "kubeconfig: /k\n", "tls-cert-file"),
    ("bad-listen", "kubeconfig: /k\npki-dir: /p\nconsole-listen: nowhere\n", "console-listen"),
    ("bad-domain-type", "kubeconfig: /k\npki-dir: /p\ndomain-type: xen\n", "domain-type"),
    ("bad-route-mode", "kubeconfig: /k\npki-dir: /p\nvm-route-mode: bgp\n", "vm-route-mode"),
    ("main-route-table", "kubeconfig: /k\npki-dir: /p\nroute-table: 254\n", "route-table"),
    ("bad-route-protocol", "kubeconfig: /k\npki-dir: /p\nroute-protocol: 300\n", "route-protocol"),
    ("rule-after-main", "kubeconfig: /k\npki-dir: /p\nroute-rule-priority: 32765\n", "route-rule-priority"),
    ("not-a-mapping", "- a\n- b\n", "expected a mapping"),
    ("bad-dvcr-url", "kubeconfig: /k\npki-dir: /p\ndvcr-url: 10.0.0.1:5443\n", "dvcr-url"),
    # wrong types (found by mutating a config: each was a traceback)
    ("url-a-number", "kubeconfig: /k\npki-dir: /p\ndvcr-url: 1.5\n", "dvcr-url: expected a string, got float"),
    ("listen-null", "kubeconfig: /k\npki-dir: /p\nconsole-listen: null\n", "console-listen: a value is required"),
    ("protocol-a-string", "kubeconfig: /k\npki-dir: /p\nroute-protocol: '166'\n",
     "route-protocol: expected an integer, got str"),
    ("workers-a-bool", "kubeconfig: /k\npki-dir: /p\ninstance-workers: true\n",
     "instance-workers: expected an integer, got bool"),
    ("routes-a-string", "kubeconfig: /k\npki-dir: /p\nvm-routes: 'yes'\n", "vm-routes: expected true or false"),
    ("path-a-list", "kubeconfig: /k\npki-dir: [a]\n", "pki-dir: expected a path, got list"),
    ("path-empty", "kubeconfig: ''\npki-dir: /p\n", "kubeconfig: expected a path, got str"),
]


@pytest.mark.parametrize("text,field", [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_config_errors_name_the_setting_and_file(tmp_path: Path, text: str, field: str) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config_file(path)
    assert field in str(err.value) and str(path) in str(err.value)


def test_a_workers_dvcr_settings(tmp_path: Path) -> None:
    path = _config(tmp_path, "kubeconfig: /k\npki-dir: /p\ndvcr-url: https://10.0.0.1:5443\ndvcr-ca-file: /etc/dvp/ca\n")
    config = load_config_file(path)
    assert (config.dvcr_url, config.dvcr_ca_file) == ("https://10.0.0.1:5443", Path("/etc/dvp/ca"))


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = _config(tmp_path, "kubeconfig: /k\npki-dir: /p\nnode-name: from-file\nbridge: br-file\n")
    config = load_config_file(path, node_name="from-flag", bridge=None)
    assert (config.node_name, config.bridge, config.pki_dir) == ("from-flag", "br-file", Path("/p"))
    with pytest.raises(ConfigError, match="node-name"):
        AgentConfig(kubeconfig=Path("/k"), pki_dir=Path("/p"), node_name="Not_Valid").validate()


def test_dnsmasq_hosts_and_leases() -> None:
    text = render_hosts({"52:54:00:00:00:02": "10.66.0.11", "52:54:00:00:00:01": "10.66.0.10"})
    assert text == "52:54:00:00:00:01,10.66.0.10\n52:54:00:00:00:02,10.66.0.11\n"
    assert parse_hosts(text) == {"52:54:00:00:00:01": "10.66.0.10", "52:54:00:00:00:02": "10.66.0.11"}
    leases = "1795230791 52:54:00:1C:00:0a 10.66.0.10 vm-a 01:52:54:00:1c:00:0a\n"
    assert parse_leases(leases) == {"52:54:00:1c:00:0a": "10.66.0.10"}


@pytest.mark.parametrize("spec", [{"source": "x"}, {"size": ["1Gi"]}, {"source": {"volume": 5}}])
def test_a_volume_of_the_wrong_shape_is_a_spec_error(spec: dict[str, Any]) -> None:
    from controlplane.api.volume import parse_volume

    with pytest.raises(SpecError, match="spec"):
        parse_volume({"metadata": {"name": "v", "namespace": "ns"}, "spec": {"size": "1Gi", **spec}})
