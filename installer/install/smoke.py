"""The smoke VM of `dvp install --smoke` (end of phase "verify"): proof that the installed
platform runs a VM, not only that its API answers.

Through the admin kubeconfig, as a user would: a blank VirtualDisk and a small VirtualMachine
(class `generic`, 1 core at 5%, 128Mi) in namespace `default`, named `dvp-smoke-<random>`;
the check passes when the VM reaches phase Running (the disk is provisioned on the node the VM
is placed on, the node handler defines and starts its domain). Both objects are deleted
afterwards, whatever the outcome. No image is needed, so the smoke test needs no network.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controlplane.common.kube.client import KubeClient, KubeError
from installer.platform_kinds import GROUP, VERSION
from installer.platform_kinds import VIRTUAL_DISKS as DISKS
from installer.platform_kinds import VIRTUAL_MACHINES as VMS

NAMESPACE = "default"


class SmokeError(Exception):
    """The smoke VM did not run; the message says how far it got and why."""


def _manifests(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    api = f"{GROUP}/{VERSION}"
    labels = {"app.kubernetes.io/managed-by": "dvp-install-smoke"}
    disk = {"apiVersion": api, "kind": "VirtualDisk", "metadata": {"name": name, "labels": labels},
            "spec": {"persistentVolumeClaim": {"size": "64Mi"}}}
    vm = {"apiVersion": api, "kind": "VirtualMachine", "metadata": {"name": name, "labels": labels},
          "spec": {"virtualMachineClassName": "generic", "runPolicy": "AlwaysOn",
                   "cpu": {"cores": 1, "coreFraction": "5%"}, "memory": {"size": "128Mi"},
                   "terminationGracePeriodSeconds": 5,
                   "blockDeviceRefs": [{"kind": "VirtualDisk", "name": name}]}}
    return disk, vm


def _why(vm: dict[str, Any]) -> str:
    status = vm.get("status") or {}
    failing = [f"{c['type']}: {c.get('message') or c.get('reason')}" for c in status.get("conditions") or []
               if c.get("status") == "False" and c.get("type") != "AgentReady"]
    return f"phase {status.get('phase') or 'none'}" + (f" ({'; '.join(failing)})" if failing else "")


def run_smoke(kubeconfig: Path, *, timeout: float = 300.0, log: Callable[[str], None] = lambda _m: None) -> str:
    """Create, watch and delete the smoke VM; returns a one-line summary or raises SmokeError."""
    kube = KubeClient.from_kubeconfig(kubeconfig, user_agent="dvp-install-smoke")
    name = f"dvp-smoke-{secrets.token_hex(3)}"
    disk, vm = _manifests(name)
    started = time.monotonic()
    try:
        kube.create(DISKS, disk, NAMESPACE)
        kube.create(VMS, vm, NAMESPACE)
        log(f"smoke VM {NAMESPACE}/{name} created")
        phase, obj = "", vm
        while time.monotonic() - started < timeout:
            obj = kube.get(VMS, name, NAMESPACE)
            now = (obj.get("status") or {}).get("phase") or ""
            if now != phase:
                phase = now
                log(f"smoke VM {name}: {phase or 'no phase yet'}")
            if phase == "Running":
                node = obj["status"].get("nodeName", "?")
                return f"smoke VM ran on node {node} ({time.monotonic() - started:.1f}s from create to Running)"
            time.sleep(1.0)
        raise SmokeError(f"the smoke VM {NAMESPACE}/{name} was not Running after {timeout:.0f}s: {_why(obj)}")
    except KubeError as exc:
        raise SmokeError(f"the smoke VM {NAMESPACE}/{name} could not be created: {exc}") from exc
    finally:
        _delete(kube, name, log)


def _delete(kube: KubeClient, name: str, log: Callable[[str], None]) -> None:
    for res in (VMS, DISKS):
        try:
            kube.delete_if_exists(res, name, NAMESPACE)
        except KubeError as exc:
            log(f"smoke VM {name}: deleting its {res.kind} failed: {exc} (delete it by hand)")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(kube.get_or_none(res, name, NAMESPACE) is None for res in (VMS, DISKS)):
            log(f"smoke VM {name} deleted")
            return
        time.sleep(1.0)
    log(f"smoke VM {name}: still being deleted after 60s")
