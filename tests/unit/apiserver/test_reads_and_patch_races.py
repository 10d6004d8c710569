"""Reads pinned to a revision (resourceVersionMatch=Exact from history, 410 once compacted, 504 for a
future revision), `limit` parsing, and JSON patches whose `test` races with another writer:
retried on the conflict, 422 only when the test really fails."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver import read_options
from controlplane.apiserver.datastore import Stored
from controlplane.apiserver.errors import ApiError

from .conftest import Api
from .test_validation import widget

JSON_PATCH = "application/json-patch+json"


@pytest.mark.parametrize(("raw", "expected"), [("", 0), ("5", 5), ("0", 0), ("-1", 0), ("-50", 0)],
                         ids=["unset", "five", "zero", "minus-one", "negative"])
def test_limit_zero_or_negative_means_no_limit(raw: str, expected: int) -> None:
    assert read_options.parse_limit({"limit": raw}) == expected


def test_limit_garbage_is_a_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        read_options.parse_limit({"limit": "ten"})
    assert err.value.code == 400 and "limit" in err.value.message


async def test_exact_reads_rebuild_past_revisions(api: Api) -> None:
    first = await api.service.create(api.widgets, "default", widget("a", size=1))
    await api.service.patch(api.widgets, "default", "a", "application/merge-patch+json", {"spec": {"size": 2}})
    await api.service.create(api.widgets, "default", widget("b"))
    key, res = "default/a", api.widgets.storage_resource
    old = read_options.object_at(api.store, res, key, first.rv)
    assert old is not None and old.obj["spec"]["size"] == 1
    assert read_options.object_at(api.store, res, "default/b", first.rv) is None
    names = [s.obj["metadata"]["name"] for _k, s in read_options.items_at(api.store, res, "default", first.rv)]
    assert names == ["a"]
    result = api.service.list(api.widgets, "default", at=(first.rv, read_options.items_at(api.store, res, "default",
                                                                                            first.rv)))
    assert result.rv == first.rv and [s.obj["spec"]["size"] for s in result.items] == [1]


async def test_exact_read_of_a_deleted_object(api: Api) -> None:
    from controlplane.apiserver.service import DeleteOptions

    made = await api.service.create(api.widgets, "default", widget("gone"))
    await api.service.delete(api.widgets, "default", "gone", DeleteOptions())
    back = read_options.object_at(api.store, api.widgets.storage_resource, "default/gone", made.rv)
    assert back is not None and back.obj["metadata"]["name"] == "gone"


@pytest.mark.parametrize(("query", "code"), [
    ({"resourceVersionMatch": "Exact"}, 400),
    ({"resourceVersion": "0", "resourceVersionMatch": "Exact"}, 400),
    ({"resourceVersion": "1", "resourceVersionMatch": "Newest"}, 400),
    ({"resourceVersion": "x"}, 400),
    ({"resourceVersion": "999999"}, 504),
    ({"resourceVersion": "999999", "resourceVersionMatch": "NotOlderThan"}, 504),
], ids=["match-without-rv", "exact-zero", "unknown-match", "garbage-rv", "future", "future-not-older"])
async def test_bad_read_versions(api: Api, query: dict[str, str], code: int) -> None:
    with pytest.raises(ApiError) as err:
        read_options.read_version(query, api.store)
    assert err.value.code == code


async def test_exact_read_of_compacted_history_is_expired(api: Api) -> None:
    first = await api.service.create(api.widgets, "default", widget("c"))
    await api.service.patch(api.widgets, "default", "c", "application/merge-patch+json", {"spec": {"size": 3}})
    api.store.compacted_rv = api.store.rv
    with pytest.raises(ApiError) as err:
        read_options.object_at(api.store, api.widgets.storage_resource, "default/c", first.rv)
    assert err.value.code == 410 and err.value.reason == "Expired"


def test_watch_list_needs_not_older_than_and_bookmarks(api: Api) -> None:
    with pytest.raises(ApiError):
        read_options.read_version({"sendInitialEvents": "true", "allowWatchBookmarks": "true"}, api.store, watch=True)
    with pytest.raises(ApiError):
        read_options.read_version({"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan"}, api.store,
                                  watch=True)
    ok = read_options.read_version({"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan",
                                    "allowWatchBookmarks": "true"}, api.store, watch=True)
    assert ok.rv is None
    end = read_options.initial_events_end("Widget", "example.dvp.io/v1", 7)
    assert end["object"]["metadata"] == {"resourceVersion": "7", "annotations": {"k8s.io/initial-events-end": "true"}}


def _race_once(api: Api) -> None:
    """Make the next store update lose to a concurrent writer (a label change) once."""
    real_update = api.store.update
    state = {"raced": False}

    async def racing_update(resource: str, key: str, obj: dict[str, Any], expected_rv: int, **kw: Any) -> Stored:
        if not state["raced"]:
            state["raced"] = True
            current = api.store.get(resource, key)
            assert current is not None
            other = current.copy()
            other["metadata"].setdefault("labels", {})["racer"] = "won"
            await real_update(resource, key, other, current.rv, **kw)
        return await real_update(resource, key, obj, expected_rv, **kw)

    api.store.update = racing_update  # type: ignore[method-assign]


async def test_json_patch_test_still_true_after_a_race_is_retried(api: Api) -> None:
    await api.service.create(api.widgets, "default", widget("r", size=1))
    _race_once(api)
    out = await api.service.patch(api.widgets, "default", "r", JSON_PATCH, [
        {"op": "test", "path": "/spec/size", "value": 1}, {"op": "replace", "path": "/spec/size", "value": 5}])
    assert out.obj["spec"]["size"] == 5 and out.obj["metadata"]["labels"] == {"racer": "won"}


async def test_json_patch_testing_a_resource_version_that_moved_is_422_not_409(api: Api) -> None:
    made = await api.service.create(api.widgets, "default", widget("v", size=1))
    _race_once(api)
    with pytest.raises(ApiError) as err:
        await api.service.patch(api.widgets, "default", "v", JSON_PATCH, [
            {"op": "test", "path": "/metadata/resourceVersion", "value": str(made.rv)},
            {"op": "replace", "path": "/spec/size", "value": 5}])
    assert err.value.code == 422
    assert api.service.get(api.widgets, "default", "v").obj["spec"]["size"] == 1


async def test_json_patch_setting_a_stale_resource_version_conflicts(api: Api) -> None:
    made = await api.service.create(api.widgets, "default", widget("s", size=1))
    await api.service.patch(api.widgets, "default", "s", "application/merge-patch+json", {"spec": {"size": 2}})
    with pytest.raises(ApiError) as err:
        await api.service.patch(api.widgets, "default", "s", JSON_PATCH, [
            {"op": "replace", "path": "/metadata/resourceVersion", "value": str(made.rv)},
            {"op": "replace", "path": "/spec/size", "value": 5}])
    assert err.value.code == 409


async def test_continued_pages_come_from_the_first_pages_revision(api: Api) -> None:
    for name in ("p1", "p2", "p3"):
        await api.service.create(api.widgets, "default", widget(name, size=1))
    res = api.widgets.storage_resource
    first = api.service.list(api.widgets, "default", limit=1)
    assert [s.obj["metadata"]["name"] for s in first.items] == ["p1"] and first.continue_token
    await api.service.patch(api.widgets, "default", "p2", "application/merge-patch+json", {"spec": {"size": 9}})
    await api.service.create(api.widgets, "default", widget("p4"))
    query = {"continue": first.continue_token}
    rest = api.service.list(api.widgets, "default", continue_token=first.continue_token,
                            at=read_options.list_snapshot(query, api.store, res, "default"))
    assert rest.rv == first.rv
    assert [(s.obj["metadata"]["name"], s.obj["spec"]["size"]) for s in rest.items] == [("p2", 1), ("p3", 1)]
    api.store.compacted_rv = api.store.rv
    with pytest.raises(ApiError) as err:
        read_options.list_snapshot(query, api.store, res, "default")
    assert err.value.code == 410 and "continue parameter is too old" in err.value.message
