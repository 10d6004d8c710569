"""`dvp v start|stop|restart|migrate|evict VM`: a VirtualMachineOperation, and (with --wait) its outcome."""

from __future__ import annotations

import time
from typing import Any

from controlplane.api.resources import VIRTUAL_MACHINE_OPERATIONS
from controlplane.common.kube.client import KubeClient


def run(kube: KubeClient, namespace: str, vm: str, kind: str, *, force: bool, wait: float | None,
        target_node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": kind, "virtualMachineName": vm, **({"force": True} if force else {})}
    if target_node:
        spec["migrate"] = {"nodeSelector": {"kubernetes.io/hostname": target_node}}
    op = kube.create(VIRTUAL_MACHINE_OPERATIONS, {
        "apiVersion": VIRTUAL_MACHINE_OPERATIONS.api_version, "kind": VIRTUAL_MACHINE_OPERATIONS.kind,
        "metadata": {"generateName": f"{kind.lower()}-{vm}-", "namespace": namespace}, "spec": spec}, namespace)
    if not wait:
        return op
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        op = kube.get(VIRTUAL_MACHINE_OPERATIONS, op["metadata"]["name"], namespace)
        if (op.get("status") or {}).get("phase") in ("Completed", "Failed", "Superseded"):
            return op
        time.sleep(0.5)
    return op
