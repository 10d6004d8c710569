"""Custom resources are pruned, defaulted and validated like kube-apiserver does it, and a
refused write changes nothing."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from controlplane.apiserver.errors import ApiError
from controlplane.apiserver.schema import StructuralSchema

from .conftest import TEST_CRD, Api


def widget(name: str = "w", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.dvp.io/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"size": 1, **spec}}


async def test_unknown_fields_are_pruned_and_defaults_applied(api: Api) -> None:
    obj = widget(extra="x", free={"anything": {"goes": 1}}, quantity="1Gi")
    obj["topLevelJunk"] = True
    obj["metadata"]["junk"] = 1
    stored = await api.service.create(api.widgets, "default", obj)
    assert "extra" not in stored.obj["spec"]
    assert "topLevelJunk" not in stored.obj
    assert "junk" not in stored.obj["metadata"]
    assert stored.obj["spec"]["free"] == {"anything": {"goes": 1}}
    assert stored.obj["spec"]["mode"] == "Slow"
    assert stored.obj["spec"]["quantity"] == "1Gi"


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"size": 0}, "spec.size", "Invalid value: 0: spec.size in body should be greater than or equal to 1"),
        ({"size": 101}, "spec.size", "Invalid value: 101: spec.size in body should be less than or equal to 100"),
        ({"size": "big"}, "spec.size", 'Invalid value: "big": spec.size in body must be of type integer: "string"'),
        ({"mode": "Turbo"}, "spec.mode", 'Unsupported value: "Turbo": supported values: "Fast", "Slow"'),
        ({"url": "ftp://x"}, "spec.url", "Invalid value: \"ftp://x\": spec.url in body should match '^https?://'"),
        ({"image": "x" * 11}, "spec.image", "Too long: may not be longer than 10"),
        ({"tags": ["a", "b", "c"]}, "spec.tags", "Too many: 3: must have at most 2 items"),
        ({"tags": ["a", "a"]}, "spec.tags[1]", 'Duplicate value: "a"'),
        ({"url": "http://x", "image": "i"}, "spec", 'Invalid value: "object": url and image are mutually exclusive'),
        ({"quantity": True}, "spec.quantity", "Invalid value: true"),
    ],
    ids=["minimum", "maximum", "type", "enum", "pattern", "maxLength", "maxItems", "set", "cel", "int-or-string"],
)
async def test_invalid_widget_is_refused_with_field_and_rule(api: Api, spec: dict, field: str, message: str) -> None:
    with pytest.raises(ApiError) as err:
        await api.service.create(api.widgets, "default", widget(**spec))
    exc = err.value
    assert exc.code == 422 and exc.reason == "Invalid"
    causes = exc.details["causes"]
    assert any(c["field"] == field and c["message"].startswith(message) for c in causes), causes
    assert f"{field}: {message}" in exc.message
    assert api.store.count(api.widgets.storage_resource) == 0


@pytest.mark.parametrize(("blocking", "extra"), [
    (True, {"mode": "Turbo"}), (True, {"image": "x" * 11}), (True, {"tags": ["a", "b", "c"]}),
    (True, {"size": "big"}), (False, {"size": 101}), (False, {"url": "ftp://x"}),
], ids=["enum", "maxLength", "maxItems", "type", "maximum", "pattern"])
async def test_rules_run_only_on_an_object_within_types_enums_and_limits(api: Api, blocking: bool,
                                                                         extra: dict[str, Any]) -> None:
    """kube-apiserver's blocking errors: a type, enum, required or length/items limit broken, the
    CEL rules are not run (their cost is bounded by the limits) and a cause says so; any other
    schema error leaves the rules to run and report too."""
    with pytest.raises(ApiError) as err:
        await api.service.create(api.widgets, "default", widget(**{"url": "http://x", "image": "i", **extra}))
    messages = [c["message"] for c in err.value.details["causes"]]
    ran = any("mutually exclusive" in m for m in messages)
    skipped = any("some validation rules were not checked because the object was invalid" in m for m in messages)
    assert (ran, skipped) == (not blocking, blocking), messages


@pytest.mark.parametrize(("spec", "field", "message"), [
    ({"size": 101}, "spec.size", "Invalid value: 101: spec.size in body should be less than or equal to 100"),
    ({"mode": "Turbo"}, "spec.mode", 'Unsupported value: "Turbo": supported values: "Fast", "Slow"'),
    ({"tags": ["a", "a"]}, "spec.tags[1]", 'Duplicate value: "a"'),
    ({"size": 0}, "spec", "Invalid value: \"object\": size may not shrink"),
], ids=["maximum", "enum", "set", "cel-transition"])
async def test_a_changed_field_is_checked_on_update_as_on_create(api: Api, spec: dict, field: str,
                                                                  message: str) -> None:
    created = await api.service.create(api.widgets, "default", widget(size=5))
    body = created.copy()
    body["spec"].update(spec)
    with pytest.raises(ApiError) as err:
        await api.service.update(api.widgets, "default", "w", body)
    causes = err.value.details["causes"]
    assert any(c["field"] == field and c["message"].startswith(message) for c in causes), causes


async def test_a_status_write_does_not_revalidate_the_unchanged_spec(api: Api) -> None:
    """Only changed fields are checked on update, at any depth (kube's validation ratcheting): a
    spec stored before a stricter schema still lets the status, and its other fields, be written;
    the field itself, once changed, is checked."""
    created = await api.service.create(api.widgets, "default", widget(size=5))
    api.widgets.schema._json_schema["properties"]["spec"]["properties"]["size"]["maximum"] = 3  # type: ignore[union-attr]
    api.widgets.schema._validators = {}  # type: ignore[union-attr]
    body = created.copy()
    body["status"] = {"phase": "Ready"}
    stored = await api.service.update(api.widgets, "default", "w", body, subresource="status")
    assert stored.obj["status"] == {"phase": "Ready"}
    body = stored.copy()
    body["spec"]["mode"] = "Fast"
    stored = await api.service.update(api.widgets, "default", "w", body)
    assert stored.obj["spec"]["mode"] == "Fast"
    body = stored.copy()
    body["spec"]["size"] = 4
    with pytest.raises(ApiError) as err:  # a changed field is checked against the schema as it is now
        await api.service.update(api.widgets, "default", "w", body)
    assert err.value.details["causes"][0]["field"] == "spec.size"


@pytest.mark.parametrize(("tags", "error"), [
    (["a", "bb", "c"], None),
    (["bb", "a"], None),
    (["a", "bb", "cc"], "spec.tags[2]"),
], ids=["added-item-valid", "unchanged-items-moved", "added-item-checked"])
async def test_a_list_write_checks_the_items_it_adds(api: Api, tags: list[str], error: str | None) -> None:
    """Items equal to stored ones are not checked again (stored before the schema got stricter)."""
    created = await api.service.create(api.widgets, "default", widget(size=5, tags=["a", "bb"]))
    tags_schema = api.widgets.schema._json_schema["properties"]["spec"]["properties"]["tags"]  # type: ignore[union-attr]
    del tags_schema["maxItems"]
    tags_schema["items"]["maxLength"] = 1
    api.widgets.schema._validators = {}  # type: ignore[union-attr]
    body = created.copy()
    body["spec"]["tags"] = tags
    if error is None:
        assert (await api.service.update(api.widgets, "default", "w", body)).obj["spec"]["tags"] == tags
        return
    with pytest.raises(ApiError) as err:
        await api.service.update(api.widgets, "default", "w", body)
    assert [c["field"] for c in err.value.details["causes"]] == [error, "<nil>"]  # <nil>: the rules were not run


async def test_required_field_missing(api: Api) -> None:
    obj = widget()
    del obj["spec"]["size"]
    with pytest.raises(ApiError) as err:
        await api.service.create(api.widgets, "default", obj)
    assert err.value.details["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.size"},
        {"reason": "FieldValueInvalid", "field": "<nil>", "message": 'Invalid value: "null": some validation rules were '
         "not checked because the object was invalid; correct the existing errors to complete validation"}]


async def test_refused_update_leaves_stored_object_unchanged(api: Api) -> None:
    created = await api.service.create(api.widgets, "default", widget(size=5))
    bad = created.copy()
    bad["spec"]["size"] = 0
    with pytest.raises(ApiError):
        await api.service.update(api.widgets, "default", "w", bad)
    after = api.service.get(api.widgets, "default", "w")
    assert after.raw == created.raw and after.rv == created.rv


async def test_transition_rule_sees_old_object(api: Api) -> None:
    created = await api.service.create(api.widgets, "default", widget(size=5))
    smaller = created.copy()
    smaller["spec"]["size"] = 3
    with pytest.raises(ApiError) as err:
        await api.service.update(api.widgets, "default", "w", smaller)
    assert "size may not shrink" in err.value.message
    bigger = created.copy()
    bigger["spec"]["size"] = 7
    assert (await api.service.update(api.widgets, "default", "w", bigger)).obj["spec"]["size"] == 7


@pytest.mark.parametrize(
    ("meta", "field"),
    [
        ({"name": "Bad_Name"}, "metadata.name"),
        ({"name": "ok", "labels": {"bad key!": "v"}}, "metadata.labels"),
        ({"name": "ok", "labels": {"k": "bad value!"}}, "metadata.labels[k]"),
        ({"name": "ok", "ownerReferences": [{"kind": "X", "name": "y"}]}, "metadata.ownerReferences[0].apiVersion"),
        ({}, "metadata.name"),
    ],
    ids=["name", "label-key", "label-value", "owner-ref", "no-name"],
)
async def test_metadata_rules(api: Api, meta: dict, field: str) -> None:
    obj = widget()
    obj["metadata"] = meta
    with pytest.raises(ApiError) as err:
        await api.service.create(api.widgets, "default", obj)
    assert field in [c["field"] for c in err.value.details["causes"]]


async def test_wrong_kind_or_namespace_is_a_bad_request(api: Api) -> None:
    obj = widget()
    obj["kind"] = "Gadget"
    with pytest.raises(ApiError) as err:
        await api.service.create(api.widgets, "default", obj)
    assert err.value.code == 400 and "Gadget" in err.value.message
    obj = widget()
    obj["metadata"]["namespace"] = "other"
    with pytest.raises(ApiError) as err:
        await api.service.create(api.widgets, "default", obj)
    assert err.value.code == 400


async def test_kinds_whose_rules_iterate_are_checked_off_the_event_loop(api: Api, monkeypatch: pytest.MonkeyPatch
                                                                         ) -> None:
    """A rule with a macro (`all`, `exists`, ...) is interpreted once per element: a
    VirtualMachinePool's rule over its two lists of 16 takes about 0.2 s, which must not stall
    every other request. Such kinds are validated in the worker thread large objects use; a
    kind without one stays on the event loop (a thread hop per write would cost more)."""
    crd = copy.deepcopy(TEST_CRD)
    crd["metadata"]["name"] = "gizmos.example.dvp.io"
    crd["spec"]["names"] = {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"}
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["x-kubernetes-validations"] = [{"rule": "self.tags.all(t, t != 'x')", "message": "no x"}]
    await api.service.create(api.info("apiextensions.k8s.io", "v1", "customresourcedefinitions"), "", crd)
    await api.settle()
    threads: list[str] = []
    validate = StructuralSchema.validate

    def recording(self: StructuralSchema, *args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return validate(self, *args)

    monkeypatch.setattr(StructuralSchema, "validate", recording)
    gizmos = api.info("example.dvp.io", "v1", "gizmos")
    assert gizmos.schema is not None and gizmos.schema.cel.iterates and api.widgets.schema is not None
    assert not api.widgets.schema.cel.iterates
    await api.service.create(api.widgets, "default", widget())
    await api.service.create(gizmos, "default", {**widget(tags=["a"]), "kind": "Gizmo"})
    with pytest.raises(ApiError) as err:
        await api.service.create(gizmos, "default", {**widget(name="g2", tags=["x"]), "kind": "Gizmo"})
    assert "no x" in err.value.message
    loop_thread = threading.current_thread().name
    assert threads[0] == loop_thread and threads[1:] and all(t != loop_thread for t in threads[1:]), threads
