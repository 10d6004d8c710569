"""Object semantics: server-owned metadata, generation, status split, concurrency, finalizers,
namespaces, generateName — as Kubernetes defines them."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.apiserver.errors import ApiError
from controlplane.apiserver.service import DeleteOptions

from .conftest import Api
from .test_validation import widget


async def test_server_sets_uid_timestamp_generation_and_rv(api: Api) -> None:
    obj = widget()
    obj["metadata"].update(uid="forged", resourceVersion="999", generation=7, creationTimestamp="2000-01-01T00:00:00Z")
    stored = await api.service.create(api.widgets, "default", obj)
    meta = stored.obj["metadata"]
    assert meta["uid"] != "forged" and len(meta["uid"]) == 36
    assert meta["generation"] == 1
    assert meta["creationTimestamp"] != "2000-01-01T00:00:00Z"
    assert int(meta["resourceVersion"]) == stored.rv == api.store.rv


async def test_generation_bumps_on_spec_changes_only(api: Api) -> None:
    s = await api.service.create(api.widgets, "default", widget())
    labelled = s.copy()
    labelled["metadata"]["labels"] = {"a": "b"}
    s = await api.service.update(api.widgets, "default", "w", labelled)
    assert s.obj["metadata"]["generation"] == 1
    s = await api.service.patch(api.widgets, "default", "w", "application/merge-patch+json",
                                {"status": {"phase": "Ready"}}, subresource="status")
    assert s.obj["metadata"]["generation"] == 1 and s.obj["status"] == {"phase": "Ready"}
    s = await api.service.patch(api.widgets, "default", "w", "application/merge-patch+json", {"spec": {"size": 2}})
    assert s.obj["metadata"]["generation"] == 2



async def test_an_update_that_only_restates_defaults_or_pruned_fields_changes_nothing(api: Api) -> None:
    """Generation follows the spec as stored (after defaulting and pruning): a controller that
    sends `mode: Slow` (the default) or a field the schema prunes gets the object back as it was,
    with no new resourceVersion and so no watch event for anyone to react to."""
    s = await api.service.create(api.widgets, "default", widget())
    for extra in ({"mode": "Slow"}, {"unknownField": 1}):
        body = s.copy()
        body["spec"] = {**body["spec"], **extra}
        again = await api.service.update(api.widgets, "default", "w", body)
        assert (again.rv, again.obj["metadata"]["generation"]) == (s.rv, 1), extra

async def test_status_and_spec_are_written_separately(api: Api) -> None:
    obj = widget()
    obj["status"] = {"phase": "Forged"}
    s = await api.service.create(api.widgets, "default", obj)
    assert "status" not in s.obj, "create must drop status when the status subresource is enabled"
    s = await api.service.patch(api.widgets, "default", "w", "application/merge-patch+json",
                                {"spec": {"size": 3}, "status": {"phase": "Ignored"}})
    assert s.obj["spec"]["size"] == 3 and "status" not in s.obj
    s = await api.service.patch(api.widgets, "default", "w", "application/merge-patch+json",
                                {"spec": {"size": 50}, "status": {"phase": "Ready"}}, subresource="status")
    assert s.obj["spec"]["size"] == 3 and s.obj["status"]["phase"] == "Ready"


async def test_no_op_update_keeps_resource_version(api: Api) -> None:
    s = await api.service.create(api.widgets, "default", widget())
    again = await api.service.update(api.widgets, "default", "w", s.copy())
    assert again.rv == s.rv


async def test_concurrent_updates_from_same_version_one_wins_one_conflicts(api: Api) -> None:
    s = await api.service.create(api.widgets, "default", widget())
    a, b = s.copy(), s.copy()
    a["spec"]["size"], b["spec"]["size"] = 10, 20
    results = await asyncio.gather(api.service.update(api.widgets, "default", "w", a),
                                   api.service.update(api.widgets, "default", "w", b), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, Exception)]
    failed = [r for r in results if isinstance(r, ApiError)]
    assert len(ok) == 1 and len(failed) == 1
    assert failed[0].code == 409 and failed[0].reason == "Conflict"
    assert "the object has been modified" in failed[0].message


async def test_update_requires_resource_version_for_custom_resources(api: Api) -> None:
    s = await api.service.create(api.widgets, "default", widget())
    body = s.copy()
    del body["metadata"]["resourceVersion"]
    with pytest.raises(ApiError) as err:
        await api.service.update(api.widgets, "default", "w", body)
    assert err.value.code == 422 and "metadata.resourceVersion" in err.value.message


async def test_create_twice_is_already_exists(api: Api) -> None:
    await api.service.create(api.widgets, "default", widget())
    with pytest.raises(ApiError) as err:
        await api.service.create(api.widgets, "default", widget())
    assert err.value.code == 409 and err.value.reason == "AlreadyExists"


async def test_generate_name(api: Api) -> None:
    obj = widget()
    obj["metadata"] = {"generateName": "w-"}
    s = await api.service.create(api.widgets, "default", obj)
    assert s.obj["metadata"]["name"].startswith("w-") and len(s.obj["metadata"]["name"]) == 7


async def test_finalizers_hold_deletion_until_removed(api: Api) -> None:
    obj = widget()
    obj["metadata"]["finalizers"] = ["example.dvp.io/cleanup"]
    await api.service.create(api.widgets, "default", obj)
    marked, removed = await api.service.delete(api.widgets, "default", "w", DeleteOptions())
    assert not removed and marked.obj["metadata"]["deletionTimestamp"]
    body = marked.copy()
    body["metadata"]["finalizers"] = ["example.dvp.io/cleanup", "another"]
    with pytest.raises(ApiError) as err:
        await api.service.update(api.widgets, "default", "w", body)
    assert "no new finalizers" in err.value.message
    await api.service.patch(api.widgets, "default", "w", "application/merge-patch+json",
                            {"metadata": {"finalizers": None}})
    with pytest.raises(ApiError) as err:
        api.service.get(api.widgets, "default", "w")
    assert err.value.code == 404


async def test_delete_preconditions(api: Api) -> None:
    s = await api.service.create(api.widgets, "default", widget())
    with pytest.raises(ApiError) as err:
        await api.service.delete(api.widgets, "default", "w", DeleteOptions(uid="other"))
    assert err.value.code == 409
    with pytest.raises(ApiError):
        await api.service.delete(api.widgets, "default", "w", DeleteOptions(resource_version="1"))
    _, removed = await api.service.delete(api.widgets, "default", "w",
                                          DeleteOptions(uid=s.obj["metadata"]["uid"], resource_version=str(s.rv)))
    assert removed


async def test_create_in_missing_or_terminating_namespace(api: Api) -> None:
    with pytest.raises(ApiError) as err:
        await api.service.create(api.widgets, "nowhere", widget())
    assert err.value.code == 404 and 'namespaces "nowhere" not found' in err.value.message
    obj = widget("held")
    obj["metadata"]["finalizers"] = ["x/y"]
    await api.service.create(api.widgets, "other", obj)
    await api.service.delete(api.namespaces, "", "other", DeleteOptions())
    await api.settle()
    ns = api.service.get(api.namespaces, "", "other")
    assert ns.obj["status"]["phase"] == "Terminating"
    with pytest.raises(ApiError) as err:
        await api.service.create(api.widgets, "other", widget())
    assert err.value.code == 403 and "being terminated" in err.value.message
    await api.service.patch(api.widgets, "other", "held", "application/merge-patch+json",
                            {"metadata": {"finalizers": None}})
    await api.settle()
    with pytest.raises(ApiError):
        api.service.get(api.namespaces, "", "other")


async def test_list_pagination_and_selectors(api: Api) -> None:
    for i in range(7):
        obj = widget(f"w{i}")
        obj["metadata"]["labels"] = {"parity": "even" if i % 2 == 0 else "odd"}
        await api.service.create(api.widgets, "default", obj)
    from controlplane.apiserver.selectors import LabelSelector

    first = api.service.list(api.widgets, "default", limit=3)
    assert [s.obj["metadata"]["name"] for s in first.items] == ["w0", "w1", "w2"]
    assert first.remaining == 4 and first.continue_token
    second = api.service.list(api.widgets, "default", limit=3, continue_token=first.continue_token)
    assert [s.obj["metadata"]["name"] for s in second.items] == ["w3", "w4", "w5"]
    third = api.service.list(api.widgets, "default", limit=3, continue_token=second.continue_token)
    assert [s.obj["metadata"]["name"] for s in third.items] == ["w6"] and not third.continue_token
    even = api.service.list(api.widgets, "default", labels=LabelSelector("parity=even"))
    assert len(even.items) == 4
    assert api.service.list(api.widgets, "other").items == []
