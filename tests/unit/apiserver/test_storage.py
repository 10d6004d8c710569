"""The datastore: revisions, durability across reopen, watch history and compaction."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controlplane.apiserver.errors import ApiError
from controlplane.apiserver.storage import Store, StoreSettings

R = "example.dvp.io/widgets"


def _errs() -> dict:
    return {"not_found": lambda: ApiError(404, "NotFound", "nf"), "conflict": lambda: ApiError(409, "Conflict", "c")}


async def _open(path: Path, **kw: int) -> Store:
    s = Store(path, settings=StoreSettings(**kw))
    s.start()
    return s


async def test_revisions_are_cluster_wide_and_monotonic(tmp_path: Path) -> None:
    s = await _open(tmp_path / "db")
    a = await s.create(R, "ns/a", {"metadata": {"name": "a"}}, exists=lambda: ApiError(409, "AlreadyExists", ""))
    b = await s.create("/configmaps", "ns/b", {"metadata": {"name": "b"}}, exists=lambda: ApiError(409, "", ""))
    c = await s.update(R, "ns/a", {"metadata": {"name": "a"}, "x": 1}, a.rv, **_errs())
    assert a.rv < b.rv < c.rv == s.rv
    assert c.obj["metadata"]["resourceVersion"] == str(c.rv)
    with pytest.raises(ApiError) as err:
        await s.update(R, "ns/a", {"metadata": {"name": "a"}}, a.rv, **_errs())
    assert err.value.code == 409
    await s.close()


async def test_everything_acknowledged_survives_reopen(tmp_path: Path) -> None:
    s = await _open(tmp_path / "db")
    results = await asyncio.gather(*[
        s.create(R, f"ns/o{i}", {"metadata": {"name": f"o{i}"}}, exists=lambda: ApiError(409, "", ""))
        for i in range(200)])
    await s.delete(R, "ns/o0", None, **_errs())
    last = s.rv
    await s.close()
    s2 = await _open(tmp_path / "db")
    assert s2.rv == last
    assert s2.count(R) == 199
    assert s2.get(R, "ns/o5").raw == results[5].raw
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

    s._conn = _ConnProxy(s._conn, counting_commit)
    await asyncio.gather(*[s.create(R, f"ns/o{i}", {"metadata": {"name": f"o{i}"}},
                                    exists=lambda: ApiError(409, "", "")) for i in range(100)])
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
        await s.create(R, f"ns/o{i}", {"metadata": {"name": f"o{i}"}}, exists=lambda: ApiError(409, "", ""))
    with pytest.raises(ApiError) as err:
        s.events_since(2)
    assert err.value.code == 410
    assert len(s.events_since(s.rv - 5)) == 5
    await s.close()
    s2 = await _open(tmp_path / "db", history_events=10, compact_every=5)
    with pytest.raises(ApiError):
        s2.events_since(2)
    assert [e.rv for e in s2.events_since(s2.rv - 3)] == [s2.rv - 2, s2.rv - 1, s2.rv]
    await s2.close()
