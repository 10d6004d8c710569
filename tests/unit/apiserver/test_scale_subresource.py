"""The `scale` subresource of custom resources, mapped as kube-apiserver maps it: the object
seen as an autoscaling/v1 Scale, writes touching only the spec replicas path, and bad
replicas refused with 422 naming `spec.replicas`."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.api.crds import crds_by_kind
from controlplane.apiserver import errors, patch
from controlplane.apiserver.crds import infos_for
from controlplane.apiserver.discovery import _resource_entries
from controlplane.apiserver.scale import patched_scale, replicas_of, scale_of, with_replicas

DECLARED = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector"}
POOL: dict[str, Any] = {
    "apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachinePool",
    "metadata": {"name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                 "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"a": "b"}, "generation": 3},
    "spec": {"replicas": 2, "scaleDownPolicy": "NewestFirst"},
    "status": {"replicas": 1, "selector": "pool-uid=u"},
}


def test_scale_of_maps_the_three_paths() -> None:
    assert scale_of(DECLARED, POOL) == {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"replicas": 2}, "status": {"replicas": 1, "selector": "pool-uid=u"}}


def test_absent_replicas_read_as_zero_and_no_selector_path_means_no_selector() -> None:
    bare = {"metadata": {"name": "x"}, "spec": {}}
    declared = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}
    scale = scale_of(declared, bare)
    assert (scale["spec"], scale["status"]) == ({"replicas": 0}, {"replicas": 0})


def test_a_write_changes_only_the_replicas_path() -> None:
    out = with_replicas(DECLARED, POOL, 5)
    assert out["spec"] == {"replicas": 5, "scaleDownPolicy": "NewestFirst"}
    assert {k: v for k, v in out.items() if k != "spec"} == {k: v for k, v in POOL.items() if k != "spec"}
    assert POOL["spec"]["replicas"] == 2  # the input is not changed
    nested = with_replicas({"specReplicasPath": ".spec.scaling.count"}, {"metadata": {}}, 1)
    assert nested["spec"] == {"scaling": {"count": 1}}


@pytest.mark.parametrize(("body", "code", "text"), [
    ({"spec": {"replicas": -1}}, 422, "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
    ({"spec": {"replicas": "three"}}, 422, 'spec.replicas: Invalid value: "three": must be an integer'),
    ({"spec": {"replicas": 1.5}}, 422, "spec.replicas: Invalid value: 1.5: must be an integer"),
    ({"spec": {"replicas": True}}, 422, "spec.replicas: Invalid value: true: must be an integer"),
    ({"spec": {"replicas": 2**31}}, 422, "must be less than or equal to 2147483647"),
    ({"kind": "Deployment", "spec": {"replicas": 1}}, 400, "expected autoscaling/v1 Scale"),
    ([1], 400, "must be an autoscaling/v1 Scale"),
], ids=["negative", "string", "float", "bool", "too-big", "wrong-kind", "not-an-object"])
def test_bad_replicas_are_refused_naming_the_field(body: Any, code: int, text: str) -> None:
    with pytest.raises(errors.ApiError) as caught:
        replicas_of(body, "web")
    assert caught.value.code == code and text in str(caught.value.to_status()["message"])
    if code == 422:
        causes = caught.value.to_status()["details"]["causes"]
        assert [c["field"] for c in causes] == ["spec.replicas"]
        assert caught.value.to_status()["details"]["kind"] == "Scale"


def test_replicas_of_a_good_scale() -> None:
    assert replicas_of({"kind": "Scale", "apiVersion": "autoscaling/v1", "spec": {"replicas": 3}}, "web") == 3
    assert replicas_of({"spec": {}}, "web") == 0


@pytest.mark.parametrize(("content_type", "body"), [
    (patch.MERGE_PATCH, {"spec": {"replicas": 4}}),
    (patch.STRATEGIC_PATCH, {"spec": {"replicas": 4}}),
    (patch.JSON_PATCH, [{"op": "replace", "path": "/spec/replicas", "value": 4}]),
])
def test_patches_apply_to_the_current_scale(content_type: str, body: Any) -> None:
    current = scale_of(DECLARED, POOL)
    assert replicas_of(patched_scale(current, content_type, body), "web") == 4


def test_apply_patch_is_not_accepted_on_scale() -> None:
    with pytest.raises(errors.ApiError) as caught:
        patched_scale(scale_of(DECLARED, POOL), patch.APPLY_PATCH, {})
    assert caught.value.code == 415


def test_discovery_lists_scale_as_autoscaling_v1_for_crds_that_declare_it() -> None:
    (pool,) = infos_for(crds_by_kind()["VirtualMachinePool"])
    (vm,) = infos_for(crds_by_kind()["VirtualMachine"])
    assert [e for e in _resource_entries(pool) if e["name"] == "virtualmachinepools/scale"] == [
        {"name": "virtualmachinepools/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
         "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}]
    assert [e["name"] for e in _resource_entries(vm)] == ["virtualmachines", "virtualmachines/status"]
