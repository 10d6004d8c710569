"""helm 4 as users run it, with its defaults (server-side apply, releases kept in protobuf
Secrets): install, upgrade, rollback and uninstall of a chart of DVP objects plus a ConfigMap
and a Secret, against one `dvp server`."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.clients.conftest import Kubectl
from tests.services.apiserver import HELM, ApiServerProcess

pytestmark = pytest.mark.integration
NS = "helm-dvp"

TEMPLATES = {
    "disk.yaml": """apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualDisk
metadata:
  name: {{ .Release.Name }}-root
spec:
  persistentVolumeClaim: {size: {{ .Values.diskSize }}}
""",
    "vm.yaml": """apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualMachine
metadata:
  name: {{ .Release.Name }}-vm
  labels: {tier: {{ .Values.tier | quote }}}
spec:
  virtualMachineClassName: generic
  runPolicy: Manual
  cpu: {cores: {{ .Values.cores }}, coreFraction: 10%}
  memory: {size: 256Mi}
  blockDeviceRefs: [{kind: VirtualDisk, name: {{ .Release.Name }}-root}]
""",
    "config.yaml": """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  tier: {{ .Values.tier | quote }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-secret
stringData:
  password: {{ .Values.password | quote }}
""",
}


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chart") / "dvp-app"
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: dvp-app\nversion: 0.1.0\n")
    (root / "values.yaml").write_text("tier: web\ncores: 1\ndiskSize: 1Gi\npassword: s3cret\n")
    for name, text in TEMPLATES.items():
        (root / "templates" / name).write_text(text)
    return root


def helm(server: ApiServerProcess, *args: str) -> str:
    assert HELM.exists(), f"{HELM} missing: run `make setup`"
    env = {"KUBECONFIG": str(server.kubeconfig), "HOME": str(server.home), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(HELM), *args, "-n", NS], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def get(k33: Kubectl, kind: str, name: str) -> dict[str, object]:
    out: dict[str, object] = json.loads(k33.run("get", kind, name, "-n", NS, "-o", "json",
                                                "--show-managed-fields").stdout)
    return out


def test_helm_install_upgrade_rollback_uninstall(server: ApiServerProcess, k33: Kubectl, chart: Path) -> None:
    k33.run("create", "namespace", NS)
    deadline = time.monotonic() + 60
    while k33.run("get", "vmclass", "generic", check=False).returncode != 0:  # the controllers bootstrap it
        assert time.monotonic() < deadline, "VirtualMachineClass generic never appeared"
        time.sleep(0.5)

    helm(server, "install", "app", str(chart))  # helm 4 applies server-side by default
    vm = get(k33, "vm", "app-vm")
    managers = {(e["manager"], e["operation"]) for e in vm["metadata"]["managedFields"]}  # type: ignore[index]
    assert ("helm", "Apply") in managers, managers
    assert vm["spec"]["cpu"]["cores"] == 1  # type: ignore[index]
    assert get(k33, "cm", "app-config")["data"] == {"tier": "web"}

    helm(server, "upgrade", "app", str(chart), "--set", "tier=db", "--set", "cores=2")
    vm = get(k33, "vm", "app-vm")
    assert vm["spec"]["cpu"]["cores"] == 2 and vm["metadata"]["labels"]["tier"] == "db"  # type: ignore[index]
    assert get(k33, "cm", "app-config")["data"] == {"tier": "db"}

    helm(server, "rollback", "app", "1")
    vm = get(k33, "vm", "app-vm")
    assert vm["spec"]["cpu"]["cores"] == 1 and vm["metadata"]["labels"]["tier"] == "web"  # type: ignore[index]
    history = json.loads(helm(server, "history", "app", "-o", "json"))
    assert [h["revision"] for h in history] == [1, 2, 3] and history[-1]["status"] == "deployed"
    secrets = k33.run("get", "secrets", "-n", NS, "-l", "owner=helm", "-o", "name").stdout.split()
    assert len(secrets) == 3, secrets  # one release Secret per revision, written as protobuf

    helm(server, "uninstall", "app")
    for kind, name in (("vm", "app-vm"), ("vd", "app-root"), ("cm", "app-config"), ("secret", "app-secret")):
        gone = time.monotonic() + 60
        while k33.run("get", kind, name, "-n", NS, check=False).returncode == 0:
            assert time.monotonic() < gone, f"{kind}/{name} still there after helm uninstall"
            time.sleep(0.5)
    assert k33.run("get", "secrets", "-n", NS, "-l", "owner=helm", "-o", "name").stdout.split() == []
