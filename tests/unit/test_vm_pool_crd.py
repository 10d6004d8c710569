"""The VirtualMachinePool CRD: its template sub-schemas stay equal to the VirtualMachine and
VirtualDisk spec schemas they were copied from, and DVP's CEL rules tie the per-member disk
templates to the template's VirtualDisk references one to one."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controlplane.api.crds import crds_by_kind, served_schema
from tests.unit.crd_support import apply_defaults, cel_violations, field_errors


def schema(kind: str) -> dict[str, Any]:
    return served_schema(crds_by_kind()[kind])


def test_template_schemas_are_the_vm_and_disk_spec_schemas() -> None:
    spec = schema("VirtualMachinePool")["properties"]["spec"]["properties"]
    assert spec["virtualMachineTemplate"]["properties"]["spec"] == schema("VirtualMachine")["properties"]["spec"]
    assert spec["virtualDiskTemplates"]["items"]["properties"]["spec"] == schema("VirtualDisk")["properties"]["spec"]


POOL: dict[str, Any] = {
    "apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachinePool", "metadata": {"name": "p"},
    "spec": {"replicas": 1, "scaleDownPolicy": "OldestFirst",
             "virtualDiskTemplates": [{"name": "root", "spec": {}}, {"name": "data", "spec": {}}],
             "virtualMachineTemplate": {"spec": {
                 "virtualMachineClassName": "generic", "cpu": {"cores": 1}, "memory": {"size": "1Gi"},
                 "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "root"}, {"kind": "VirtualDisk", "name": "data"},
                                     {"kind": "ClusterVirtualImage", "name": "iso"}]}}},
}


def with_refs(refs: list[dict[str, str]]) -> dict[str, Any]:
    out = copy.deepcopy(POOL)
    out["spec"]["virtualMachineTemplate"]["spec"]["blockDeviceRefs"] = refs
    return out


def violations(obj: dict[str, Any]) -> list[str]:
    s = schema("VirtualMachinePool")
    return [msg for _path, msg in cel_violations(s, apply_defaults(s, obj))]


def test_dvp_example_shape_is_valid_and_defaults_reclaim() -> None:
    s = schema("VirtualMachinePool")
    obj = copy.deepcopy(POOL)
    obj["spec"]["virtualDiskTemplates"][0]["reclaim"] = {}
    defaulted = apply_defaults(s, obj)
    assert defaulted["spec"]["virtualDiskTemplates"][0]["reclaim"] == {"keep": 0, "onScaleDown": "Delete"}
    assert field_errors(s, defaulted) == [] and violations(obj) == []


@pytest.mark.parametrize(("refs", "message"), [
    ([{"kind": "VirtualDisk", "name": "root"}], "each virtualDiskTemplates entry must be referenced"),
    ([{"kind": "VirtualDisk", "name": "root"}, {"kind": "VirtualDisk", "name": "data"},
      {"kind": "VirtualDisk", "name": "other"}], "must name a virtualDiskTemplates entry"),
    ([{"kind": "VirtualDisk", "name": "root"}, {"kind": "VirtualDisk", "name": "data"},
      {"kind": "VirtualDisk", "name": "data"}], "referenced exactly once"),
], ids=["unreferenced-template", "dangling-reference", "twice"])
def test_disk_templates_and_references_match_one_to_one(refs: list[dict[str, str]], message: str) -> None:
    assert any(message in v for v in violations(with_refs(refs))), violations(with_refs(refs))


def test_retain_options_need_retain() -> None:
    obj = copy.deepcopy(POOL)
    obj["spec"]["virtualDiskTemplates"][0]["reclaim"] = {"keep": 2, "ttl": "30m"}
    assert any("only valid with onScaleDown: Retain" in v for v in violations(obj))
    obj["spec"]["virtualDiskTemplates"][0]["reclaim"]["onScaleDown"] = "Retain"
    assert violations(obj) == []
