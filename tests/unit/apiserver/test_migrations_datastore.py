"""Storage migrations (data version, one transaction, refusal of a newer datastore) and the
datastore file operations behind `dvp datastore` (online backup while writes go on, restore
that moves the replaced files aside). Real SQLite files; the `upgrade-test` build feature is
switched on by setting BUILD_FEATURES as the build stamp does."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.apiserver import backups, migrations
from controlplane.apiserver.storage import Store
from controlplane.common import upgradetest, version

CLASSES = "virtualization.deckhouse.io/virtualmachineclasses"


@pytest.fixture
def feature_b() -> Iterator[None]:
    before = version.BUILD_FEATURES
    version.BUILD_FEATURES = frozenset({upgradetest.FEATURE})
    try:
        yield
    finally:
        version.BUILD_FEATURES = before


async def _filled(path: Path, n: int = 3) -> int:
    s = Store(path)
    s.start()
    for i in range(n):
        await s.create(CLASSES, f"/c{i}", {"metadata": {"name": f"c{i}"}, "spec": {"cpu": {"type": "Host"}}})
    await s.create("/configmaps", "default/x", {"metadata": {"name": "x"}})
    rv = s.rv
    await s.close()
    return rv


async def test_a_plain_build_is_at_the_base_data_version(tmp_path: Path) -> None:
    await _filled(tmp_path / "state.db")
    assert migrations.data_version() == migrations.BASE_DATA_VERSION
    assert backups.describe(tmp_path / "state.db")["dataVersion"] == 1


async def test_migration_fills_the_new_field_with_new_revisions_in_one_go(tmp_path: Path, feature_b: None) -> None:
    version.BUILD_FEATURES = frozenset()
    rv_before = await _filled(tmp_path / "state.db")
    version.BUILD_FEATURES = frozenset({upgradetest.FEATURE})
    s = Store(tmp_path / "state.db")
    assert s.migration.applied == ["2:vmclass-upgrade-test-level"] and s.migration.changed_objects == 3
    for i in range(3):
        stored = s.get(CLASSES, f"/c{i}")
        assert stored is not None and stored.obj["spec"]["upgradeTestLevel"] == "B"
        assert stored.rv > rv_before and stored.obj["metadata"]["resourceVersion"] == str(stored.rv)
    assert [e.type for e in s.events_since(rv_before)] == ["MODIFIED"] * 3
    assert s.get("/configmaps", "default/x").rv <= rv_before  # type: ignore[union-attr]
    await s.close()
    assert backups.describe(tmp_path / "state.db")["dataVersion"] == 2
    s2 = Store(tmp_path / "state.db")  # nothing pending the second time
    assert s2.migration.applied == [] and s2.rv == rv_before + 3
    await s2.close()


async def test_a_failing_migration_changes_nothing(tmp_path: Path, feature_b: None, monkeypatch: pytest.MonkeyPatch
                                                   ) -> None:
    version.BUILD_FEATURES = frozenset()
    await _filled(tmp_path / "state.db")
    version.BUILD_FEATURES = frozenset({upgradetest.FEATURE})
    calls = []

    def broken(obj: dict) -> bool:
        calls.append(obj["metadata"]["name"])
        if len(calls) == 2:
            raise ValueError("conversion bug")
        obj["spec"]["upgradeTestLevel"] = "B"
        return True

    monkeypatch.setattr(upgradetest, "_fill", broken)
    monkeypatch.setattr(upgradetest, "migrations", lambda: [(2, "broken", (upgradetest.CLASSES,), broken)])
    with pytest.raises(ValueError, match="conversion bug"):
        Store(tmp_path / "state.db")
    info = backups.describe(tmp_path / "state.db")
    assert info["dataVersion"] == 1
    conn = sqlite3.connect(tmp_path / "state.db")
    assert all(b"upgradeTestLevel" not in row[0] for row in conn.execute("SELECT data FROM objects"))
    conn.close()


async def test_a_datastore_from_a_newer_build_is_refused_untouched(tmp_path: Path, feature_b: None) -> None:
    await _filled(tmp_path / "state.db")  # migrated to 2 by the "B" build
    before = (tmp_path / "state.db").read_bytes()
    version.BUILD_FEATURES = frozenset()
    with pytest.raises(migrations.DatastoreTooNew, match="data version 2.*reads up to data version 1.*restore"):
        Store(tmp_path / "state.db")
    assert (tmp_path / "state.db").read_bytes() == before


async def test_online_backup_is_one_consistent_snapshot_while_writes_go_on(tmp_path: Path) -> None:
    s = Store(tmp_path / "state.db")
    s.start()
    stop = asyncio.Event()

    async def writer() -> None:
        i = 0
        while not stop.is_set():
            await s.create("/configmaps", f"default/w{i}", {"metadata": {"name": f"w{i}"}})
            i += 1

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.2)
    infos = []
    for n in range(3):  # another connection, as `dvp datastore backup` on the host does
        infos.append(await asyncio.to_thread(backups.backup, tmp_path, tmp_path / f"backup-{n}.db"))
        await asyncio.sleep(0.05)
    stop.set()
    await task
    await s.close()
    for n, info in enumerate(infos):
        conn = sqlite3.connect(tmp_path / f"backup-{n}.db")
        count, top = conn.execute("SELECT count(*), max(rv) FROM objects").fetchone()
        conn.close()
        assert count == top == info["objects"] == info["resourceVersion"]  # every write up to a revision, none after
    assert infos[0]["objects"] < infos[-1]["objects"]


async def test_restore_puts_the_backup_back_and_keeps_the_replaced_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    await _filled(data / "state.db", n=2)
    backups.backup(data, tmp_path / "b.db")
    s = Store(data / "state.db")
    s.start()
    await s.create("/configmaps", "default/after", {"metadata": {"name": "after"}})
    # another process holding the datastore open (as a running server does) blocks the restore
    child = subprocess.Popen([sys.executable, "-c", f"import sqlite3,time; c=sqlite3.connect('{data}/state.db'); "
                              "c.execute('select 1').fetchall(); print('ok', flush=True); time.sleep(30)"],
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"ok"
        with pytest.raises(backups.DatastoreError, match="open by process"):
            backups.restore(data, tmp_path / "b.db")
    finally:
        child.kill()
        child.wait()
    await s.close()
    info = backups.restore(data, tmp_path / "b.db")
    moved = Path(info["previousFilesMovedTo"])
    assert (moved / "state.db").exists()
    s2 = Store(data / "state.db")
    assert s2.get("/configmaps", "default/after") is None and s2.count(CLASSES) == 2
    await s2.close()


def test_restore_refuses_a_file_that_is_not_a_datastore(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(backups.DatastoreError, match="not a dvp datastore"):
        backups.restore(tmp_path, tmp_path / "junk.db")
