"""The conformance suite every datastore driver passes (distribution's storage-driver idea):
the `Datastore` contract the API service relies on, checked through the protocol only, for
each driver registered in `datastore.DRIVERS`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from controlplane.apiserver import datastore, errors
from controlplane.apiserver.datastore import Conflict, Datastore, Event, Exists, Expired, NotFound

R = "example.dvp.io/widgets"
CM = "/configmaps"

Opener = Callable[..., datastore.Datastore]


@pytest.fixture(params=sorted(datastore.DRIVERS))
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens (and reopens) one datastore of the driver under test at one place."""
    def open_(**options: int) -> Datastore:
        return datastore.open_datastore(request.param, tmp_path / "state.db", **options)
    return open_


@pytest.fixture
async def store(reopen: Opener) -> AsyncIterator[Datastore]:
    s = reopen()
    s.start()
    yield s
    await s.close()


def obj(name: str, **extra: object) -> dict[str, object]:
    return {"metadata": {"name": name}, **extra}


async def test_create_get_and_exists(store: Datastore) -> None:
    a = await store.create(R, "ns/a", obj("a", x=1))
    assert store.get(R, "ns/a") == a and a.obj["x"] == 1
    assert a.obj["metadata"]["resourceVersion"] == str(a.rv) == str(store.rv)
    with pytest.raises(Exists):
        await store.create(R, "ns/a", obj("a"))
    assert store.get(R, "ns/a") == a, "a refused create changes nothing"
    assert store.get(R, "ns/missing") is None and store.get("other/kind", "ns/a") is None


async def test_update_checks_existence_and_revision(store: Datastore) -> None:
    a = await store.create(R, "ns/a", obj("a"))
    b = await store.update(R, "ns/a", obj("a", x=2), a.rv)
    assert b.rv > a.rv and store.get(R, "ns/a") == b
    with pytest.raises(Conflict):
        await store.update(R, "ns/a", obj("a", x=3), a.rv)
    with pytest.raises(NotFound):
        await store.update(R, "ns/none", obj("none"), 1)
    assert store.get(R, "ns/a") == b


async def test_delete_returns_the_last_version_at_the_deletion_revision(store: Datastore) -> None:
    a = await store.create(R, "ns/a", obj("a", x=1))
    with pytest.raises(Conflict):
        await store.delete(R, "ns/a", a.rv + 100)
    gone = await store.delete(R, "ns/a", a.rv)
    assert gone.rv > a.rv and gone.obj["x"] == 1 and store.get(R, "ns/a") is None
    with pytest.raises(NotFound):
        await store.delete(R, "ns/a", None)


async def test_one_revision_counter_for_every_resource(store: Datastore) -> None:
    revs = [(await store.create(R if i % 2 else CM, f"ns/o{i}", obj(f"o{i}"))).rv for i in range(6)]
    assert revs == sorted(revs) and len(set(revs)) == 6 and store.rv == revs[-1]
    assert set(store.resources()) >= {R, CM}


async def test_concurrent_writers_on_one_object_end_as_one_success_and_conflicts(store: Datastore) -> None:
    a = await store.create(R, "ns/a", obj("a"))
    results = await asyncio.gather(*[store.update(R, "ns/a", obj("a", n=i), a.rv) for i in range(5)],
                                   return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    creates = await asyncio.gather(*[store.create(R, "ns/same", obj("same")) for _ in range(3)],
                                   return_exceptions=True)
    assert sum(isinstance(r, Exists) for r in creates) == 2


async def test_items_in_key_order_and_by_namespace(store: Datastore) -> None:
    for key in ("b/x", "a/y", "a/x", "ab/z"):
        await store.create(R, key, obj(key))
    assert [k for k, _ in store.items(R)] == ["a/x", "a/y", "ab/z", "b/x"]
    assert [k for k, _ in store.items(R, "a")] == ["a/x", "a/y"]
    assert list(store.items("nothing/here")) == []


async def test_history_and_subscribers_see_every_change_in_order(store: Datastore) -> None:
    seen: list[Event] = []
    store.subscribe(seen.extend)
    start = store.rv
    a = await store.create(R, "ns/a", obj("a"))
    b = await store.update(R, "ns/a", obj("a", x=1), a.rv)
    await store.delete(R, "ns/a", b.rv)
    history = store.events_since(start)
    assert [(e.type, e.key) for e in history] == [("ADDED", "ns/a"), ("MODIFIED", "ns/a"), ("DELETED", "ns/a")]
    assert [e.rv for e in history] == [e.rv for e in seen] == sorted(e.rv for e in seen)
    assert history[1].prev is not None and history[1].prev.rv == a.rv
    assert store.events_since(store.rv) == []


async def test_compacted_history_is_expired_and_maps_to_410(reopen: Opener) -> None:
    s = reopen(history_events=10, compact_every=5)
    s.start()
    for i in range(30):
        await s.create(R, f"ns/o{i}", obj(f"o{i}"))
    with pytest.raises(Expired) as raised:
        s.events_since(2)
    assert errors.from_storage(raised.value, "widgets", "example.dvp.io", "").code == 410
    assert [e.rv for e in s.events_since(s.rv - 3)] == [s.rv - 2, s.rv - 1, s.rv]
    await s.close()


async def test_acknowledged_writes_survive_reopen(reopen: Opener) -> None:
    s = reopen()
    s.start()
    created = await asyncio.gather(*[s.create(R, f"ns/o{i}", obj(f"o{i}")) for i in range(50)])
    await s.delete(R, "ns/o0", None)
    last = s.rv
    await s.close()
    again = reopen()
    again.start()
    assert again.rv == last and len(list(again.items(R))) == 49
    assert again.get(R, "ns/o7") == created[7]
    assert again.events_since(created[48].rv)[-1].type == "DELETED"
    await again.close()


@pytest.mark.parametrize("error, code, reason", [
    (NotFound(R, "ns/a"), 404, "NotFound"),
    (Exists(R, "ns/a"), 409, "AlreadyExists"),
    (Conflict(R, "ns/a"), 409, "Conflict"),
    (Expired(1, 5), 410, "Expired"),
    (datastore.Unavailable(R, "ns/a", "disk I/O error"), 500, "InternalError"),
], ids=["not-found", "exists", "conflict", "expired", "unavailable"])
def test_storage_errors_map_to_kubernetes_status_in_one_place(error: datastore.StorageError, code: int,
                                                              reason: str) -> None:
    mapped = errors.from_storage(error, "widgets", "example.dvp.io", "a")
    assert (mapped.code, mapped.reason) == (code, reason)


def test_unknown_driver_is_named() -> None:
    with pytest.raises(ValueError, match="unknown datastore driver 'etcd': use one of sqlite"):
        datastore.open_datastore("etcd", Path("/nonexistent"))
