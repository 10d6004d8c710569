"""JSON merge patch, JSON patch and strategic merge patch semantics."""

from __future__ import annotations

import pytest

from controlplane.apiserver.errors import ApiError
from controlplane.apiserver.patch import (
    MAX_COPY_BYTES,
    MAX_JSON_PATCH_OPERATIONS,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
        ({"a": {"b": "c"}}, {"a": [1]}, {"a": [1]}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
    ids=["replace", "add", "remove", "nested", "list-replaced", "type-change", "null-in-new"],
)
def test_merge_patch_rfc7386(target: dict, patch: dict, expected: dict) -> None:
    assert merge_patch(target, patch) == expected


def test_json_patch_operations_and_test_failure() -> None:
    doc = {"spec": {"cpu": {"cores": 1}, "disks": ["a"]}}
    out = json_patch(doc, [
        {"op": "replace", "path": "/spec/cpu/cores", "value": 2},
        {"op": "add", "path": "/spec/disks/-", "value": "b"},
        {"op": "copy", "from": "/spec/cpu", "path": "/spec/cpu2"},
        {"op": "remove", "path": "/spec/cpu2/cores"},
    ])
    assert out == {"spec": {"cpu": {"cores": 2}, "disks": ["a", "b"], "cpu2": {}}}
    assert doc["spec"]["cpu"]["cores"] == 1, "the original must not change"
    with pytest.raises(ApiError) as err:
        json_patch(doc, [{"op": "test", "path": "/spec/cpu/cores", "value": 5}])
    assert err.value.code == 422
    with pytest.raises(ApiError):
        json_patch(doc, [{"op": "remove", "path": "/nope"}])


@pytest.mark.parametrize("ops", [
    [{"op": "copy", "from": "/data", "path": "/data/x/y"}],
    [{"op": "add", "path": "/data/x/y", "value": 1}],
    [{"op": "test", "path": "/data/pw", "value": "guess"}],
    [{"op": "replace", "path": "/data/pw/0", "value": "a"}],
    [{"op": "add", "path": "/metadata/labels", "value": {}}, {"op": "move", "from": "/data/no", "path": "/x"}],
], ids=["copy-into-missing", "add-under-missing", "test-failed", "into-a-string", "second-op"])
def test_json_patch_errors_name_the_operation_never_the_values(ops: list[dict]) -> None:
    """A user may patch a Secret without the right to read it: the message must not quote it."""
    secret = {"metadata": {"name": "s"}, "data": {"pw": "c2VjcmV0LXZhbHVl", "k": "a2V5"}}
    with pytest.raises(ApiError) as err:
        json_patch(secret, ops)
    assert err.value.code == 422
    assert "c2VjcmV0LXZhbHVl" not in err.value.message and "a2V5" not in err.value.message, err.value.message
    index = len(ops) - 1
    assert f"json patch operation {index} (op \"{ops[index]['op']}\"" in err.value.message, err.value.message
    assert f'path \"{ops[index]["path"]}\"' in err.value.message


def test_json_patch_malformed_operation_says_what_is_wrong() -> None:
    with pytest.raises(ApiError) as err:
        json_patch({"a": 1}, [{"op": "frobnicate", "path": "/a"}])
    assert err.value.code == 422 and "frobnicate" in err.value.message, err.value.message


KEYS = {"status.conditions": "type", "metadata.finalizers": "", "metadata.ownerReferences": "uid"}


def test_copies_that_double_the_object_stop_at_the_copy_limit() -> None:
    """Each `copy` of a map into itself doubles it: the operation that would take the copies past
    kube's limit (3 MiB) is refused by its index, before it is made."""
    doc = {"data": {"a": "x" * 1000}}
    ops = [{"op": "copy", "from": "/data", "path": f"/data/k{i}"} for i in range(40)]
    with pytest.raises(ApiError) as err:
        json_patch(doc, ops)
    assert err.value.code == 422
    assert 'json patch operation 11 (op "copy" from "/data" path "/data/k11")' in err.value.message
    assert f"add more than {MAX_COPY_BYTES} bytes" in err.value.message
    assert len(json_patch(doc, ops[:11])["data"]) == 12  # under the limit, copies apply


def test_a_patch_of_more_operations_than_kube_takes_is_413() -> None:
    ops = [{"op": "test", "path": "/a", "value": 1}] * (MAX_JSON_PATCH_OPERATIONS + 1)
    with pytest.raises(ApiError) as err:
        json_patch({"a": 1}, ops)
    assert err.value.code == 413 and f"is {MAX_JSON_PATCH_OPERATIONS}, got {MAX_JSON_PATCH_OPERATIONS + 1}" in err.value.message
    assert json_patch({"a": 1}, ops[:MAX_JSON_PATCH_OPERATIONS]) == {"a": 1}


def test_strategic_merge_patch_merges_lists_by_key() -> None:
    node = {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "KVM", "status": "True"}]},
            "metadata": {"finalizers": ["a"]}}
    out = strategic_merge_patch(node, {"status": {"conditions": [{"type": "Ready", "status": "True"},
                                                                  {"type": "Disk", "status": "True"}]},
                                       "metadata": {"finalizers": ["b", "a"]}}, KEYS)
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"}, {"type": "KVM", "status": "True"},
                                           {"type": "Disk", "status": "True"}]
    assert out["metadata"]["finalizers"] == ["a", "b"]


def test_strategic_merge_patch_directives() -> None:
    obj = {"status": {"conditions": [{"type": "Ready"}, {"type": "KVM"}]}, "data": {"a": "1", "b": "2"},
           "metadata": {"finalizers": ["x", "y"]}}
    out = strategic_merge_patch(obj, {"status": {"conditions": [{"type": "KVM", "$patch": "delete"}]}}, KEYS)
    assert out["status"]["conditions"] == [{"type": "Ready"}]
    out = strategic_merge_patch(obj, {"data": {"$patch": "replace", "c": "3"}}, KEYS)
    assert out["data"] == {"c": "3"}
    out = strategic_merge_patch(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}, KEYS)
    assert out["metadata"]["finalizers"] == ["y"]
    out = strategic_merge_patch(obj, {"data": {"a": None}}, KEYS)
    assert out["data"] == {"b": "2"}
    out = strategic_merge_patch(obj, {"$retainKeys": ["data"], "data": {"a": "9"}}, KEYS)
    assert out == {"data": {"a": "9", "b": "2"}}


def test_strategic_merge_patch_of_a_list_with_repeated_and_odd_items() -> None:
    """What the indexes must keep of the scans they replaced: the first item with a key is the
    one merged or deleted, a deleted key given again is added at the end, items without the key
    match one another, items that are no objects stay, and primitive lists compare as Python's
    `==` does (`1 == 1.0 == True`)."""
    obj = {"status": {"conditions": [{"type": "A", "n": 1}, "odd", {"type": "A", "n": 2}, {"n": 3}]},
           "metadata": {"finalizers": [1, "x", {"o": 1}]}}
    out = strategic_merge_patch(obj, {"status": {"conditions": [
        {"type": "A", "n": 9}, {"type": "A", "$patch": "delete"}, {"type": "A", "n": 7}, {"m": 4}, "skipped"]},
        "metadata": {"finalizers": [True, 1.0, "y", {"o": 1}, {"o": 2}]}}, KEYS)
    assert out["status"]["conditions"] == ["odd", {"type": "A", "n": 7}, {"n": 3, "m": 4}]
    assert out["metadata"]["finalizers"] == [1, "x", {"o": 1}, "y", {"o": 2}]


def test_strategic_merge_patch_order_and_deletions_of_long_lists() -> None:
    """A 3 MiB body holds about 150,000 finalizers: merged, ordered and deleted by index (the
    scans took minutes for such a list, holding a worker thread and the interpreter lock)."""
    names = [f"example.com/f{i}" for i in range(100_000)]
    out = strategic_merge_patch({"metadata": {"finalizers": ["kept"]}}, {"metadata": {
        "finalizers": names, "$setElementOrder/finalizers": names[::-1],
        "$deleteFromPrimitiveList/finalizers": names[::2]}}, KEYS)
    assert out["metadata"]["finalizers"] == names[::-2] + ["kept"]
    refs = [{"uid": str(i), "name": "a"} for i in range(100_000)]
    out = strategic_merge_patch({"metadata": {"ownerReferences": refs}}, {"metadata": {"ownerReferences": [
        {"uid": "99999", "name": "b"}, {"uid": "5", "$patch": "delete"}, {"uid": "new", "name": "c"}]}},
        {"metadata.ownerReferences": "uid"})
    got = out["metadata"]["ownerReferences"]
    assert len(got) == 100_000 and got[-2] == {"uid": "99999", "name": "b"} and got[-1]["uid"] == "new"
    assert {"uid": "5", "name": "a"} not in got
