"""The official `kubernetes` Python client against `dvp server`: CRUD, strategic merge patch
on built-in kinds, 415 for it on custom resources, conflicts, pagination, field selectors,
status subresource, watches with bookmarks, and owner-reference garbage collection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch

from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration
CRD = yaml.safe_load((Path(__file__).resolve().parents[2] / "fixtures" / "widget-crd.yaml").read_text())
G, V, P = "example.dvp.io", "v1", "widgets"


@pytest.fixture(scope="module")
def api(apiserver: ApiServerProcess) -> Iterator[client.ApiClient]:
    c = apiserver.client()
    ext = client.ApiextensionsV1Api(c)
    try:
        ext.create_custom_resource_definition(CRD)
    except client.ApiException as exc:
        assert exc.status == 409
    client.CoreV1Api(c).create_namespace({"metadata": {"name": "pyclient"}})
    yield c
    client.CoreV1Api(c).delete_namespace("pyclient")


def widget(name: str, size: int = 1, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": f"{G}/{V}", "kind": "Widget", "metadata": {"name": name, **meta}, "spec": {"size": size}}


def test_configmap_crud_and_strategic_merge_patch(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    cm = v1.create_namespaced_config_map("pyclient", {"metadata": {"name": "cm", "labels": {"a": "1"}},
                                                      "data": {"x": "1"}})
    assert cm.metadata.uid and cm.metadata.resource_version
    patched = v1.patch_namespaced_config_map("cm", "pyclient", {"data": {"y": "2"}, "metadata": {"labels": {"b": "2"}}})
    assert patched.data == {"x": "1", "y": "2"} and patched.metadata.labels == {"a": "1", "b": "2"}
    assert int(patched.metadata.resource_version) > int(cm.metadata.resource_version)
    v1.delete_namespaced_config_map("cm", "pyclient")
    with pytest.raises(client.ApiException) as err:
        v1.read_namespaced_config_map("cm", "pyclient")
    assert err.value.status == 404


def test_secret_string_data_is_folded_into_data(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    s = v1.create_namespaced_secret("pyclient", {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})
    assert s.data == {"password": "aHVudGVyMg=="} and s.type == "Opaque"


def test_custom_resource_refuses_strategic_merge_patch(api: client.ApiClient, apiserver: ApiServerProcess) -> None:
    co = client.CustomObjectsApi(api)
    co.create_namespaced_custom_object(G, V, "pyclient", P, widget("smp"))
    status, body = apiserver.raw("PATCH", f"/apis/{G}/{V}/namespaces/pyclient/{P}/smp", b'{"spec":{"size":2}}',
                                 headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert status == 415
    assert b"application/merge-patch+json" in body
    assert co.get_namespaced_custom_object(G, V, "pyclient", P, "smp")["spec"]["size"] == 1


def test_two_writers_from_same_version_one_conflicts(api: client.ApiClient, apiserver: ApiServerProcess) -> None:
    co = client.CustomObjectsApi(api)
    other = client.CustomObjectsApi(apiserver.client())
    obj = co.create_namespaced_custom_object(G, V, "pyclient", P, widget("race"))
    a, b = dict(obj), dict(obj)
    a["spec"] = {"size": 10}
    b["spec"] = {"size": 20}
    co.replace_namespaced_custom_object(G, V, "pyclient", P, "race", a)
    with pytest.raises(client.ApiException) as err:
        other.replace_namespaced_custom_object(G, V, "pyclient", P, "race", b)
    assert err.value.status == 409 and '"reason":"Conflict"' in err.value.body.replace(" ", "")
    assert co.get_namespaced_custom_object(G, V, "pyclient", P, "race")["spec"]["size"] == 10


def test_status_subresource_and_generation(api: client.ApiClient) -> None:
    co = client.CustomObjectsApi(api)
    co.create_namespaced_custom_object(G, V, "pyclient", P, widget("st"))
    got = co.patch_namespaced_custom_object_status(G, V, "pyclient", P, "st", {"status": {"phase": "Ready"}})
    assert got["status"] == {"phase": "Ready"} and got["metadata"]["generation"] == 1
    got = co.patch_namespaced_custom_object(G, V, "pyclient", P, "st", {"spec": {"size": 3}})
    assert got["metadata"]["generation"] == 2 and got["status"] == {"phase": "Ready"}


def test_pagination_and_field_selector(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    for i in range(12):
        v1.create_namespaced_config_map("pyclient", {"metadata": {"name": f"page-{i:02d}", "labels": {"page": "y"}}})
    names: list[str] = []
    token = None
    pages = 0
    while True:
        result = v1.list_namespaced_config_map("pyclient", label_selector="page=y", limit=5, _continue=token)
        names += [i.metadata.name for i in result.items]
        pages += 1
        token = result.metadata._continue
        if not token:
            break
    assert pages == 3 and names == [f"page-{i:02d}" for i in range(12)]
    one = v1.list_namespaced_config_map("pyclient", field_selector="metadata.name=page-07")
    assert [i.metadata.name for i in one.items] == ["page-07"]
    with pytest.raises(client.ApiException) as err:
        v1.list_namespaced_config_map("pyclient", field_selector="data.x=1")
    assert err.value.status == 400


def test_watch_from_version_with_label_transitions(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    start = v1.list_namespaced_config_map("pyclient").metadata.resource_version
    v1.create_namespaced_config_map("pyclient", {"metadata": {"name": "wt", "labels": {"watch": "yes"}}})
    v1.patch_namespaced_config_map("wt", "pyclient", {"metadata": {"labels": {"watch": "no"}}})
    v1.patch_namespaced_config_map("wt", "pyclient", {"metadata": {"labels": {"watch": "yes"}}})
    v1.delete_namespaced_config_map("wt", "pyclient")
    seen = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        v1.list_namespaced_config_map, "pyclient", label_selector="watch=yes", resource_version=start,
        timeout_seconds=2)]
    assert seen == [("ADDED", "wt"), ("DELETED", "wt"), ("ADDED", "wt"), ("DELETED", "wt")]


def test_live_watch_delivers_events(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    got: list[str] = []
    w = watch.Watch()

    def run() -> None:
        for e in w.stream(v1.list_namespaced_config_map, "pyclient", field_selector="metadata.name=live",
                          timeout_seconds=10):
            got.append(e["type"])
            if e["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    v1.create_namespaced_config_map("pyclient", {"metadata": {"name": "live"}})
    v1.delete_namespaced_config_map("live", "pyclient")
    t.join(15)
    assert got == ["ADDED", "DELETED"]


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
def test_owner_gc_over_http(api: client.ApiClient, policy: str) -> None:
    co = client.CustomObjectsApi(api)
    v1 = client.CoreV1Api(api)
    name = f"owner-{policy.lower()}"
    owner = co.create_namespaced_custom_object(G, V, "pyclient", P, widget(name))
    ref = {"apiVersion": f"{G}/{V}", "kind": "Widget", "name": name, "uid": owner["metadata"]["uid"],
           "blockOwnerDeletion": True}
    v1.create_namespaced_config_map("pyclient", {"metadata": {"name": f"{name}-dep", "ownerReferences": [ref]}})
    co.delete_namespaced_custom_object(G, V, "pyclient", P, name, propagation_policy=policy)
    deadline = time.monotonic() + 10
    dep_exists = owner_exists = True
    while time.monotonic() < deadline:
        names = [c.metadata.name for c in v1.list_namespaced_config_map("pyclient").items]
        dep_exists = f"{name}-dep" in names
        owner_exists = name in [o["metadata"]["name"] for o in co.list_namespaced_custom_object(G, V, "pyclient", P)["items"]]
        if not owner_exists and (dep_exists == (policy == "Orphan")):
            break
        time.sleep(0.1)
    assert not owner_exists
    assert dep_exists == (policy == "Orphan")
    if policy == "Orphan":
        assert not v1.read_namespaced_config_map(f"{name}-dep", "pyclient").metadata.owner_references
