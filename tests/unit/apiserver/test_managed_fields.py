"""Field sets, FieldsV1, merge, removal and conflicts of server-side apply, without a
server: the rules structured-merge-diff applies, one table per rule."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver.apply import fieldsets, managed, merge, shapes
from controlplane.apiserver.apply.fieldsets import FieldSet
from controlplane.apiserver.errors import ApiError

_S: dict[str, Any] = {"type": "string"}
SCHEMA = shapes.shape_of("Thing", {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {
        "size": {"type": "integer"}, "mode": _S,
        "disks": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "properties": {"name": _S, "size": _S, "bus": _S}}},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"],
                  "items": {"type": "object", "properties": {"port": {"type": "integer"}, "protocol": _S}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": _S},
        "args": {"type": "array", "items": _S},
        "selector": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": _S},
        "extra": {"type": "object", "additionalProperties": _S},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    }},
    "status": {"type": "object", "properties": {"phase": _S}},
}}, builtin=False)


def paths(*dotted: str) -> FieldSet:
    """Paths written as `f:spec/f:size` strings."""
    return {tuple(d.split("/")) for d in dotted}


@pytest.mark.parametrize(("config", "expected"), [
    ({"spec": {"size": 1}}, paths("f:spec/f:size")),
    ({"spec": {"disks": [{"name": "a", "size": "1Gi"}]}},
     paths('f:spec/f:disks/k:{"name":"a"}', 'f:spec/f:disks/k:{"name":"a"}/f:name',
           'f:spec/f:disks/k:{"name":"a"}/f:size')),
    ({"spec": {"ports": [{"port": 80, "protocol": "TCP"}]}},
     paths('f:spec/f:ports/k:{"port":80,"protocol":"TCP"}', 'f:spec/f:ports/k:{"port":80,"protocol":"TCP"}/f:port',
           'f:spec/f:ports/k:{"port":80,"protocol":"TCP"}/f:protocol')),
    ({"spec": {"tags": ["x", "y"]}}, paths('f:spec/f:tags/v:"x"', 'f:spec/f:tags/v:"y"')),
    ({"spec": {"args": ["x", "y"]}}, paths("f:spec/f:args")),
    ({"spec": {"selector": {"a": "b"}}}, paths("f:spec/f:selector")),
    ({"spec": {"extra": {"a": "b"}}}, paths("f:spec/f:extra/f:a")),
    ({"spec": {"free": {"deep": {"x": 1}}}}, paths("f:spec/f:free/f:deep", "f:spec/f:free/f:deep/f:x")),
    ({"spec": {"mode": None, "extra": {}}}, paths("f:spec/f:mode", "f:spec/f:extra")),
    ({"metadata": {"labels": {"app": "web"}, "finalizers": ["f1"]}},
     paths("f:metadata/f:labels/f:app", 'f:metadata/f:finalizers/v:"f1"')),
], ids=["leaf", "map-list", "map-list-two-keys", "set-list", "atomic-list", "atomic-map", "granular-map",
        "preserve-unknown", "null-and-empty", "metadata"])
def test_applied_field_set(config: dict[str, Any], expected: FieldSet) -> None:
    assert fieldsets.to_set(config, SCHEMA) == expected


@pytest.mark.parametrize(("old", "new", "added", "modified", "removed"), [
    ({}, {"spec": {"size": 1}}, paths("f:spec", "f:spec/f:size"), set(), set()),
    ({"spec": {"size": 1}}, {"spec": {"size": 2}}, set(), paths("f:spec/f:size"), set()),
    ({"spec": {"size": 1, "mode": "a"}}, {"spec": {"size": 1}}, set(), set(), paths("f:spec/f:mode")),
    ({"spec": {"size": 1}}, {"spec": {"size": 1.0}}, set(), paths("f:spec/f:size"), set()),
    ({"spec": {"disks": [{"name": "a"}]}}, {"spec": {"disks": [{"name": "a"}, {"name": "b", "bus": "x"}]}},
     paths('f:spec/f:disks/k:{"name":"b"}', 'f:spec/f:disks/k:{"name":"b"}/f:name',
           'f:spec/f:disks/k:{"name":"b"}/f:bus'), set(), set()),
    ({"spec": {"args": ["a"]}}, {"spec": {"args": ["a", "b"]}}, set(), paths("f:spec/f:args"), set()),
    ({"metadata": {}}, {"metadata": {"labels": {"a": "b"}}},
     paths("f:metadata/f:labels", "f:metadata/f:labels/f:a"), set(), set()),
    ({"spec": {"size": 1, "mode": "a"}, "status": {"x": {"y": [1]}}},
     {"spec": {"mode": "a", "size": 1}, "status": {"x": {"y": [1]}}}, set(), set(), set()),
    ({"spec": {"size": 1}, "status": {"x": {"y": [1]}}}, {"spec": {"size": True}, "status": {"x": {"y": [1]}}},
     set(), paths("f:spec/f:size"), set()),
], ids=["new-map", "changed-leaf", "removed-leaf", "int-vs-float", "new-list-item", "atomic-list", "new-labels",
        "unchanged-in-another-order", "equal-in-python-not-in-json"])
def test_compare(old: Any, new: Any, added: FieldSet, modified: FieldSet, removed: FieldSet) -> None:
    assert fieldsets.compare(old, new, SCHEMA) == (added, modified, removed)


def test_fields_v1_round_trip_and_dot_for_owned_parents() -> None:
    owned = paths("f:data", "f:data/f:a", 'f:spec/f:disks/k:{"name":"a"}', 'f:spec/f:disks/k:{"name":"a"}/f:size')
    doc = fieldsets.to_fields_v1(owned)
    assert doc == {"f:data": {".": {}, "f:a": {}},
                   "f:spec": {"f:disks": {'k:{"name":"a"}': {".": {}, "f:size": {}}}}}
    assert fieldsets.from_fields_v1(doc) == owned


@pytest.mark.parametrize("bad", [[], {"x:y": {}}, {"f:a": "no"}], ids=["list", "unknown-prefix", "not-object"])
def test_fields_v1_malformed(bad: Any) -> None:
    with pytest.raises(ValueError):
        fieldsets.from_fields_v1(bad)


@pytest.mark.parametrize(("path", "text"), [
    (("f:spec", "f:size"), ".spec.size"),
    (("f:spec", "f:disks", 'k:{"name":"a"}', "f:size"), '.spec.disks[name="a"].size'),
    (("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}'), '.spec.ports[port=80,protocol="TCP"]'),
    (("f:spec", "f:tags", 'v:"x"'), '.spec.tags[="x"]'),
    (("f:spec", "f:args", "i:0"), ".spec.args[0]"),
])
def test_path_string(path: tuple[str, ...], text: str) -> None:
    assert fieldsets.path_string(path) == text


@pytest.mark.parametrize(("live", "config", "expected"), [
    ({"spec": {"size": 1, "mode": "a"}}, {"spec": {"size": 2}}, {"spec": {"size": 2, "mode": "a"}}),
    ({"spec": {"disks": [{"name": "a", "size": "1"}, {"name": "b"}]}},
     {"spec": {"disks": [{"name": "b", "bus": "x"}, {"name": "c"}]}},
     {"spec": {"disks": [{"name": "a", "size": "1"}, {"name": "b", "bus": "x"}, {"name": "c"}]}}),
    ({"spec": {"tags": ["a", "b"]}}, {"spec": {"tags": ["c", "a"]}}, {"spec": {"tags": ["a", "b", "c"]}}),
    ({"spec": {"args": ["a", "b"]}}, {"spec": {"args": ["c"]}}, {"spec": {"args": ["c"]}}),
    ({"spec": {"selector": {"a": "1"}}}, {"spec": {"selector": {"b": "2"}}}, {"spec": {"selector": {"b": "2"}}}),
    ({"spec": {"extra": {"a": "1"}}}, {"spec": {"extra": {"b": "2"}}}, {"spec": {"extra": {"a": "1", "b": "2"}}}),
], ids=["leaf", "map-list", "set-list", "atomic-list", "atomic-map", "granular-map"])
def test_merge(live: Any, config: Any, expected: Any) -> None:
    assert merge.merge(live, config, SCHEMA) == expected


def test_remove_takes_emptied_declared_parents_unless_owned() -> None:
    obj = {"spec": {"size": 1, "extra": {"a": "1"}, "disks": [{"name": "a"}, {"name": "b"}]}}
    merge.remove(obj, paths("f:spec/f:extra/f:a", 'f:spec/f:disks/k:{"name":"a"}'), SCHEMA,
                 still_owned=paths("f:spec/f:size"))
    assert obj == {"spec": {"size": 1, "disks": [{"name": "b"}]}}
    obj = {"spec": {"extra": {"a": "1"}}}
    merge.remove(obj, paths("f:spec/f:extra/f:a"), SCHEMA, still_owned=paths("f:spec/f:extra"))
    assert obj == {"spec": {"extra": {}}}


def test_remove_goes_through_a_list_by_its_items_names_and_drops_them_together() -> None:
    """Paths into the items of one list, removed in any order: each item found by its name (the
    items dropped before it do not move it), an item's fields going while the item stays, an
    item whose every field goes dropped with the list left empty only if nobody owns it."""
    obj = {"spec": {"disks": [{"name": n, "size": "1Gi", "bus": "virtio"} for n in "abcd"], "tags": ["x", "y"]}}
    merge.remove(obj, paths('f:spec/f:disks/k:{"name":"a"}', 'f:spec/f:disks/k:{"name":"c"}/f:size',
                            'f:spec/f:disks/k:{"name":"b"}', 'f:spec/f:disks/k:{"name":"d"}/f:bus',
                            'f:spec/f:disks/k:{"name":"c"}/f:bus', 'f:spec/f:tags/v:"x"', 'f:spec/f:tags/v:"y"'),
                 SCHEMA, still_owned=paths("f:spec/f:size"))
    assert obj == {"spec": {"disks": [{"name": "c"}, {"name": "d", "size": "1Gi"}]}}


def test_an_applier_dropping_every_entry_of_a_long_set_removes_them_all() -> None:
    """100,000 tags no longer applied (a 3 MiB body holds that many): found by index and dropped
    in one pass (a scan and a shift each took 11 s for 8,000)."""
    tags = [f"tag-{i}" for i in range(100_000)]
    obj, entries = do_apply([], {"spec": {"size": 1}}, {"spec": {"size": 1, "tags": tags}})
    assert obj["spec"]["tags"] == tags
    obj, entries = do_apply(entries, obj, {"spec": {"size": 1, "tags": tags[:3]}})
    assert obj == {"spec": {"size": 1, "tags": tags[:3]}}
    assert len([p for p in owners(entries)["me"] if p[:2] == ("f:spec", "f:tags")]) == 3


def entry(name: str, operation: str, *dotted: str) -> managed.Entry:
    return managed.Entry(name, operation, "example.dvp.io/v1", "", "2026-01-01T00:00:00Z", paths(*dotted))


def do_apply(entries: list[managed.Entry], live: dict[str, Any], config: dict[str, Any], *,
             manager: str = "me", force: bool = False) -> tuple[dict[str, Any], list[managed.Entry]]:
    return managed.apply(entries, live, config, SCHEMA, manager=manager, api_version="example.dvp.io/v1",
                         subresource="", force=force, ignored=(("f:status",),))


def owners(entries: list[managed.Entry]) -> dict[str, FieldSet]:
    return {e.manager: e.fields for e in entries}


def test_apply_owns_what_it_applied_and_shares_equal_values() -> None:
    entries = [entry("other", "Apply", "f:spec/f:size")]
    obj, entries = do_apply(entries, {"spec": {"size": 1}}, {"spec": {"size": 1, "mode": "a"}})
    assert obj == {"spec": {"size": 1, "mode": "a"}}
    assert owners(entries) == {"other": paths("f:spec/f:size"), "me": paths("f:spec/f:size", "f:spec/f:mode")}


@pytest.mark.parametrize(("others", "message"), [
    ([entry("other", "Apply", "f:spec/f:size")], 'Apply failed with 1 conflict: conflict with "other": .spec.size'),
    ([entry("kubectl-edit", "Update", "f:spec/f:size")],
     'Apply failed with 1 conflict: conflict with "kubectl-edit" using example.dvp.io/v1: .spec.size'),
    ([entry("b", "Apply", "f:spec/f:size"), entry("a", "Apply", "f:spec/f:mode")],
     'Apply failed with 2 conflicts: conflicts with "a":\n- .spec.mode\nconflicts with "b":\n- .spec.size'),
], ids=["applier", "updater", "two-managers"])
def test_apply_conflicts_name_managers_and_fields(others: list[managed.Entry], message: str) -> None:
    live = {"spec": {"size": 1, "mode": "a"}}
    with pytest.raises(ApiError) as err:
        do_apply(others, live, {"spec": {"size": 2, "mode": "b"}})
    assert err.value.code == 409 and err.value.reason == "Conflict" and err.value.message == message
    causes = err.value.details["causes"]
    assert {c["field"] for c in causes} <= {".spec.size", ".spec.mode"}
    assert all(c["reason"] == "FieldManagerConflict" and c["message"].startswith("conflict with ") for c in causes)
    assert live == {"spec": {"size": 1, "mode": "a"}}


def test_force_takes_ownership() -> None:
    entries = [entry("other", "Apply", "f:spec/f:size", "f:spec/f:mode")]
    obj, entries = do_apply(entries, {"spec": {"size": 1, "mode": "a"}}, {"spec": {"size": 2}}, force=True)
    assert obj["spec"] == {"size": 2, "mode": "a"}
    assert owners(entries) == {"other": paths("f:spec/f:mode"), "me": paths("f:spec/f:size")}


@pytest.mark.parametrize(("others", "kept"), [
    ([], {"size": 1}),
    ([entry("other", "Apply", "f:spec/f:mode")], {"size": 1, "mode": "a"}),
    ([entry("ctl", "Update", "f:spec/f:mode")], {"size": 1, "mode": "a"}),
], ids=["nobody-else", "another-applier", "an-updater"])
def test_fields_no_longer_applied_are_removed_unless_owned(others: list[managed.Entry], kept: dict[str, Any]) -> None:
    entries = [*others, entry("me", "Apply", "f:spec/f:size", "f:spec/f:mode")]
    obj, entries = do_apply(entries, {"spec": {"size": 1, "mode": "a"}}, {"spec": {"size": 1}})
    assert obj["spec"] == kept
    assert owners(entries)["me"] == paths("f:spec/f:size")


def test_parent_owned_by_the_applier_stays_while_its_fields_are_applied() -> None:
    """An entry taken over from an updater owns `spec` itself (`.` in FieldsV1): re-applying
    must not remove the parent of the fields it still applies."""
    mine = entry("me", "Apply", "f:spec", "f:spec/f:size", "f:spec/f:mode")
    obj, _ = do_apply([mine], {"spec": {"size": 1, "mode": "a"}}, {"spec": {"size": 1}})
    assert obj == {"spec": {"size": 1}}


def test_map_list_item_removed_when_no_longer_applied() -> None:
    live = {"spec": {"disks": [{"name": "a"}, {"name": "b"}]}}
    mine = entry("me", "Apply", 'f:spec/f:disks/k:{"name":"a"}', 'f:spec/f:disks/k:{"name":"a"}/f:name',
                 'f:spec/f:disks/k:{"name":"b"}', 'f:spec/f:disks/k:{"name":"b"}/f:name')
    obj, _ = do_apply([mine], live, {"spec": {"disks": [{"name": "b"}]}})
    assert obj["spec"]["disks"] == [{"name": "b"}]


def test_update_takes_changed_fields_from_others_and_status_is_ignored() -> None:
    entries = [entry("applier", "Apply", "f:spec/f:size", "f:spec/f:mode")]
    entries = managed.record_update(entries, {"spec": {"size": 1, "mode": "a"}},
                                    {"spec": {"size": 5, "mode": "a"}, "status": {"phase": "x"}}, SCHEMA,
                                    manager="kubectl-edit", api_version="example.dvp.io/v1", subresource="",
                                    ignored=(("f:status",),))
    assert owners(entries) == {"applier": paths("f:spec/f:mode"), "kubectl-edit": paths("f:spec/f:size")}
    encoded = managed.encode(entries)
    assert [e["operation"] for e in encoded] == ["Apply", "Update"]
    assert encoded[1]["fieldsType"] == "FieldsV1" and encoded[1]["fieldsV1"] == {"f:spec": {"f:size": {}}}
    assert [(e.manager, e.fields) for e in managed.decode(encoded) or []] == [(e.manager, e.fields) for e in
                                                                              sorted(entries, key=managed._sort_key)]


@pytest.mark.parametrize(("raw", "ok"), [
    (None, True), ([{}], True), ("x", False), ([{"operation": "Delete"}], False),
    ([{"operation": "Update", "fieldsType": "FieldsV2"}], False), ([{"operation": "Apply", "fieldsV1": []}], False),
], ids=["absent", "clear", "not-list", "bad-operation", "bad-type", "bad-fields"])
def test_decode_managed_fields(raw: Any, ok: bool) -> None:
    if ok:
        managed.decode(raw)
    else:
        with pytest.raises(ApiError) as err:
            managed.decode(raw)
        assert err.value.code == 400 and "managedFields" in err.value.message


@pytest.mark.parametrize(("manager", "required", "fields"), [
    ("", True, ["fieldManager"]), ("", False, []), ("x" * 129, False, ["fieldManager"]), ("a\nb", False, ["fieldManager"]),
    ("kubectl", True, []),
])
def test_validate_manager(manager: str, required: bool, fields: list[str]) -> None:
    assert [c.field for c in managed.validate_manager(manager, required=required)] == fields


@pytest.mark.parametrize(("agent", "manager"), [
    ("kubectl/v1.20.15 (linux/amd64) kubernetes/8f1e5bf", "kubectl"), ("OpenAPI-Generator/30.1.0/python",
                                                                      "OpenAPI-Generator"), ("", "")])
def test_manager_from_user_agent(agent: str, manager: str) -> None:
    assert managed.manager_from_user_agent(agent) == manager


def test_builtin_service_ports_are_keyed_by_port_and_defaulted_protocol() -> None:
    service = shapes.shape_of("Service", {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "ports": {"type": "array", "items": {"type": "object", "properties": {
            "port": {"type": "integer"}, "protocol": _S, "name": _S}}}}}}}, builtin=True)
    config = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 53, "protocol": "UDP"}]}}
    assert fieldsets.to_set(config, service) >= paths('f:spec/f:ports/k:{"port":80,"protocol":"TCP"}',
                                                      'f:spec/f:ports/k:{"port":53,"protocol":"UDP"}')
    live = {"spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "web"}]}}
    assert merge.merge(live, config, service)["spec"]["ports"] == [
        {"port": 80, "protocol": "TCP", "name": "http"}, {"port": 53, "protocol": "UDP"}]


def test_map_list_item_without_its_key_is_named_by_position() -> None:
    assert fieldsets.to_set({"spec": {"disks": [{"size": "1"}]}}, SCHEMA) >= paths("f:spec/f:disks/i:0")


def test_more_than_ten_updaters_fold_the_oldest_into_ancient_changes() -> None:
    entries: list[managed.Entry] = []
    obj: dict[str, Any] = {"spec": {"extra": {}}}
    for i in range(12):
        new = {"spec": {"extra": {**obj["spec"]["extra"], f"k{i}": "v"}}}
        entries = managed.record_update(entries, obj, new, SCHEMA, manager=f"m{i:02d}",
                                        api_version="example.dvp.io/v1", subresource="", ignored=())
        for e in entries:  # distinct times, oldest first
            e.time = e.time if e.manager == "ancient-changes" else f"2026-01-01T00:00:{int(e.manager[1:]):02d}Z"
        obj = new
    names = sorted(e.manager for e in entries)
    assert len(entries) == 10 and names[0] == "ancient-changes" and "m00" not in names and "m11" in names
    ancient = next(e for e in entries if e.manager == "ancient-changes")
    assert ancient.fields >= paths("f:spec/f:extra/f:k0", "f:spec/f:extra/f:k1", "f:spec/f:extra/f:k2")
