"""DVP's VirtualMachine admission defaults, the OpenAPI paths kubectl reads (v2 JSON and protobuf,
v3 per group-version), health checks listed per name, and protobuf review bodies."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request

from controlplane.apiserver import admission_defaults, errors, openapi, openapi_pb, reviews
from controlplane.apiserver.auth import User
from controlplane.apiserver.health import HealthChecks
from controlplane.apiserver.openapi_v3 import group_version_document
from controlplane.apiserver.protobuf import codec
from controlplane.apiserver.resources import ResourceInfo
from controlplane.apiserver.routing import Target

from .conftest import Api

VM_INFO = ResourceInfo(group="virtualization.deckhouse.io", version="v1alpha2", kind="VirtualMachine",
                       plural="virtualmachines", singular="virtualmachine", namespaced=True)
DEFAULT = {admission_defaults.DEFAULT_CLASS_ANNOTATION: "true"}


async def _vmclass(api: Api, name: str, annotations: dict[str, str] | None = None,
                   policies: list[dict[str, Any]] | None = None) -> None:
    obj = {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachineClass",
           "metadata": {"name": name, "annotations": annotations or {}},
           "spec": {"sizingPolicies": policies or []}}
    await api.store.create(admission_defaults.CLASSES, f"/{name}", obj)


def _vm(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "m"}, "spec": {"cpu": {"cores": 2}, **spec}}


async def test_empty_class_gets_the_default_and_its_core_fraction(api: Api) -> None:
    await _vmclass(api, "plain")
    await _vmclass(api, "main", DEFAULT, [{"cores": {"min": 1, "max": 4}, "defaultCoreFraction": 25}])
    obj = _vm()
    assert admission_defaults.default(api.store, VM_INFO, obj) == []
    assert obj["spec"]["virtualMachineClassName"] == "main" and obj["spec"]["cpu"]["coreFraction"] == "25%"


async def test_named_class_is_kept_and_fraction_defaults_to_100(api: Api) -> None:
    await _vmclass(api, "plain", policies=[{"cores": {"min": 1, "max": 4}}])
    await _vmclass(api, "main", DEFAULT)
    obj = _vm(virtualMachineClassName="plain")
    assert admission_defaults.default(api.store, VM_INFO, obj) == []
    assert obj["spec"]["virtualMachineClassName"] == "plain" and obj["spec"]["cpu"]["coreFraction"] == "100%"


@pytest.mark.parametrize(("defaults", "words"), [(0, "Required value: no VirtualMachineClass is the default"),
                                                 (2, "multiple default VirtualMachineClasses are found (a, b)")],
                         ids=["none", "several"])
async def test_no_or_several_defaults_refuse_naming_the_field(api: Api, defaults: int, words: str) -> None:
    for name in ("a", "b")[:defaults]:
        await _vmclass(api, name, DEFAULT)
    causes = admission_defaults.default(api.store, VM_INFO, _vm())
    assert [c.field for c in causes] == ["spec.virtualMachineClassName"] and words in causes[0].message


def test_network_interfaces_get_the_lowest_free_ids(api: Api) -> None:
    obj = _vm(virtualMachineClassName="x", networks=[{"type": "Main"}, {"type": "Network", "name": "a", "id": 2},
                                                     {"type": "Network", "name": "b"}])
    admission_defaults.default(api.store, VM_INFO, obj)
    assert [n["id"] for n in obj["spec"]["networks"]] == [1, 2, 3]


def test_v2_paths_carry_dry_run_for_kubectl_120(api: Api) -> None:
    doc = openapi.build(api.registry)
    item = doc["paths"]["/apis/example.dvp.io/v1/namespaces/{namespace}/widgets/{name}"]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "example.dvp.io", "kind": "Widget", "version": "v1"}
    names = {p["name"] for p in patch["parameters"]}
    assert {"dryRun", "fieldManager", "force"} <= names
    assert "fieldValidation" in names  # kubectl leaves validation to the server once it is listed
    assert "/api/v1/namespaces/{namespace}/configmaps" in doc["paths"]
    encoded = openapi_pb.document(doc)
    assert b"/apis/example.dvp.io/v1/namespaces/{namespace}/widgets/{name}" in encoded and b"dryRun" in encoded
    assert b"x-kubernetes-group-version-kind" in encoded


def test_v3_document_of_one_group_version(api: Api) -> None:
    doc = group_version_document(api.registry.resources("example.dvp.io", "v1"))
    schemas = doc["components"]["schemas"]
    widget = schemas["io.dvp.example.v1.Widget"]
    assert widget["x-kubernetes-group-version-kind"] == [{"group": "example.dvp.io", "kind": "Widget",
                                                          "version": "v1"}]
    assert widget["properties"]["metadata"]["allOf"][0]["$ref"].startswith("#/components/schemas/")
    assert "io.dvp.example.v1.WidgetList" in schemas
    op = doc["paths"]["/apis/example.dvp.io/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert "application/merge-patch+json" in op["requestBody"]["content"]


def test_health_lists_each_check_and_serves_one() -> None:
    checks = HealthChecks()
    state: dict[str, str | None] = {"db": None}
    checks.add("etcd", lambda: state["db"])
    checks.add("started", lambda: None, readiness_only=True)
    verbose = checks.respond("readyz", "", {"verbose": ""})
    assert verbose.status == 200
    assert verbose.text == "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]started ok\nreadyz check passed\n"
    assert checks.respond("livez", "", {}).text == "ok" and "started" not in checks.names("livez")
    assert checks.respond("livez", "etcd").text == "ok"
    assert checks.respond("livez", "started").status == 404
    state["db"] = "writer stopped"
    failed = checks.respond("readyz", "")
    assert failed.status == 503 and "[-]etcd failed: reason withheld" in (failed.text or "")
    assert checks.respond("readyz", "", {}, ["etcd"]).status == 200
    assert checks.respond("livez", "etcd").status == 500


def _field(number: int, data: bytes) -> bytes:
    return bytes([(number << 3) | 2, len(data)]) + data


def test_protobuf_access_review_body_decodes_like_json() -> None:
    attrs = _field(1, b"default") + _field(2, b"create") + _field(3, b"virtualization.deckhouse.io") \
        + _field(5, b"virtualmachines")
    body = _field(2, _field(1, attrs))
    type_meta = _field(1, b"authorization.k8s.io/v1") + _field(2, b"SelfSubjectAccessReview")
    raw = codec.MAGIC + _field(1, type_meta) + _field(2, body)
    decoded = reviews.decode_protobuf(raw, "SelfSubjectAccessReview")
    assert decoded["spec"] == {"resourceAttributes": {"namespace": "default", "verb": "create",
                                                      "group": "virtualization.deckhouse.io",
                                                      "resource": "virtualmachines"}}


@pytest.mark.parametrize("raw", [b"", b"nope", codec.MAGIC + b"\x0a\x7f"], ids=["empty", "no-magic", "short"])
def test_malformed_protobuf_review_is_a_bad_request(raw: bytes) -> None:
    with pytest.raises(errors.ApiError) as err:
        reviews.decode_protobuf(raw, "SelfSubjectReview")
    assert err.value.code == 400


def _body(data: bytes) -> StreamReader:
    reader = StreamReader(mock.Mock(), 2**16, loop=asyncio.get_running_loop())
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_protobuf_only_client_gets_a_protobuf_access_review() -> None:
    msg = codec.review_message("SelfSubjectAccessReview")
    sent = {"spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}}
    raw = codec.envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", codec.encode_object(msg, sent))
    request = make_mocked_request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", headers={
        "Content-Type": codec.MEDIA_TYPE, "Accept": codec.MEDIA_TYPE}, payload=_body(raw))
    target = Target("authorization.k8s.io", "v1", "selfsubjectaccessreviews")
    response = await reviews.authorization_handler()(request, target, User("alice", ("dev",)))
    assert response.status == 201 and response.content_type == codec.MEDIA_TYPE
    assert isinstance(response, web.Response) and isinstance(response.body, bytes)
    api_version, kind, body = codec.open_envelope(response.body)
    assert (api_version, kind) == ("authorization.k8s.io/v1", "SelfSubjectAccessReview")
    answer = codec.decode_object(msg, body)
    assert answer["spec"] == sent["spec"]
    assert answer["status"] == {"allowed": True, "reason": reviews.ALLOW_ALL_REASON}
