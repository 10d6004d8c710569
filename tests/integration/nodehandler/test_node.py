"""The agent registers its Node truthfully: on this machine (kvm_pvm only, no vmx/svm) the KVM
decision is "emulation, reason PVMOnly", in the Node's label and condition; capacity comes
from the host; the Lease heartbeat exists; kubectl shows the node Ready."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from controlplane.api.internal import LABEL_CPU_VENDOR, LABEL_HANDLER_VERSION, LABEL_KVM, NODE_LEASE_NAMESPACE
from controlplane.common.kube.client import LEASES, NODES
from controlplane.common.version import __version__
from tests.integration.nodehandler.support import NodeEnv
from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration


def _meminfo_kib() -> int:
    for line in open("/proc/meminfo").read().splitlines():  # noqa: SIM115
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    raise AssertionError("no MemTotal in /proc/meminfo")


def test_node_labels_conditions_and_capacity(env: NodeEnv) -> None:
    node = env.kube.get(NODES, env.node)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == env.node
    assert labels[LABEL_KVM] == "false", "kvm_pvm cannot run ordinary guests: this node emulates"
    assert labels[LABEL_CPU_VENDOR] in ("AMD", "Intel")
    assert labels[LABEL_HANDLER_VERSION] == __version__
    assert node["metadata"]["annotations"][LABEL_HANDLER_VERSION] == __version__
    st = node["status"]
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "NodeHandlerReady"
    assert conds["KVM"]["status"] == "False" and conds["KVM"]["reason"] == "PVMOnly"
    assert "kvm_pvm" in conds["KVM"]["message"]
    assert st["capacity"]["cpu"] == str(os.cpu_count())
    assert st["capacity"]["memory"] == f"{_meminfo_kib()}Ki"
    assert st["allocatable"]["memory"] == f"{_meminfo_kib() - 512 * 1024}Ki"
    assert st["daemonEndpoints"]["kubeletEndpoint"]["Port"] == env.agent.console_port
    assert {"type": "InternalIP", "address": "127.0.0.1"} in st["addresses"]
    assert st["nodeInfo"]["kubeletVersion"] == f"dvp-{__version__}"


def test_lease_heartbeat(env: NodeEnv) -> None:
    lease = env.kube.get(LEASES, env.node, NODE_LEASE_NAMESPACE)
    assert lease["spec"]["holderIdentity"] == env.node
    renewed = dt.datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00"))
    assert (dt.datetime.now(dt.UTC) - renewed).total_seconds() < 30


def test_kubectl_shows_the_node_ready(env: NodeEnv, apiserver: ApiServerProcess) -> None:
    out = apiserver.kubectl("get", "nodes", env.node, "-o", "wide").stdout
    row = out.splitlines()[1].split()
    assert row[0] == env.node and row[1] == "Ready"
    assert f"dvp-{__version__}" in row and "127.0.0.1" in row
