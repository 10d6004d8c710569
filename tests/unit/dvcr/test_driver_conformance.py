"""The storage driver contract (controlplane.dvcr.driver): every driver must pass this suite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controlplane.dvcr.driver import PathNotFound, StorageDriver
from controlplane.dvcr.fsdriver import FilesystemDriver
from controlplane.dvcr.memdriver import MemoryDriver

DRIVERS: dict[str, Callable[[Path], StorageDriver]] = {
    "filesystem": lambda tmp: FilesystemDriver(tmp / "root"),
    "memory": lambda tmp: MemoryDriver(),
}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    return DRIVERS[request.param](tmp_path)


def test_put_get_stat(driver: StorageDriver) -> None:
    assert driver.stat("a/b/c") is None
    driver.put("a/b/c", b"hello")
    assert driver.get("a/b/c") == b"hello"
    info = driver.stat("a/b/c")
    assert info is not None and info.size == 5 and not info.is_dir
    folder = driver.stat("a/b")
    assert folder is not None and folder.is_dir
    driver.put("a/b/c", b"replaced")
    assert driver.get("a/b/c") == b"replaced"


def test_missing_paths_raise_path_not_found(driver: StorageDriver) -> None:
    for op in (lambda: driver.get("nope"), lambda: driver.read("nope"), lambda: driver.delete("nope"),
               lambda: driver.list("nope"), lambda: driver.move("nope", "x")):
        with pytest.raises(PathNotFound):
            op()
    assert list(driver.walk("nope")) == []


def test_read_from_offset(driver: StorageDriver) -> None:
    driver.put("f", b"0123456789")
    with driver.read("f", offset=4) as f:
        assert f.read() == b"456789"


def test_ingest_is_invisible_until_commit(driver: StorageDriver) -> None:
    w = driver.ingest("up/data")
    w.write(b"abc")
    w.write(memoryview(b"def"))
    assert w.size == 6
    assert driver.stat("up/data") is None
    w.commit()
    assert driver.get("up/data") == b"abcdef"


def test_cancel_leaves_no_trace(driver: StorageDriver) -> None:
    w = driver.ingest("up/data")
    w.write(b"abc")
    w.cancel()
    assert driver.stat("up/data") is None
    assert [f.path for f in driver.walk("up")] == []


def test_append_continues_and_cancel_rolls_back_to_where_it_began(driver: StorageDriver) -> None:
    driver.put("up/data", b"")
    w = driver.ingest("up/data", append=True)
    w.write(b"first")
    w.close()
    w = driver.ingest("up/data", append=True)
    assert w.size == 5
    w.write(b"second")
    w.close()
    assert driver.get("up/data") == b"firstsecond"
    w = driver.ingest("up/data", append=True)
    w.write(b"junk")
    w.cancel()
    assert driver.get("up/data") == b"firstsecond"


def test_move_is_a_rename(driver: StorageDriver) -> None:
    driver.put("a/x", b"1")
    driver.put("b/y", b"2")
    driver.move("a/x", "b/y")
    assert driver.get("b/y") == b"1"
    assert driver.stat("a/x") is None


def test_list_walk_delete(driver: StorageDriver) -> None:
    for p in ("r/a/1", "r/a/2", "r/b/3", "r/c"):
        driver.put(p, p.encode())
    assert driver.list("r") == ["a", "b", "c"]
    assert [f.path for f in driver.walk("r")] == ["r/a/1", "r/a/2", "r/b/3", "r/c"]
    driver.delete("r/a")
    assert driver.list("r") == ["b", "c"]
    driver.delete("r/c")
    assert [f.path for f in driver.walk("r")] == ["r/b/3"]
