"""Protobuf writes that take the fast paths (the answer encoded straight from the stored
dict, the schema check skipped where decoding already made it true) lose no check and
leak nothing: a bad name is still a 422 naming the field, a required field is still
required, a dry run's answer never becomes what a later read returns, and what a
protobuf create answers is what a JSON read shows."""

from __future__ import annotations

import sys
from typing import Any

import orjson
import pytest

from controlplane.apiserver.protobuf import codec
from controlplane.apiserver.protobuf.schema import REGISTRY
from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration
PB = "application/vnd.kubernetes.protobuf"
HDRS = {"Content-Type": PB, "Accept": f"{PB}, application/json"}
NS = "default"


def _pb(kind: str, obj: dict[str, Any]) -> bytes:
    return codec.envelope("v1", kind, codec.encode_object(REGISTRY[kind], obj))


def _read(kind: str, body: bytes) -> dict[str, Any]:
    api_version, got, raw = codec.open_envelope(body)
    assert got == kind, (got, body[:200])
    return codec.decode_object(REGISTRY[kind], raw)


def test_a_protobuf_create_answers_what_a_json_read_shows(apiserver: ApiServerProcess) -> None:
    path = f"/api/v1/namespaces/{NS}/configmaps"
    code, body = apiserver.raw("POST", path, _pb("ConfigMap", {"metadata": {"name": "pbw-same", "labels": {"a": "b"}},
                                                               "data": {"k": "v" * 300}}), headers=HDRS)
    assert code == 201
    created = _read("ConfigMap", body)
    as_json = orjson.loads(apiserver.raw("GET", f"{path}/pbw-same", headers={"Accept": "application/json"})[1])
    assert {"apiVersion": "v1", "kind": "ConfigMap", **created} == as_json
    code, body = apiserver.raw("GET", f"{path}/pbw-same", headers={"Accept": PB})
    assert code == 200 and _read("ConfigMap", body) == created


def test_checks_a_protobuf_body_still_gets(apiserver: ApiServerProcess) -> None:
    path = f"/api/v1/namespaces/{NS}/configmaps"
    code, body = apiserver.raw("POST", path, _pb("ConfigMap", {"metadata": {"name": "Bad_Name"}}), headers=HDRS)
    status = _read("Status", body)
    assert (code, status["reason"]) == (422, "Invalid") and "metadata.name" in status["message"]
    assert apiserver.raw("GET", f"{path}/Bad_Name")[0] == 404
    # an Event's involvedObject is required: its schema is still checked for protobuf bodies
    code, body = apiserver.raw("POST", f"/api/v1/namespaces/{NS}/events",
                               _pb("Event", {"metadata": {"name": "pbw-ev"}, "reason": "R"}), headers=HDRS)
    status = _read("Status", body)
    assert (code, status["reason"]) == (422, "Invalid") and "involvedObject" in status["message"]


def test_a_dry_run_answer_is_never_what_a_later_read_returns(apiserver: ApiServerProcess) -> None:
    path = f"/api/v1/namespaces/{NS}/configmaps"
    code, body = apiserver.raw("POST", path, _pb("ConfigMap", {"metadata": {"name": "pbw-dry"}, "data": {"k": "1"}}),
                               headers=HDRS)
    stored = _read("ConfigMap", body)
    changed = {**stored, "data": {"k": "2"}}
    code, body = apiserver.raw("PUT", f"{path}/pbw-dry?dryRun=All", _pb("ConfigMap", changed), headers=HDRS)
    assert code == 200 and _read("ConfigMap", body)["data"] == {"k": "2"}
    dry_delete = codec.envelope("v1", "DeleteOptions", codec.encode_object(REGISTRY["DeleteOptions"],
                                                                           {"dryRun": ["All"]}))
    code, body = apiserver.raw("DELETE", f"{path}/pbw-dry", dry_delete, headers=HDRS)
    assert code == 200
    for accept in (PB, f"{PB}, application/json"):
        code, body = apiserver.raw("GET", f"{path}/pbw-dry", headers={"Accept": accept})
        assert code == 200 and _read("ConfigMap", body) == stored
    _, body = apiserver.raw("GET", path, headers={"Accept": PB})
    listed = codec.decode_list(REGISTRY["ConfigMap"], codec.open_envelope(body)[2])["items"]
    assert [i for i in listed if i["metadata"]["name"] == "pbw-dry"] == [stored]


def test_a_protobuf_body_nested_thousands_deep_is_a_400(apiserver: ApiServerProcess) -> None:
    """A CRD whose schema nests 3,000 levels (58 KB of protobuf: messages in messages) is refused
    as the JSON decoder refuses deep nesting, never a 500 (the decoder's recursion ran out)."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(3000):
        schema = {"type": "object", "properties": {"a": schema}}
    crd = {"metadata": {"name": "deeps.pb.example.com"},
           "spec": {"group": "pb.example.com", "scope": "Namespaced", "names": {"plural": "deeps", "kind": "Deep"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": schema}}]}}
    msg = codec.message_for("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
    assert msg is not None
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)  # the encoder recurses as deep as the decoder would
    try:
        body = codec.envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", codec.encode_object(msg, crd))
    finally:
        sys.setrecursionlimit(limit)
    code, answer = apiserver.raw("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body,
                                 headers=HDRS)
    status = _read("Status", answer)
    assert (code, status["reason"]) == (400, "BadRequest") and "nested too deeply" in status["message"], status
    assert apiserver.raw("GET", f"/api/v1/namespaces/{NS}/configmaps")[0] == 200
