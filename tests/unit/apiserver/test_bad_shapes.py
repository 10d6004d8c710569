"""Wrongly shaped objects of built-in and custom kinds are 4xx naming the field, never a 500
(found by feeding every top-level and metadata field every JSON type, and by mutating the
examples' DVP objects: an integer outside int64 under a CEL rule was a 500)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver import errors
from tests.unit.apiserver.conftest import Api

CRD_GROUP = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
WIDGETS = ("example.dvp.io", "v1", "widgets")  # CEL rules on its spec


@pytest.mark.parametrize(("resource", "body", "code", "field"), [
    (("", "v1", "namespaces"), {"metadata": {"name": "n1"}, "spec": []}, 422, "spec"),
    (("", "v1", "namespaces"), {"metadata": {"name": "n2"}, "status": "x"}, 422, "status"),
    (CRD_GROUP, {"metadata": {"name": "a.b.c"}}, 422, "spec"),
    (CRD_GROUP, {"metadata": {"name": "a.b.c"}, "spec": 5}, 422, "spec"),
    (CRD_GROUP, {"metadata": {"name": "xs.b.c"}, "spec": {"group": "b.c", "scope": "Namespaced", "names": {
        "plural": "xs", "kind": "X"}, "versions": []}}, 422, "spec.versions"),
    (CRD_GROUP, {"metadata": {"name": "xs.b.c"}, "spec": {"group": "b.c", "scope": "Namespaced", "names": []}},
     422, "spec.names"),
    (CRD_GROUP, {"metadata": {"name": "xs.b.c"}, "spec": {"group": "b.c", "scope": "Anywhere", "names": {
        "plural": "xs", "kind": "X"}, "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
            "openAPIV3Schema": {"type": "object"}}}]}}, 422, "spec.scope"),
    (CRD_GROUP, {"metadata": {"name": "xs.b.c"}, "spec": {"group": "b.c", "scope": "Cluster", "names": {
        "plural": "xs", "kind": "X"}, "versions": [{"name": "v1", "served": "yes", "storage": True}]}}, 422,
     "spec.versions[0].served"),
    (("example.dvp.io", "v1", "widgets"), {"metadata": {"name": "w"}, "spec": {"replicas": 2 ** 70}}, 422, ""),
    (("", "v1", "secrets"), {"metadata": {"name": "s"}, "data": ["a"]}, 422, "data"),
    (("", "v1", "configmaps"), {"metadata": {"name": "c", "ownerReferences": [1]}}, 422, "metadata.ownerReferences[0]"),
    (("", "v1", "secrets"), {"metadata": {"name": "s2"}, "stringData": {"k": 5}}, 422, "stringData[k]"),
    (WIDGETS, {"metadata": {"name": "w1"}, "spec": 2 ** 63}, 422, "spec"),
    (WIDGETS, {"metadata": {"name": "w2"}, "spec": {"size": 2, "url": 2 ** 63}}, 422, "spec.url"),
], ids=["ns-spec-list", "ns-status-string", "crd-no-spec", "crd-spec-int", "crd-no-versions", "crd-names-list",
        "crd-scope", "crd-served-string", "cr-int-over-64-bits", "secret-data-list", "owner-reference-int",
        "secret-string-data-int", "cel-int-over-int64", "cel-field-int-over-int64"])
async def test_wrong_shapes_are_422_naming_the_field(api: Api, resource: tuple[str, str, str], body: dict[str, Any],
                                                     code: int, field: str) -> None:
    with pytest.raises(errors.ApiError) as caught:
        await api.service.create(api.info(*resource), "default", body)
    assert caught.value.code == code, caught.value
    causes = caught.value.details.get("causes") or []
    assert field in [c["field"] for c in causes], caught.value.message


def test_integers_beyond_int64_reach_cel_as_doubles() -> None:
    from celpy import celtypes

    from controlplane.apiserver.cel_values import to_cel

    assert to_cel({}, 2 ** 63) == celtypes.DoubleType(2.0 ** 63)
    assert to_cel({}, 10 ** 400) == celtypes.DoubleType(float("inf"))  # beyond any float64 too
    assert to_cel({}, -(10 ** 400)) == celtypes.DoubleType(float("-inf"))
    assert isinstance(to_cel({}, 2 ** 63 - 1), celtypes.IntType)
