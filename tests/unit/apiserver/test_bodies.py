"""Bounded decoding of request bodies, the last check before a commit batch, and the types of
ObjectMeta's fields (controlplane.apiserver.bodies, controlplane.apiserver.metatypes)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from controlplane.apiserver import bodies, errors
from controlplane.apiserver.bodies import BodyLimits, check_storable, decode_sync, measure
from controlplane.apiserver.metatypes import metadata_type_causes

SMALL = BodyLimits(max_request_bytes=1000, max_object_bytes=1000, max_depth=5)


def _laughs(levels: int) -> bytes:
    doc = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for i in range(levels):
        name = f"l{i}"
        doc += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    return doc.encode()


@pytest.mark.parametrize(("body", "ctype", "expected"), [
    (b"a: 1\nb: [x, y]\n", "application/yaml", {"a": 1, "b": ["x", "y"]}),
    (b"1: one\ntrue: t\nnull: n\n1.5: f\n", "application/yaml", {"1": "one", "true": "t", "null": "n", "1.5": "f"}),
    (b"when: 2024-01-01\n", "application/yaml", {"when": "2024-01-01"}),
    (b"base: &b {x: 1}\nother: {<<: *b, y: 2}\n", "application/yaml", {"base": {"x": 1}, "other": {"x": 1, "y": 2}}),
    (b'{"a": [1, {"b": null}]}', "application/json", {"a": [1, {"b": None}]}),
    (b'{"a": 1}', "application/merge-patch+json", {"a": 1}),
], ids=["yaml", "yaml-keys-as-json", "yaml-timestamp-string", "yaml-merge-key", "json", "merge-patch"])
def test_decodes_like_kube(body: bytes, ctype: str, expected: Any) -> None:
    assert decode_sync(body, ctype) == expected


@pytest.mark.parametrize(("body", "ctype", "code", "text"), [
    (_laughs(8), "application/yaml", 413, "limit is 3145728"),
    (b"a: &a [*a]\n", "application/yaml", 400, "refers to itself"),
    (b"a: &a {b: *a}\n", "application/yaml", 400, "refers to itself"),
    (b"x: " + b"[" * 101 + b"]" * 101, "application/yaml", 400, "nested too deeply"),
    (b"[" * 2000 + b"]" * 2000, "application/yaml", 400, "nesting depth"),
    (b"[" * 101 + b"]" * 101, "application/json", 400, "nested too deeply"),
    (b'{"a": ' * 101 + b'"x"' + b"}" * 101, "application/json", 400, "nested too deeply"),
    (b"[" * 5000 + b"]" * 5000, "application/json", 400, "depth"),
    (b"a: !!binary aGVsbG8=\n", "application/yaml", 400, "binary"),
    (b"? [a]\n: b\n", "application/yaml", 400, "could not be decoded"),
    (b"a: !!python/object:os.system x\n", "application/yaml", 400, "could not be decoded"),
    (b"{", "application/json", 400, "could not be decoded as application/json"),
    (b"a: " + b"9" * 5000 + b"\n", "application/yaml", 400, "could not be decoded"),
], ids=["billion-laughs", "recursive-list", "recursive-map", "yaml-depth", "yaml-flow-2000", "json-depth",
        "json-object-depth", "json-5000", "binary", "complex-key", "python-tag", "json-syntax", "yaml-huge-int"])
def test_refuses_bodies_that_would_hurt_the_server(body: bytes, ctype: str, code: int, text: str) -> None:
    with pytest.raises(errors.ApiError) as caught:
        decode_sync(body, ctype)
    assert caught.value.code == code
    assert text in caught.value.message


def test_billion_laughs_is_refused_without_expanding_it() -> None:
    start = time.monotonic()
    with pytest.raises(errors.ApiError):
        decode_sync(_laughs(30), "application/yaml")  # 9**30 "lol"s if expanded
    assert time.monotonic() - start < 1.0


def test_merge_keys_of_merge_keys_stay_cheap() -> None:
    doc = "a0: &a0 {k0: 1, k1: 2}\n" + "".join(
        f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}], x{i}: 1}}\n" for i in range(1, 30))
    start = time.monotonic()
    assert len(decode_sync(doc.encode(), "application/yaml")["a29"]) == 31
    assert time.monotonic() - start < 2.0


def test_shared_nodes_count_their_expanded_size() -> None:
    value = ["x" * 100]
    assert measure({"a": value, "b": value, "c": value}) > 300
    with pytest.raises(errors.ApiError) as caught:
        measure([value] * 20, SMALL)
    assert caught.value.code == 413


def test_shared_node_depth_counts_where_it_is_used() -> None:
    deep: Any = []
    for _ in range(3):
        deep = [deep]
    measure({"a": deep}, SMALL)
    with pytest.raises(errors.ApiError):
        measure([[[deep]]], SMALL)


@pytest.mark.parametrize(("obj", "code", "text"), [
    ({"metadata": {"name": "a"}, "spec": {1: 2}}, 422, "Dict key must be str"),
    ({"metadata": {"name": "a"}, "spec": {"n": 2 ** 70}}, 422, "64-bit"),
    ({"metadata": {"name": "a"}, "spec": {"s": "x" * 2000}}, 413, "limit is 1000"),
    ({"metadata": {"name": "a"}, "spec": [[[[[[1]]]]]]}, 400, "nested too deeply"),
], ids=["int-key", "big-int", "too-large", "too-deep"])
def test_check_storable_refuses_what_the_datastore_cannot_commit(obj: dict[str, Any], code: int, text: str) -> None:
    with pytest.raises(errors.ApiError) as caught:
        check_storable("Widget", "example.dvp.io", "a", obj, SMALL)
    assert caught.value.code == code
    assert text in caught.value.message


@pytest.mark.parametrize(("meta", "field"), [
    ({"generateName": 5}, "metadata.generateName"),
    ({"name": ["a"]}, "metadata.name"),
    ({"resourceVersion": 5}, "metadata.resourceVersion"),
    ({"generation": "1"}, "metadata.generation"),
    ({"generation": True}, "metadata.generation"),
    ({"labels": ["a"]}, "metadata.labels"),
    ({"annotations": "a"}, "metadata.annotations"),
    ({"finalizers": "a"}, "metadata.finalizers"),
    ({"finalizers": ["a", 1]}, "metadata.finalizers[1]"),
    ({"ownerReferences": {"a": 1}}, "metadata.ownerReferences"),
    ({"ownerReferences": [{"name": 5}]}, "metadata.ownerReferences[0].name"),
    ({"ownerReferences": [{"controller": "yes"}]}, "metadata.ownerReferences[0].controller"),
    ({"managedFields": "x"}, "metadata.managedFields"),
    ({"managedFields": ["x"]}, "metadata.managedFields[0]"),
    ({"managedFields": [{"manager": 1}]}, "metadata.managedFields[0].manager"),
    ({"managedFields": [{"fieldsV1": "f"}]}, "metadata.managedFields[0].fieldsV1"),
])
def test_metadata_field_types(meta: dict[str, Any], field: str) -> None:
    causes = metadata_type_causes(meta)
    assert [c.field for c in causes] == [field]
    assert causes[0].reason == "FieldValueTypeInvalid"


def test_well_typed_metadata_has_no_type_causes() -> None:
    meta = {"name": "a", "generateName": "a-", "namespace": "n", "uid": "u", "resourceVersion": "5", "generation": 2,
            "labels": {"a": "b"}, "annotations": {"a": "b"}, "finalizers": ["x/y"], "creationTimestamp": None,
            "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "n", "uid": "u", "controller": True}],
            "managedFields": [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {}}]}
    assert metadata_type_causes(meta) == []


def test_default_limit_is_kube_apiservers() -> None:
    assert bodies.DEFAULT_LIMITS.max_request_bytes == 3 * 1024 * 1024
