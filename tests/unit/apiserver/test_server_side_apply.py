"""Server-side apply and managedFields through `ApiService`: every write records its
manager, apply creates, merges, removes, conflicts and forces as kube-apiserver does, bad
input changes nothing, and fieldValidation refuses, warns about or ignores unknown fields."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver import fieldvalidation
from controlplane.apiserver.apply.writes import WriteOptions
from controlplane.apiserver.errors import ApiError

from .conftest import Api
from .test_validation import widget

APPLY = "application/apply-patch+yaml"


def opts(manager: str, *, force: bool = False, validation: str = "Ignore") -> WriteOptions:
    return WriteOptions(manager=manager, force=force, validation=validation)


def owners(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"].get("managedFields") or []}


async def apply(api: Api, body: dict[str, Any], manager: str = "ssa", **kw: Any) -> dict[str, Any]:
    stored = await api.service.patch(api.widgets, "default", body["metadata"]["name"], APPLY, body,
                                     options=opts(manager, **kw))
    return stored.obj


async def test_create_and_update_record_their_managers(api: Api) -> None:
    s = await api.service.create(api.widgets, "default", widget(tags=["a"]), options=opts("kubectl-create"))
    entry = s.obj["metadata"]["managedFields"][0]
    assert entry["manager"] == "kubectl-create" and entry["operation"] == "Update"
    assert entry["apiVersion"] == "example.dvp.io/v1" and entry["fieldsType"] == "FieldsV1" and entry["time"]
    assert entry["fieldsV1"] == {"f:spec": {".": {}, "f:mode": {}, "f:size": {},
                                            "f:tags": {".": {}, 'v:"a"': {}}}}
    s = await api.service.patch(api.widgets, "default", "w", "application/merge-patch+json",
                                {"metadata": {"labels": {"a": "b"}}}, options=opts("kubectl-label"))
    assert owners(s.obj)[("kubectl-label", "Update")] == {"f:metadata": {"f:labels": {".": {}, "f:a": {}}}}
    s = await api.service.patch(api.widgets, "default", "w", "application/merge-patch+json",
                                {"status": {"phase": "Ready"}}, subresource="status", options=opts("ctrl"))
    status_entry = next(e for e in s.obj["metadata"]["managedFields"] if e["manager"] == "ctrl")
    assert status_entry["subresource"] == "status" and status_entry["fieldsV1"] == {"f:status": {
        ".": {}, "f:phase": {}}}


async def test_apply_creates_then_merges_and_removes(api: Api) -> None:
    obj = await apply(api, widget(tags=["a", "b"], image="x"))
    assert obj["spec"] == {"size": 1, "tags": ["a", "b"], "image": "x", "mode": "Slow"}
    assert owners(obj)[("ssa", "Apply")] == {"f:spec": {"f:image": {}, "f:size": {}, "f:tags": {'v:"a"': {},
                                                                                             'v:"b"': {}}}}
    obj = await apply(api, widget(tags=["a"]))
    assert obj["spec"] == {"size": 1, "tags": ["a"], "mode": "Slow"}
    assert obj["metadata"]["generation"] == 2


async def test_conflict_then_force(api: Api) -> None:
    await apply(api, widget(size=2))
    before = api.service.get(api.widgets, "default", "w")
    with pytest.raises(ApiError) as err:
        await apply(api, widget(size=3), manager="other")
    assert err.value.code == 409 and err.value.message == \
        'Apply failed with 1 conflict: conflict with "ssa": .spec.size'
    assert api.service.get(api.widgets, "default", "w").rv == before.rv
    obj = await apply(api, widget(size=3), manager="other", force=True)
    assert obj["spec"]["size"] == 3
    assert owners(obj)[("other", "Apply")] == {"f:spec": {"f:size": {}}}
    assert ("ssa", "Apply") not in owners(obj)


async def test_update_by_another_manager_conflicts_with_next_apply(api: Api) -> None:
    await apply(api, widget(size=2))
    await api.service.patch(api.widgets, "default", "w", "application/merge-patch+json", {"spec": {"size": 4}},
                            options=opts("kubectl-edit"))
    with pytest.raises(ApiError) as err:
        await apply(api, widget(size=5))
    assert 'conflict with "kubectl-edit" using example.dvp.io/v1: .spec.size' in err.value.message


async def test_apply_bad_input_is_4xx_and_changes_nothing(api: Api) -> None:
    await apply(api, widget(size=2))
    rv = api.service.get(api.widgets, "default", "w").rv
    for body, code in [([1, 2], 400), ({"metadata": {"name": "w"}}, 400),
                       ({**widget(), "kind": "Other"}, 400), ({**widget(), "spec": {"size": 0}}, 422)]:
        with pytest.raises(ApiError) as err:
            await api.service.patch(api.widgets, "default", "w", APPLY, body, options=opts("ssa"))
        assert err.value.code == code, body
    with pytest.raises(ApiError) as err:
        await api.service.patch(api.widgets, "default", "w", APPLY, widget(), options=opts(""))
    assert err.value.code == 422 and "fieldManager: Required value" in err.value.message
    assert api.service.get(api.widgets, "default", "w").rv == rv


async def test_managed_fields_can_be_cleared(api: Api) -> None:
    s = await api.service.create(api.widgets, "default", widget(), options=opts("kubectl-create"))
    body = s.copy()
    body["metadata"]["managedFields"] = [{}]
    s = await api.service.update(api.widgets, "default", "w", body, options=opts("kubectl-replace"))
    assert "managedFields" not in s.obj["metadata"]


async def test_unchanged_update_is_not_rewritten(api: Api) -> None:
    s = await api.service.create(api.widgets, "default", widget(), options=opts("a"))
    again = await api.service.update(api.widgets, "default", "w", s.copy(), options=opts("a"))
    assert again.rv == s.rv


@pytest.mark.parametrize(("mode", "outcome"), [("Strict", 400), ("Warn", "warned"), ("Ignore", "silent")])
async def test_field_validation(api: Api, mode: str, outcome: Any) -> None:
    body = widget()
    body["spec"]["foo"] = 1
    body["metadata"]["bar"] = 2
    o = opts("kubectl-create", validation=mode)
    if outcome == 400:
        with pytest.raises(ApiError) as err:
            await api.service.create(api.widgets, "default", body, options=o)
        assert err.value.code == 400 and err.value.message == (
            'Widget in version "v1" cannot be handled as a Widget: strict decoding error: '
            'unknown field "metadata.bar", unknown field "spec.foo"')
        assert api.store.get(api.widgets.storage_resource, "default/w") is None
        return
    s = await api.service.create(api.widgets, "default", body, options=o)
    assert "foo" not in s.obj["spec"]
    assert o.warnings == (['unknown field "metadata.bar"', 'unknown field "spec.foo"'] if outcome == "warned" else [])


async def test_preserve_unknown_fields_are_not_unknown(api: Api) -> None:
    o = opts("c", validation="Strict")
    s = await api.service.create(api.widgets, "default", widget(free={"any": {"thing": 1}}), options=o)
    assert s.obj["spec"]["free"] == {"any": {"thing": 1}} and o.warnings == []


async def test_duplicate_fields_are_reported(api: Api) -> None:
    o = opts("c", validation="Strict")
    o.duplicates = ["size"]
    with pytest.raises(ApiError) as err:
        await api.service.create(api.widgets, "default", widget(), options=o)
    assert 'duplicate field "size"' in err.value.message


@pytest.mark.parametrize(("load", "raw"), [
    (fieldvalidation.json_load, b'{"spec": {"size": 1, "size": 2, "disks": [{"name": "a", "name": "b"}]}}'),
    (fieldvalidation.yaml_load, b"spec:\n  size: 1\n  size: 2\n  disks:\n  - {name: a, name: b}\n"),
], ids=["json", "yaml"])
def test_duplicate_fields_are_found_with_their_paths(load: Any, raw: bytes) -> None:
    body, found = load(raw)
    assert body == {"spec": {"size": 2, "disks": [{"name": "b"}]}}
    assert found == ["spec.size", "spec.disks[0].name"]


@pytest.mark.parametrize(("raw", "found"), [
    (b'{"spec": {"size": 1, "disks": [{"name": "a"}, {"name": "a"}]}}', []),
    (b'{"a": 1, "b": {"c": [{"d": 1, "d": 2}]}}', ["b.c[0].d"]),
    (b'[{"x": 1}, {"x": 1, "x": 2}]', ["[1].x"]),
], ids=["none", "deep", "top-list"])
def test_the_quick_duplicate_scan_names_what_the_full_read_names(raw: bytes, found: list[str]) -> None:
    assert fieldvalidation.json_duplicates(raw) == fieldvalidation.json_load(raw)[1] == found


def test_yaml_timestamps_stay_strings_and_bad_keys_are_refused() -> None:
    assert fieldvalidation.yaml_load(b"t: 2024-01-01T00:00:00Z")[0] == {"t": "2024-01-01T00:00:00Z"}
    with pytest.raises(ValueError):
        fieldvalidation.yaml_load(b"? [a]\n: 1\n")


async def test_status_apply_owns_only_status(api: Api) -> None:
    await apply(api, widget(size=2))
    body = {**widget(size=9), "status": {"phase": "Ready"}}
    s = await api.service.patch(api.widgets, "default", "w", APPLY, body, subresource="status",
                                options=opts("ctrl"))
    assert s.obj["status"] == {"phase": "Ready"} and s.obj["spec"]["size"] == 2
    entry = next(e for e in s.obj["metadata"]["managedFields"] if e["manager"] == "ctrl")
    assert entry["operation"] == "Apply" and entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {"f:phase": {}}}
    with pytest.raises(ApiError) as err:
        await api.service.patch(api.widgets, "default", "missing", APPLY, widget("missing"), subresource="status",
                                options=opts("ctrl"))
    assert err.value.code == 404


async def test_builtin_kind_apply_merges_its_keyed_lists(api: Api) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ssa-ns", "labels": {"a": "1"},
                                                                 "finalizers": ["x/one"]}}
    s = await api.service.patch(api.namespaces, "", "ssa-ns", APPLY, ns, options=opts("one"))
    assert s.obj["metadata"]["labels"] == {"a": "1"}
    ns2 = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ssa-ns", "labels": {"b": "2"},
                                                                  "finalizers": ["x/two"]}}
    s = await api.service.patch(api.namespaces, "", "ssa-ns", APPLY, ns2, options=opts("two"))
    assert s.obj["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert s.obj["metadata"]["finalizers"] == ["x/one", "x/two"]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    s = await api.service.create(api.configmaps, "default", cm, options=opts("kubectl-create"))
    assert s.obj["metadata"]["managedFields"][0]["fieldsV1"] == {"f:data": {".": {}, "f:k": {}}}
    s = await api.service.patch(api.configmaps, "default", "c", "application/strategic-merge-patch+json",
                                {"data": {"k": "w"}}, options=opts("kubectl-patch"))
    assert owners(s.obj)[("kubectl-patch", "Update")] == {"f:data": {"f:k": {}}}
    assert owners(s.obj)[("kubectl-create", "Update")] == {"f:data": {}}
