"""The specialised encoders of `protobuf/encoding.py` write exactly what the general rules
say: string maps with entries of any length (one-byte and longer lengths), values that are
not strings, repeated times converted once and still right after the memo fills, and
time texts that are not times left out as every wrong-shaped value is."""

from __future__ import annotations

from controlplane.apiserver.protobuf import codec, encoding, wire
from controlplane.apiserver.protobuf.schema import REGISTRY

CM = REGISTRY["ConfigMap"]


def _entry(key: bytes, value: bytes) -> bytes:
    inner = wire.length_delimited(b"\x0a", key) + wire.length_delimited(b"\x12", value)
    return wire.length_delimited(b"\x12", inner)  # ConfigMap.data is field 2


def test_string_map_entries_of_every_length() -> None:
    data = {"k": "v", "": "", "long": "x" * 200, "k" * 130: "y", "edge": "z" * 119, "edge2": "z" * 120}
    raw = encoding.encode(CM, {"data": data})
    assert raw == b"".join(_entry(k.encode(), v.encode()) for k, v in data.items())
    assert codec.decode_object(CM, raw) == {"data": data}


def test_string_map_values_that_are_not_strings_are_written_as_their_json_text() -> None:
    raw = encoding.encode(CM, {"data": {"n": 5, "b": True, "skip": None}})
    assert codec.decode_object(CM, raw) == {"data": {"n": "5", "b": "true"}}


def test_repeated_times_convert_once_and_stay_right() -> None:
    ns = REGISTRY["Namespace"]
    for i in range(5000):  # past the memo's bound: it is cleared, not wrong
        text = f"2024-05-06T{i // 3600:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z"
        obj = {"metadata": {"name": "a", "creationTimestamp": text}}
        assert codec.decode_object(ns, encoding.encode(ns, obj)) == obj
    again = {"metadata": {"name": "a", "creationTimestamp": "2024-05-06T07:00:00Z"}}
    assert encoding.encode(ns, again) == encoding.encode(ns, again)


def test_a_time_that_is_not_a_time_is_left_out() -> None:
    ns = REGISTRY["Namespace"]
    raw = encoding.encode(ns, {"metadata": {"name": "a", "creationTimestamp": "yesterday"}})
    assert codec.decode_object(ns, raw) == {"metadata": {"name": "a"}}


def test_a_list_joined_once_is_the_list_encoded_layer_by_layer() -> None:
    cache = codec.EncodedCache()
    objs = [{"metadata": {"name": f"cm-{i}", "uid": f"u{i}", "resourceVersion": str(i)}, "data": {"k": "v" * i}}
            for i in range(0, 400, 7)] + [{"metadata": {"name": "no-uid"}}]
    meta = {"resourceVersion": "9", "continue": "tok"}
    layered = codec.envelope("v1", "ConfigMapList", codec.encode_list(meta, cache.encode_many(CM, "v1", objs)))
    assert codec.envelope_parts("v1", "ConfigMapList", cache.list_parts(CM, meta, "v1", objs)) == layered
    assert codec.envelope_parts("v1", "ConfigMapList", cache.list_parts(CM, meta, "v1", [])) == \
        codec.envelope("v1", "ConfigMapList", codec.encode_list(meta, []))
    api_version, kind, raw = codec.open_envelope(layered)
    assert (api_version, kind) == ("v1", "ConfigMapList")
    assert codec.decode_list(CM, raw)["items"] == objs
