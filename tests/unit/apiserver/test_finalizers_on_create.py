"""Creates get their controller's finalizer when the controllers run (as kube's PVC protection
admission): in the create response, after the client's own, owned by no field manager; never
when the server runs without controllers, nor for kinds no controller always finalizes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from controlplane.api.crds import load_crds
from controlplane.api.finalizers import FINALIZER_VD_PROTECTION, FINALIZER_VMCLASS
from controlplane.apiserver import crds

from .conftest import Api

GROUP = "virtualization.deckhouse.io"


def _serve(api: Api, kind: str) -> None:
    crd = next(c for c in load_crds() if c["spec"]["names"]["kind"] == kind)
    api.registry.replace_crd(crd["metadata"]["name"], crds.infos_for(crd))


async def _create(api: Api, plural: str, obj: dict[str, Any], *, on: bool) -> dict[str, Any]:
    api.service.finalizers_on_create = on
    info = api.info(GROUP, "v1alpha2", plural)
    made = await api.service.create(info, "" if not info.namespaced else "default", obj)
    assert made.obj == api.service.get(info, "default" if info.namespaced else "", obj["metadata"]["name"]).obj
    return made.obj


DISK = {"spec": {"persistentVolumeClaim": {"size": "1Gi"}}}


@pytest.mark.parametrize(("on", "given", "expected"), [
    (True, None, [FINALIZER_VD_PROTECTION]),
    (True, ["example.com/mine"], ["example.com/mine", FINALIZER_VD_PROTECTION]),
    (True, [FINALIZER_VD_PROTECTION], [FINALIZER_VD_PROTECTION]),
    (False, None, None),
], ids=["added", "after-the-clients", "not-twice", "no-controllers"])
async def test_a_disk_is_created_with_its_protection_finalizer(api: Api, on: bool, given: list[str] | None,
                                                              expected: list[str] | None) -> None:
    _serve(api, "VirtualDisk")
    meta: dict[str, Any] = {"name": "d"} | ({"finalizers": given} if given else {})
    obj = await _create(api, "virtualdisks", {"metadata": meta, **DISK}, on=on)
    assert obj["metadata"].get("finalizers") == expected
    owned = orjson.dumps(obj["metadata"].get("managedFields") or []).decode()
    assert (FINALIZER_VD_PROTECTION in owned) == (given == [FINALIZER_VD_PROTECTION])  # the client's only


async def test_a_class_held_only_while_used_is_created_without(api: Api) -> None:
    _serve(api, "VirtualMachineClass")
    obj = await _create(api, "virtualmachineclasses", {"metadata": {"name": "c"}, "spec": {
        "cpu": {"type": "Host"}}}, on=True)
    assert FINALIZER_VMCLASS not in (obj["metadata"].get("finalizers") or [])
    assert not obj["metadata"].get("finalizers")
