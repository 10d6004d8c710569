"""Acceptance of the VM metrics with a real guest: `dvp agent` runs an instance under libvirt,
a real Prometheus scrapes the agent's /metrics (its console endpoint, HTTPS + bearer token)
and the API server's, and answers with the VM's CPU usage and a VM's phase; `kubectl top
node` (kubectl 1.33) prints the node's CPU and memory from what the agent published."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.api import monitoring
from controlplane.api.resources import VIRTUAL_MACHINES
from controlplane.nodehandler.context import INSTANCES
from tests.integration.nodehandler.support import NodeEnv, instance, wait_for
from tests.services.apiserver import KUBECTL_V33, ApiServerProcess
from tests.services.prometheus import PrometheusProcess, Target

pytestmark = pytest.mark.integration
NS = "metrics"


@pytest.fixture
def running_vm(env: NodeEnv) -> Iterator[str]:
    env.ensure_namespace(NS)
    env.boot_volume("vm-m-root", NS)
    env.create_instance(instance("vm-m", env.node, namespace=NS, disks=[{"name": "root", "volume": {"name": "vm-m-root"}}]))
    env.wait_phase("vm-m", "Running", namespace=NS, timeout=120)
    yield "vm-m"
    env.kube.delete_if_exists(INSTANCES, "vm-m", NS)


def test_prometheus_sees_the_vm_and_kubectl_top_the_node(env: NodeEnv, apiserver: ApiServerProcess, running_vm: str,
                                                          tmp_path: Path) -> None:
    # a VirtualMachine whose disk does not exist stays Pending: the controllers' phase series says so
    env.kube.create(VIRTUAL_MACHINES, {
        "apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachine",
        "metadata": {"name": "vm-phase", "namespace": NS},
        "spec": {"virtualMachineClassName": "generic", "cpu": {"cores": 1}, "memory": {"size": "256Mi"},
                 "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "no-such-disk"}]}})
    rules = tmp_path / "dvp.rules.yaml"
    rules.write_text(monitoring.rules().read_text())
    prom = PrometheusProcess(tmp_path / "prometheus", [
        Target("dvp-apiserver", f"127.0.0.1:{apiserver.port}", apiserver.ca_file, apiserver.token),
        Target("dvp-agent", f"127.0.0.1:{env.agent.console_port}", apiserver.ca_file, apiserver.token),
    ], rule_files=[rules])
    prom.start()
    try:
        prom.wait_query('up{job="dvp-agent"} == 1', what="the agent scraped")
        cpu = prom.wait_query(
            f'rate(d8_virtualization_virtualmachine_cpu_usage_milliseconds_total{{namespace="{NS}",'
            f'name="{running_vm}",node="{env.node}"}}[5s]) > 0', timeout=90, what="the VM's CPU usage")
        assert float(cpu[0]["value"][1]) > 0
        mem = prom.wait_query(f'd8_virtualization_virtualmachine_memory_resident_bytes{{name="{running_vm}"}} > 0',
                              what="the VM's resident memory")
        assert float(mem[0]["value"][1]) > 1024**2
        prom.wait_query(f'd8_virtualization_virtualmachine_block_device_read_bytes_total{{name="{running_vm}"}} > 0',
                        what="the VM's disk reads")
        phase = prom.wait_query(f'd8_virtualization_virtualmachine_status_phase{{namespace="{NS}",name="vm-phase"}}'
                                ' == 1', what="the VM's phase")
        assert phase[0]["metric"]["phase"] == "Pending"
        prom.wait_query(f'kube_node_status_allocatable{{node="{env.node}",resource="cpu"}} > 0',
                        what="the node's allocatable CPU")
    finally:
        prom.stop()
        env.kube.delete_if_exists(VIRTUAL_MACHINES, "vm-phase", NS)

    kubectl_env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig), "HOME": str(apiserver.home)}

    def top() -> list[str] | None:
        out = subprocess.run([str(KUBECTL_V33), "top", "node", env.node, "--no-headers"], env=kubectl_env,
                             capture_output=True, text=True, timeout=60)
        return out.stdout.split() if out.returncode == 0 else None

    row = wait_for(top, timeout=40, what=f"kubectl top node {env.node}", every=1.0)
    assert row[0] == env.node and row[1].endswith("m") and row[3].endswith("Mi"), row
    assert row[2].endswith("%") and row[4].endswith("%"), row
    node = env.kube.get_or_none(INSTANCES, running_vm, NS)
    assert node is not None
    usage = json.loads(subprocess.run(
        [str(KUBECTL_V33), "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/nodes/{env.node}"], env=kubectl_env,
        capture_output=True, text=True, timeout=60, check=True).stdout)
    assert usage["usage"]["cpu"].endswith("n") and usage["usage"]["memory"].endswith("Ki")
