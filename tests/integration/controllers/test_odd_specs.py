"""Objects DVP's schema lets through but that name nothing, against a real `dvp server` through
kubectl: the controllers report them in the object's status and go on with everything else
(a block device entry without a name once made the VM's status unwritable, retried forever,
and failed the disk controller's event mapping)."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from tests.services import polling
from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration

eventually = functools.partial(polling.eventually, timeout=30, interval=0.1)


def _vm(name: str, refs: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachine",
                       "metadata": {"name": name},
                       "spec": {"virtualMachineClassName": "generic", "cpu": {"cores": 1, "coreFraction": "10%"},
                                "memory": {"size": "256Mi"}, "blockDeviceRefs": refs}})


def _condition(server: ApiServerProcess, vm: str, kind: str) -> dict[str, Any] | None:
    out = server.kubectl("get", "vm", vm, "-o", "json", check=False)
    if out.returncode != 0:
        return None
    status = json.loads(out.stdout).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), None)


@pytest.mark.parametrize(("name", "ref", "missing"), [
    ("odd-no-name", {"kind": "VirtualDisk"}, "has no name"),
    ("odd-null-name", {"kind": "VirtualDisk", "name": None}, "has no name"),
    ("odd-no-kind", {"name": "d"}, "has no kind"),
])
def test_a_block_device_entry_naming_nothing_is_reported(apiserver: ApiServerProcess, name: str,
                                                         ref: dict[str, Any], missing: str) -> None:
    apiserver.kubectl("apply", "-f", "-", input=_vm(name, [ref, {"kind": "VirtualDisk", "name": f"{name}-disk"}]))
    cond = eventually(lambda: _condition(apiserver, name, "BlockDevicesReady"))
    assert cond["status"] == "False", cond
    assert f"spec.blockDeviceRefs[0] {missing}" in cond["message"], cond
    assert f"VirtualDisk '{name}-disk' does not exist" in cond["message"], cond
    refs = json.loads(apiserver.kubectl("get", "vm", name, "-o", "json").stdout)["status"]["blockDeviceRefs"]
    assert [r["name"] for r in refs] == [f"{name}-disk"]
    # the disk controller still maps the machine's events: a disk made now sees its consumer
    apiserver.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualDisk",
        "metadata": {"name": f"{name}-disk"}, "spec": {"persistentVolumeClaim": {"size": "64Mi"}}}))
    eventually(lambda: f"{name}-disk" not in ((_condition(apiserver, name, "BlockDevicesReady") or {})
                                              .get("message") or "does not exist"))
    apiserver.kubectl("delete", "vm", name, "--wait=false")
    apiserver.kubectl("delete", "vd", f"{name}-disk", "--wait=false")
