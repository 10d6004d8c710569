"""`protobuf.typed`: a protobuf body skips the schema check only where the schema says
nothing but the types its message already gave the decoded fields; a required field, an
enum, a type that differs from the message's, or any other rule keeps the check."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controlplane.apiserver.builtins import builtin_resources
from controlplane.apiserver.protobuf import codec, typed
from controlplane.apiserver.resources import ResourceInfo
from controlplane.apiserver.schema import StructuralSchema

INFOS = {i.kind: i for i in builtin_resources()}


def _implied(kind: str) -> bool:
    info = INFOS[kind]
    msg = codec.message_for(info.group, info.version, info.kind)
    assert msg is not None
    return typed.schema_implied(info, msg)


@pytest.mark.parametrize(("kind", "implied"), [
    ("ConfigMap", True), ("Secret", True), ("Namespace", True), ("Lease", True),
    ("Event", False),  # involvedObject is required: decoding never makes a field present
    ("Node", False),  # preserves unknown fields and requires some
    ("CustomResourceDefinition", False),  # enums, minItems, required
])
def test_builtin_kinds(kind: str, implied: bool) -> None:
    assert _implied(kind) is implied


def _with(kind: str, change: Any) -> bool:
    info = INFOS[kind]
    raw = copy.deepcopy(info.schema.schema if info.schema else {})
    change(raw)
    other = ResourceInfo(**{**info.__dict__, "schema": StructuralSchema(raw, kind=kind)})
    msg = codec.message_for(info.group, info.version, info.kind)
    assert msg is not None
    return typed.schema_implied(other, msg)


def test_any_rule_beyond_types_keeps_the_check() -> None:
    assert _with("ConfigMap", lambda s: None)
    assert not _with("ConfigMap", lambda s: s["properties"]["data"]["additionalProperties"].update(maxLength=3))
    assert not _with("ConfigMap", lambda s: s["properties"]["immutable"].update(enum=[True]))
    assert not _with("ConfigMap", lambda s: s.update(required=["data"]))
    assert not _with("ConfigMap", lambda s: s["properties"]["data"].update({"x-kubernetes-validations": []}))
    assert not _with("Lease", lambda s: s["properties"]["spec"]["properties"]["holderIdentity"].update(nullable=True))


def test_a_type_other_than_the_messages_keeps_the_check() -> None:
    assert not _with("ConfigMap", lambda s: s["properties"]["immutable"].update(type="string"))
    assert not _with("ConfigMap", lambda s: s["properties"]["data"].update(type="array"))
    assert not _with("Lease", lambda s: s["properties"]["spec"]["properties"]["leaseDurationSeconds"].update(
        type="string"))
    assert not _with("Namespace", lambda s: s["properties"]["spec"]["properties"]["finalizers"]["items"].update(
        type="integer"))


def test_a_field_the_message_lacks_is_never_decoded_so_never_checked() -> None:
    assert _with("ConfigMap", lambda s: s["properties"].update(extra={"type": "integer", "minimum": 3}))


def test_the_decision_follows_a_new_schema_object() -> None:
    info = INFOS["ConfigMap"]
    msg = codec.message_for("", "v1", "ConfigMap")
    assert msg is not None and typed.schema_implied(info, msg)
    raw = copy.deepcopy(info.schema.schema if info.schema else {})
    raw["required"] = ["data"]
    old = info.schema
    try:
        info.schema = StructuralSchema(raw, kind="ConfigMap")
        assert not typed.schema_implied(info, msg)
    finally:
        info.schema = old
    assert typed.schema_implied(info, msg)
