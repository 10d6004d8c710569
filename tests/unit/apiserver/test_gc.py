"""Owner references: background, foreground and orphan deletion, as in Kubernetes."""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.errors import ApiError
from controlplane.apiserver.service import DeleteOptions

from .conftest import Api
from .test_validation import widget


def owned_by(owner: dict[str, Any], name: str, *, block: bool = False) -> dict[str, Any]:
    cm: dict[str, Any] = {"metadata": {"name": name, "ownerReferences": [{
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "blockOwnerDeletion": block}]}, "data": {"k": "v"}}
    return cm


def exists(api: Api, name: str) -> bool:
    try:
        api.service.get(api.configmaps, "default", name)
        return True
    except ApiError:
        return False


async def test_background_deletion_collects_dependents(api: Api) -> None:
    owner = (await api.service.create(api.widgets, "default", widget())).obj
    for n in ("a", "b"):
        await api.service.create(api.configmaps, "default", owned_by(owner, n))
    _, removed = await api.service.delete(api.widgets, "default", "w", DeleteOptions("Background"))
    assert removed
    await api.settle()
    assert not exists(api, "a") and not exists(api, "b")


async def test_dependent_with_another_live_owner_survives(api: Api) -> None:
    w1 = (await api.service.create(api.widgets, "default", widget("w1"))).obj
    w2 = (await api.service.create(api.widgets, "default", widget("w2"))).obj
    cm = owned_by(w1, "shared")
    cm["metadata"]["ownerReferences"] += owned_by(w2, "x")["metadata"]["ownerReferences"]
    await api.service.create(api.configmaps, "default", cm)
    await api.service.delete(api.widgets, "default", "w1", DeleteOptions())
    await api.settle()
    left = api.service.get(api.configmaps, "default", "shared").obj
    assert [r["name"] for r in left["metadata"]["ownerReferences"]] == ["w2"]


async def test_foreground_deletion_waits_for_blocking_dependents(api: Api) -> None:
    owner = (await api.service.create(api.widgets, "default", widget())).obj
    dep = owned_by(owner, "blocker", block=True)
    dep["metadata"]["finalizers"] = ["example.dvp.io/hold"]
    await api.service.create(api.configmaps, "default", dep)
    marked, removed = await api.service.delete(api.widgets, "default", "w", DeleteOptions("Foreground"))
    assert not removed and "foregroundDeletion" in marked.obj["metadata"]["finalizers"]
    await api.settle()
    owner_now = api.service.get(api.widgets, "default", "w").obj
    assert owner_now["metadata"]["deletionTimestamp"], "owner stays while a blocking dependent exists"
    assert api.service.get(api.configmaps, "default", "blocker").obj["metadata"]["deletionTimestamp"]
    await api.service.patch(api.configmaps, "default", "blocker", "application/merge-patch+json",
                            {"metadata": {"finalizers": None}})
    await api.settle()
    assert not exists(api, "blocker")
    try:
        api.service.get(api.widgets, "default", "w")
        raise AssertionError("owner should be gone once its dependents are")
    except ApiError as exc:
        assert exc.code == 404


async def test_orphan_deletion_keeps_dependents_without_the_reference(api: Api) -> None:
    owner = (await api.service.create(api.widgets, "default", widget())).obj
    await api.service.create(api.configmaps, "default", owned_by(owner, "orphaned"))
    await api.service.delete(api.widgets, "default", "w", DeleteOptions("Orphan"))
    await api.settle()
    left = api.service.get(api.configmaps, "default", "orphaned").obj
    assert not left["metadata"].get("ownerReferences")
    try:
        api.service.get(api.widgets, "default", "w")
        raise AssertionError("owner should be deleted after orphaning")
    except ApiError as exc:
        assert exc.code == 404


async def test_dependents_of_owner_deleted_while_down_are_collected_at_start(api: Api, tmp_path: Any) -> None:
    from .conftest import close_api, open_api

    owner = (await api.service.create(api.widgets, "default", widget())).obj
    await api.service.create(api.configmaps, "default", owned_by(owner, "late"))
    await api.gc.queue.stop()  # the collector is "down" while the owner goes away
    await api.store.delete(api.widgets.storage_resource, "default/w", None)
    await api.lifecycle.queue.stop()
    await api.store.close()
    again = await open_api(tmp_path / "state.db")
    try:
        await again.settle()
        assert not exists(again, "late")
    finally:
        await close_api(again)
