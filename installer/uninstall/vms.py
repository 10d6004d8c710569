"""The VirtualMachines an uninstall must not silently destroy: listed through the platform's
API (the admin kubeconfig read from the master, as the upgrade does), and with `--delete-vms`
deleted through it — so the node handlers stop the domains and free their disks and addresses
— and awaited until gone, before any service is stopped."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from controlplane.common.kube.client import KubeClient
from controlplane.common.kube.quick import quick_client
from installer.platform_kinds import VIRTUAL_MACHINES as VMS


class VMError(Exception):
    """The API could not be asked (or did not finish deleting); the message says what to do."""


@dataclass(frozen=True)
class VMRef:
    namespace: str
    name: str
    phase: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name} ({self.phase or 'no phase'})"


def _api(kubeconfig: Path) -> KubeClient:
    return quick_client(kubeconfig)  # no retries: an API that is down answers at once; the CA held in memory


def list_vms(kubeconfig: Path) -> list[VMRef]:
    try:
        items = _api(kubeconfig).request("GET", VMS.path(), timeout=15)["items"]
    except Exception as exc:  # KubeError, urllib3 and OSError subclasses
        raise VMError(f"listing VirtualMachines through the API failed ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); start dvp-server again, "
                      "or pass --delete-vms to go on without asking the API") from None
    refs = [VMRef(i["metadata"].get("namespace", ""), i["metadata"]["name"],
                  str(i.get("status", {}).get("phase", ""))) for i in items]
    return sorted(refs, key=lambda vm: (vm.namespace, vm.name))


def delete_vms(kubeconfig: Path, vms: list[VMRef], *, timeout: float = 180.0) -> None:
    """Delete every VM through the API and wait until none is left."""
    api = _api(kubeconfig)
    for vm in vms:
        try:
            api.request("DELETE", VMS.path(vm.namespace, vm.name), timeout=15)
        except Exception as exc:
            if getattr(exc, "status", None) != 404:
                raise VMError(f"deleting VirtualMachine {vm}: {type(exc).__name__}: {exc}") from None
    deadline = time.monotonic() + timeout
    left = vms
    while time.monotonic() < deadline:
        left = list_vms(kubeconfig)
        if not left:
            return
        time.sleep(1.0)
    raise VMError(f"VirtualMachines still present {timeout:.0f} s after deleting them: "
                  + ", ".join(map(str, left)) + " (see `kubectl describe vm`)")
