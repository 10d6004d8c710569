"""`kubectl top node` (kubectl 1.33) against `dvp server`: the metrics.k8s.io group is
discovered and NodeMetrics come from the usage a node handler publishes on its Node."""

from __future__ import annotations

import json
import os
import subprocess

from controlplane.api.nodemetrics import USAGE_ANNOTATION, NodeUsage, Usage
from tests.services.apiserver import KUBECTL_V33, ApiServerProcess


def _kubectl33(server: ApiServerProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.home)}
    result = subprocess.run([str(KUBECTL_V33), *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _node(name: str, usage: NodeUsage | None) -> str:
    annotations = {USAGE_ANNOTATION: usage.to_annotation()} if usage else {}
    return json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": name, "labels": {"top-test": "yes"}, "annotations": annotations}})


def test_kubectl_top_node_prints_cpu_and_memory(apiserver: ApiServerProcess) -> None:
    usage = NodeUsage("2026-01-01T00:00:00Z", 10.0, Usage(cpu_nanocores=1_250_000_000, memory_bytes=3 * 1024**3))
    for name, u in (("top-node-a", usage), ("top-node-b", None)):
        subprocess.run([str(KUBECTL_V33), "apply", "-f", "-"], input=_node(name, u), text=True, check=True,
                       capture_output=True, env={**os.environ, "KUBECONFIG": str(apiserver.kubeconfig),
                                                 "HOME": str(apiserver.home)})
    _kubectl33(apiserver, "patch", "node", "top-node-a", "--subresource=status", "--type=merge", "-p",
               json.dumps({"status": {"capacity": {"cpu": "4", "memory": "8Gi"},
                                      "allocatable": {"cpu": "4", "memory": "8Gi"}}}))
    out = _kubectl33(apiserver, "top", "node", "-l", "top-test=yes").stdout
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert lines["top-node-a"] == ["top-node-a", "1250m", "31%", "3072Mi", "37%"], out
    assert "top-node-b" not in lines or "<unknown>" in lines["top-node-b"], out
    raw = json.loads(_kubectl33(apiserver, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/top-node-a").stdout)
    assert raw["kind"] == "NodeMetrics" and raw["usage"] == {"cpu": "1250000000n", "memory": "3145728Ki"}
    missing = _kubectl33(apiserver, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/top-node-b", check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    pods = json.loads(_kubectl33(apiserver, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods").stdout)
    assert pods == {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": []}
    _kubectl33(apiserver, "delete", "node", "top-node-a", "top-node-b")


def test_a_bad_usage_record_is_not_served(apiserver: ApiServerProcess) -> None:
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig), "HOME": str(apiserver.home)}
    doc = json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": "top-node-bad", "annotations": {USAGE_ANNOTATION: "{not json"}}})
    subprocess.run([str(KUBECTL_V33), "apply", "-f", "-"], input=doc, text=True, check=True, capture_output=True,
                   env=env)
    missing = _kubectl33(apiserver, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/top-node-bad", check=False)
    assert "NotFound" in missing.stderr
    _kubectl33(apiserver, "delete", "node", "top-node-bad")


def test_dvp_v_top_shows_vm_usage(apiserver: ApiServerProcess) -> None:
    import sys

    from tests.services.apiserver import REPO

    usage = NodeUsage("2026-01-01T00:00:00Z", 10.0, Usage(2_000_000_000, 4 * 1024**3), vms={
        "default/web-1": Usage(500_000_000, 512 * 1024**2), "other/db-1": Usage(1_500_000, 1024**3)})
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig), "HOME": str(apiserver.home)}
    subprocess.run([str(KUBECTL_V33), "apply", "-f", "-"], input=_node("top-node-vms", usage), text=True, check=True,
                   capture_output=True, env=env)

    def dvp(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "installer.cli.main", "v", "top", *args], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=60)

    doc = json.loads(dvp("-A", "-o", "json").stdout)
    mine = [i for i in doc["items"] if i["node"] == "top-node-vms"]
    assert [(i["namespace"], i["name"], i["usage"]) for i in mine] == [
        ("default", "web-1", {"cpu": "500000000n", "memory": "524288Ki"}),
        ("other", "db-1", {"cpu": "1500000n", "memory": "1048576Ki"})]
    text = dvp("-n", "other").stdout.splitlines()
    assert text[0].split() == ["NAME", "NODE", "CPU(cores)", "MEMORY(bytes)"]
    assert text[1].split() == ["db-1", "top-node-vms", "1m", "1024Mi"]
    missing = dvp("-n", "other", "no-such-vm")
    assert missing.returncode == 1 and "No usage published for VM no-such-vm" in missing.stdout
    _kubectl33(apiserver, "delete", "node", "top-node-vms")
