"""The protobuf codec of the built-in kinds: every kind round-trips through its message
without loss, the bytes carry the published field numbers, the envelope and watch framing
are kube-apiserver's, Go's zero-value rules hold, unknown fields are skipped, and garbage
is refused with an error naming where it is — never an exception of another type."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import pytest
import yaml

from controlplane.apiserver import errors
from controlplane.apiserver.protobuf import codec, negotiation, wire
from controlplane.apiserver.protobuf.scalars import format_time, parse_time
from controlplane.apiserver.protobuf.schema import REGISTRY
from tests.support.protobuf_samples import KINDS


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_round_trips_without_loss(kind: str) -> None:
    msg = REGISTRY[kind]
    raw = codec.encode_object(msg, KINDS[kind])
    assert codec.decode_object(msg, raw) == KINDS[kind]
    assert codec.encode_object(msg, codec.decode_object(msg, raw)) == raw


def test_every_served_builtin_kind_has_a_message() -> None:
    from controlplane.apiserver.builtins import builtin_resources

    assert [i.kind for i in builtin_resources() if codec.message_for(i.group, i.version, i.kind) is None] == []


CRD_FILES = sorted((Path(__file__).resolve().parents[3] / "controlplane" / "api" / "crds").glob("*.yaml"))


@pytest.mark.parametrize("path", CRD_FILES, ids=[p.stem for p in CRD_FILES])
def test_the_bundled_crds_round_trip_without_loss(path: Path) -> None:
    crd = yaml.safe_load(path.read_text())
    crd.pop("apiVersion")
    crd.pop("kind")
    msg = REGISTRY["CustomResourceDefinition"]
    assert codec.decode_object(msg, codec.encode_object(msg, crd)) == crd


def test_json_schema_unions_doubles_and_json_values() -> None:
    schema = {
        "type": "object", "$ref": "#/x", "default": {"a": [1, None]}, "example": False, "maximum": 10,
        "minimum": -0.5, "multipleOf": 0.01, "maxLength": 0, "enum": ["a", 1, {"b": True}],
        "items": [{"type": "string"}, {"type": "integer"}], "additionalProperties": False,
        "additionalItems": {"type": "string"}, "dependencies": {"a": ["b", "c"], "d": {"required": ["e"]}},
        "properties": {"n": {"type": "integer", "x-kubernetes-int-or-string": True, "nullable": True,
                             "items": {"type": "string"}, "additionalProperties": True}},
        "x-kubernetes-preserve-unknown-fields": False, "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "x-kubernetes-validations": [{"rule": "self.a > 0", "message": "m", "optionalOldSelf": False}],
    }
    msg = REGISTRY["JSONSchemaProps"]
    assert codec.decode_object(msg, codec.encode_object(msg, schema)) == schema
    # maximum is a double (field 9, fixed64), the way Go writes float64
    assert codec.encode_object(msg, {"maximum": 1.5}) == b"\x49" + struct.pack("<d", 1.5)


def test_field_numbers_on_the_wire() -> None:
    ns = codec.encode_object(REGISTRY["Namespace"], {"metadata": {"name": "foo"}, "spec": {"finalizers": ["k"]}})
    assert ns == b"\x0a\x05\x0a\x03foo" + b"\x12\x03\x0a\x01k"
    secret = codec.encode_object(REGISTRY["Secret"], {"data": {"a": "Yg=="}, "type": "Opaque", "immutable": False})
    # data is map<string, bytes> field 2 (entry: key 1, value 2 raw bytes), type 3, immutable 5
    assert secret == b"\x12\x06\x0a\x01a\x12\x01b" + b"\x1a\x06Opaque" + b"\x28\x00"
    stamp = codec.encode_object(REGISTRY["ObjectMeta"], {"creationTimestamp": "1970-01-01T00:01:00Z"})
    assert stamp == b"\x42\x02\x08\x3c"  # field 8, Timestamp{seconds=60}
    port = codec.encode_object(REGISTRY["ServicePort"], {"targetPort": "http", "port": 80})
    assert port == b"\x22\x08\x08\x01\x1a\x04http" + b"\x18\x50"


def test_envelope_is_magic_then_runtime_unknown() -> None:
    env = codec.envelope("v1", "ConfigMap", b"\x0a\x00")
    assert env == b"k8s\x00" + b"\x0a\x0f\x0a\x02v1\x12\x09ConfigMap" + b"\x12\x02\x0a\x00" + b"\x1a\x00\x22\x00"
    assert codec.open_envelope(env) == ("v1", "ConfigMap", b"\x0a\x00")


def test_go_zero_values_are_dropped_unless_the_go_field_keeps_them() -> None:
    # a Go client writes every non-pointer field, empty ones included
    meta = b"\x0a\x01n\x12\x00\x22\x00\x2a\x00\x38\x00"  # name, generateName "", selfLink "", uid "", generation 0
    raw = b"\x0a" + bytes([len(meta)]) + meta + b"\x12\x05\x0a\x01a\x12\x00"
    assert codec.decode_object(REGISTRY["ConfigMap"], raw) == {"metadata": {"name": "n"}, "data": {"a": ""}}
    lease = codec.decode_object(REGISTRY["LeaseSpec"], b"\x10\x00\x28\x00")
    assert lease == {"leaseDurationSeconds": 0, "leaseTransitions": 0}


def test_negative_and_wide_integers() -> None:
    msg = REGISTRY["ObjectMeta"]
    obj = {"generation": -5, "deletionGracePeriodSeconds": 2**62}
    raw = codec.encode_object(msg, obj)
    assert len(raw) == 1 + 10 + 1 + 9
    assert codec.decode_object(msg, raw) == obj
    assert codec.decode_object(REGISTRY["EventSeries"], b"\x08" + wire.varint(-1)) == {"count": -1}


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    known = codec.encode_object(REGISTRY["ConfigMap"], {"metadata": {"name": "a"}, "data": {"k": "v"}})
    extra = (wire.key(90, wire.VARINT) + wire.varint(300) + wire.key(91, wire.LENGTH) + b"\x03abc"
             + wire.key(92, wire.FIXED64) + b"\x00" * 8 + wire.key(93, wire.FIXED32) + b"\x00" * 4
             + wire.key(94, wire.START_GROUP) + wire.key(1, wire.VARINT) + b"\x01" + wire.key(94, wire.END_GROUP))
    assert codec.decode_object(REGISTRY["ConfigMap"], extra + known + extra) == {
        "metadata": {"name": "a"}, "data": {"k": "v"}}


def test_values_no_go_client_could_send_are_left_out_when_encoding() -> None:
    raw = codec.encode_object(REGISTRY["ConfigMap"], {
        "metadata": {"name": "a", "labels": "not-a-map", "unknownKey": 1}, "data": None, "extra": {"x": 1},
        "binaryData": {"b": "@@not base64@@"}})
    assert codec.decode_object(REGISTRY["ConfigMap"], raw) == {"metadata": {"name": "a"}}


GARBAGE = [
    pytest.param(b"", "empty body", id="empty"),
    pytest.param(b'{"kind":"ConfigMap"}', "does not appear to be a protobuf message", id="json"),
    pytest.param(b"k8s\x00\x0a\x05\x0a\x02", "Unknown.typeMeta: length 5 runs past the end", id="truncated-envelope"),
    pytest.param(b"k8s\x00\x12\x03\x0a\x09a", "metadata: length 9 runs past the end", id="truncated-metadata"),
    pytest.param(b"k8s\x00\x12\x04\x0a\x02\x08\x01", "metadata.name: wire type 0", id="wrong-wire-type"),
    pytest.param(b"k8s\x00\x12\x09\x0a\x07\x5a\x05\x0a\x01\xff\x12\x00", "metadata.labels: map key is not valid UTF-8",
                 id="bad-utf8-key"),
    pytest.param(b"k8s\x00\x12\x05\x12\x03\x0a\x05a", "data: length 5 runs past the end", id="map-entry-runs-short"),
    pytest.param(b"k8s\x00\x12\x02\x0f\x00", "invalid wire type 7", id="bad-wire-type"),
    pytest.param(b"k8s\x00\x12\x01\x00", "field number 0", id="field-zero"),
    pytest.param(b"k8s\x00\x12\x0b\x0a\x09\x42\x07\x08\xff\xff\xff\xff\xff\xff", "metadata.creationTimestamp",
                 id="truncated-varint"),
    pytest.param(b"k8s\x00\x1a\x04gzip\x12\x00", "contentEncoding", id="content-encoding"),
]


@pytest.mark.parametrize(("body", "problem"), GARBAGE)
def test_garbage_is_refused_naming_the_problem(body: bytes, problem: str) -> None:
    with pytest.raises(codec.DecodeError) as caught:
        _kind = codec.open_envelope(body)
        codec.decode_object(REGISTRY["ConfigMap"], _kind[2])
    assert problem in str(caught.value)


def test_random_bytes_never_raise_anything_but_decode_error() -> None:
    import random

    rnd = random.Random(12)
    good = codec.encode_object(REGISTRY["Node"], KINDS["Node"])
    for _ in range(2000):
        data = bytearray(good)
        for _ in range(rnd.randint(1, 6)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        cut = bytes(data[:rnd.randrange(len(data) + 1)])
        with contextlib.suppress(codec.DecodeError):
            codec.decode_object(REGISTRY["Node"], cut)


def test_lists_carry_list_meta_then_items() -> None:
    items = [codec.encode_object(REGISTRY["ConfigMap"], {"metadata": {"name": f"c{i}"}}) for i in range(3)]
    raw = codec.encode_list({"resourceVersion": "7", "continue": "tok", "remainingItemCount": 0}, items)
    assert raw.startswith(b"\x0a\x0a\x12\x017\x1a\x03tok\x20\x00" + b"\x12")
    decoded = codec.decode_list(REGISTRY["ConfigMap"], raw)
    assert decoded["metadata"] == {"resourceVersion": "7", "continue": "tok", "remainingItemCount": 0}
    assert [i["metadata"]["name"] for i in decoded["items"]] == ["c0", "c1", "c2"]


def test_watch_frames_are_length_prefixed_raw_watch_events() -> None:
    obj = codec.envelope("v1", "ConfigMap", b"\x0a\x03\x0a\x01a")
    frame = codec.watch_frame("ADDED", obj)
    (n,) = struct.unpack(">I", frame[:4])
    assert n == len(frame) - 4 and frame[4:6] == b"\x0a\x05"  # WatchEvent.type first, no envelope around it
    stream = frame + codec.watch_frame("DELETED", obj)
    events, rest = codec.read_frames(stream[:-3])
    assert events == [("ADDED", obj)] and rest == stream[len(frame):-3]
    events, rest = codec.read_frames(stream)
    assert [e[0] for e in events] == ["ADDED", "DELETED"] and rest == b""


def test_status_and_delete_options() -> None:
    status = errors.not_found("configmaps", "", "nope").to_status()
    _, kind, raw = codec.open_envelope(codec.encode_status(status))
    back = codec.decode_object(REGISTRY["Status"], raw)
    assert kind == "Status" and back["code"] == 404 and back["reason"] == "NotFound"
    assert back["details"] == {"name": "nope", "kind": "configmaps"}
    opts = {"propagationPolicy": "Foreground", "preconditions": {"uid": "u", "resourceVersion": "9"},
            "dryRun": ["All"], "gracePeriodSeconds": 0, "orphanDependents": False}
    assert codec.decode_delete_options(codec.encode_object(REGISTRY["DeleteOptions"], opts)) == opts


@pytest.mark.parametrize(("text", "seconds", "nanos"), [
    ("1970-01-01T00:00:00Z", 0, 0), ("2024-05-06T07:08:09Z", 1714979289, 0),
    ("2024-05-06T09:08:09+02:00", 1714979289, 0), ("2024-05-06T07:08:09.5Z", 1714979289, 500_000_000),
    ("1969-12-31T23:59:59Z", -1, 0), ("2024-05-06T07:08:09.123456789Z", 1714979289, 123456789),
])
def test_times(text: str, seconds: int, nanos: int) -> None:
    assert parse_time(text) == (seconds, nanos)


def test_time_formats() -> None:
    assert format_time(1714979289, 0, False) == "2024-05-06T07:08:09Z"
    assert format_time(1714979289, 500_000_000, False) == "2024-05-06T07:08:09.5Z"
    assert format_time(1714979289, 123_456_789, True) == "2024-05-06T07:08:09.123456Z"
    zero_time = wire.length_delimited(b"\x42", b"\x08" + wire.varint(-62135596800))
    assert codec.decode_object(REGISTRY["ObjectMeta"], zero_time + b"\x42\x00") == {}


@pytest.mark.parametrize(("accept", "protobuf", "chosen"), [
    ("", True, negotiation.JSON),
    ("application/vnd.kubernetes.protobuf, application/json", True, negotiation.PROTOBUF),
    ("application/vnd.kubernetes.protobuf, application/json", False, negotiation.JSON),
    ("application/json;q=0.9, application/vnd.kubernetes.protobuf", True, negotiation.PROTOBUF),
    ("application/vnd.kubernetes.protobuf;q=0.5, application/json", True, negotiation.JSON),
    ("*/*", True, negotiation.JSON),
    ("application/*", False, negotiation.JSON),
    ("application/yaml", True, negotiation.YAML),
])
def test_negotiation(accept: str, protobuf: bool, chosen: str) -> None:
    assert negotiation.negotiate(accept, protobuf=protobuf) == chosen


@pytest.mark.parametrize("accept", ["application/vnd.kubernetes.protobuf", "text/html", "application/json;q=0"])
def test_nothing_acceptable_is_406(accept: str) -> None:
    with pytest.raises(errors.ApiError) as caught:
        negotiation.negotiate(accept, protobuf=False)
    assert caught.value.code == 406 and "application/json, application/yaml" in caught.value.message


def test_encoded_cache_keys_on_uid_and_resource_version() -> None:
    cache = codec.EncodedCache(limit=2)
    msg = REGISTRY["ConfigMap"]
    one = {"metadata": {"name": "a", "uid": "u", "resourceVersion": "1"}, "data": {"k": "1"}}
    first = cache.encode(msg, "v1", one)
    assert cache.encode(msg, "v1", {**one, "data": {"k": "changed without a new version"}}) is first
    two = {"metadata": {"name": "a", "uid": "u", "resourceVersion": "2"}, "data": {"k": "2"}}
    assert codec.decode_object(msg, cache.encode(msg, "v1", two))["data"] == {"k": "2"}
    cache.encode(msg, "v1", {"metadata": {"uid": "w", "resourceVersion": "3"}})
    assert cache.encode(msg, "v1", one) is not first  # evicted: the cache is bounded


def test_bookmarks_and_errors_in_a_protobuf_watch() -> None:
    from controlplane.apiserver.builtins import builtin_resources
    from controlplane.apiserver.protobuf.http import ProtobufAnswers

    info = next(i for i in builtin_resources() if i.kind == "ConfigMap")
    answers = ProtobufAnswers(REGISTRY["ConfigMap"], info)
    mark = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": "12"}}
    gone = errors.gone("too old resource version: 1 (12)").to_status()
    events, rest = codec.read_frames(answers.frame("BOOKMARK", mark) + answers.frame("ERROR", gone))
    assert rest == b"" and [e[0] for e in events] == ["BOOKMARK", "ERROR"]
    _, kind, raw = codec.open_envelope(events[0][1])
    assert kind == "ConfigMap" and codec.decode_object(REGISTRY["ConfigMap"], raw) == {
        "metadata": {"resourceVersion": "12"}}
    _, kind, raw = codec.open_envelope(events[1][1])
    assert kind == "Status" and codec.decode_object(REGISTRY["Status"], raw)["code"] == 410
