"""The quick start's manifests as the tests apply them (the same shapes as examples/)."""

from __future__ import annotations

from typing import Any

API = "virtualization.deckhouse.io/v1alpha2"


def vi_http(name: str, url: str, **http: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "VirtualImage", "metadata": {"name": name},
            "spec": {"storage": "ContainerRegistry", "dataSource": {"type": "HTTP", "http": {"url": url, **http}}}}


def vd_from_image(name: str, image: str, size: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"dataSource": {"type": "ObjectRef", "objectRef": {"kind": "VirtualImage", "name": image}}}
    if size:
        spec["persistentVolumeClaim"] = {"size": size}
    return {"apiVersion": API, "kind": "VirtualDisk", "metadata": {"name": name}, "spec": spec}


def vd_empty(name: str, size: str) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "VirtualDisk", "metadata": {"name": name},
            "spec": {"persistentVolumeClaim": {"size": size}}}


def vm(name: str, disk: str, *, run_policy: str = "AlwaysOnUnlessStoppedManually", user_data: str | None = None,
       cores: int = 1, memory: str = "256Mi", cls: str = "generic", extra_disks: tuple[str, ...] = (),
       core_fraction: str = "10%") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "virtualMachineClassName": cls, "runPolicy": run_policy,
        "cpu": {"cores": cores, "coreFraction": core_fraction}, "memory": {"size": memory},
        "terminationGracePeriodSeconds": 20,
        "blockDeviceRefs": [{"kind": "VirtualDisk", "name": d} for d in (disk, *extra_disks)],
    }
    if user_data:
        spec["provisioning"] = {"type": "UserData", "userData": user_data}
    return {"apiVersion": API, "kind": "VirtualMachine", "metadata": {"name": name}, "spec": spec}


def vmop(name: str, vm_name: str, op: str, *, force: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": op, "virtualMachineName": vm_name}
    if force:
        spec["force"] = True
    return {"apiVersion": API, "kind": "VirtualMachineOperation", "metadata": {"name": name}, "spec": spec}
