"""The datastore: revisions, durability across reopen, watch history and compaction."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controlplane.apiserver.datastore import Conflict, Expired
from controlplane.apiserver.storage import Store, StoreSettings

R = "example.dvp.io/widgets"


async def _open(path: Path, **kw: int) -> Store:
    s = Store(path, settings=StoreSettings(**kw))
    s.start()
    return s


async def test_revisions_are_cluster_wide_and_monotonic(tmp_path: Path) -> None:
    s = await _open(tmp_path / "db")
    a = await s.create(R, "ns/a", {"metadata": {"name": "a"}})
    b = await s.create("/configmaps", "ns/b", {"metadata": {"name": "b"}})
    c = await s.update(R, "ns/a", {"metadata": {"name": "a"}, "x": 1}, a.rv)
    assert a.rv < b.rv < c.rv == s.rv
    assert c.obj["metadata"]["resourceVersion"] == str(c.rv)
    with pytest.raises(Conflict):
        await s.update(R, "ns/a", {"metadata": {"name": "a"}}, a.rv)
    await s.close()


async def test_everything_acknowledged_survives_reopen(tmp_path: Path) -> None:
    s = await _open(tmp_path / "db")
    results = await asyncio.gather(*[
        s.create(R, f"ns/o{i}", {"metadata": {"name": f"o{i}"}})
        for i in range(200)])
    await s.delete(R, "ns/o0", None)
    last = s.rv
    await s.close()
    s2 = await _open(tmp_path / "db")
    assert s2.rv == last
    assert s2.count(R) == 199
    assert (s2.get(R, "ns/o5") or results[0]).raw == results[5].raw
    events = s2.events_since(results[100].rv)
    assert [e.key for e in events][-1] == "ns/o0" and events[-1].type == "DELETED"
    await s2.close()


async def test_group_commit_batches_concurrent_writes(tmp_path: Path) -> None:
    s = await _open(tmp_path / "db")
    commits = 0
    real_commit = s._conn.commit

    def counting_commit() -> None:
        nonlocal commits
        commits += 1
        real_commit()

    s._conn = _ConnProxy(s._conn, counting_commit)  # type: ignore[assignment]
    await asyncio.gather(*[s.create(R, f"ns/o{i}", {"metadata": {"name": f"o{i}"}}) for i in range(100)])
    assert s.count(R) == 100
    assert commits < 100, "concurrent writes should share commits"
    await s.close()


class _ConnProxy:
    def __init__(self, conn: object, commit: object) -> None:
        self._conn, self.commit = conn, commit

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


async def test_compacted_history_answers_gone(tmp_path: Path) -> None:
    s = await _open(tmp_path / "db", history_events=10, compact_every=5)
    for i in range(30):
        await s.create(R, f"ns/o{i}", {"metadata": {"name": f"o{i}"}})
    with pytest.raises(Expired):
        s.events_since(2)
    assert len(s.events_since(s.rv - 5)) == 5
    await s.close()
    s2 = await _open(tmp_path / "db", history_events=10, compact_every=5)
    with pytest.raises(Expired):
        s2.events_since(2)
    assert [e.rv for e in s2.events_since(s2.rv - 3)] == [s2.rv - 2, s2.rv - 1, s2.rv]
    await s2.close()


async def test_the_revision_promised_to_readers_waits_for_the_batch_to_reach_the_watchers(tmp_path: Path) -> None:
    """A list or a watch bookmark made while a batch is being committed must not name the
    batch's revision: a client watching from it would never get the batch's events."""
    s = await _open(tmp_path / "db")
    before = (await s.create(R, "ns/a", {"metadata": {"name": "a"}})).rv
    seen: list[int] = []
    s.subscribe(lambda events: seen.extend(e.rv for e in events))
    release = asyncio.Event()
    loop = asyncio.get_running_loop()
    real_commit = s._conn.commit

    def slow_commit() -> None:
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result()
        real_commit()

    s._conn = _ConnProxy(s._conn, slow_commit)  # type: ignore[assignment]
    write = asyncio.create_task(s.update(R, "ns/a", {"metadata": {"name": "a"}, "x": 1}, before))
    await asyncio.sleep(0.05)  # the batch is in flight: applied, not yet committed
    assert s.rv == before and seen == []
    release.set()
    after = (await write).rv
    assert s.rv == after and seen == [after]
    await s.close()
