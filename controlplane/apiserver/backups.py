"""Backups of the datastore file: consistent online copies, restores, and what a file holds.

`dvp datastore backup` copies `DATA_DIR/state.db` with SQLite's online backup API from a
connection of its own, so it works while `dvp server` runs and writes: the copy is one
consistent snapshot (a committed state, never half a transaction), checked with
`PRAGMA integrity_check` and renamed into place only when complete. `dvp datastore restore`
puts such a copy back while the server is stopped (it refuses while a process holds the
datastore open): the current files (`state.db` and its `-wal`/`-shm`) are moved aside into
`DATA_DIR/replaced-<time>/`, never deleted, then the copy is renamed into place.

`dvp upgrade` runs both on the server host over SSH (`installer/upgrade/`): a backup before
the new version opens (and migrates) the datastore, a restore when it rolls back.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from controlplane.common.durable import fsync_dir

DB_NAME = "state.db"
SIDE_FILES = ("-wal", "-shm")


class DatastoreError(RuntimeError):
    """A backup or restore could not be done; the message names the file and the fix."""


def db_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME


def backup_connection(src: sqlite3.Connection, target: Path) -> None:
    """Copy the database behind `src` to `target` (written beside it, then renamed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial")
    tmp.unlink(missing_ok=True)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)  # one step: a single read transaction, so one consistent snapshot
        dst.execute("PRAGMA journal_mode=DELETE")
        ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise DatastoreError(f"the backup copy {target} failed its integrity check: {ok}")
    finally:
        dst.close()
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(target)
    fsync_dir(target.parent)


def describe(path: Path) -> dict[str, Any]:
    """Data version, objects, revision and last writer of a datastore file (read-only)."""
    if not path.is_file():
        raise DatastoreError(f"{path}: no datastore file there")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            objects = conn.execute("SELECT count(*), max(rv) FROM objects").fetchone()
            last_log = conn.execute("SELECT max(rv) FROM log").fetchone()[0] or 0
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DatastoreError(f"{path}: not a dvp datastore ({exc})") from exc
    return {"path": str(path), "bytes": path.stat().st_size, "dataVersion": int(meta.get("data_version", "1")),
            "writtenBy": meta.get("written_by", ""), "objects": objects[0],
            "resourceVersion": max(objects[1] or 0, last_log, int(meta.get("compacted", "0")))}


def backup(data_dir: Path, target: Path) -> dict[str, Any]:
    """An online, consistent copy of `data_dir`'s datastore at `target`; returns what it holds."""
    source = db_path(data_dir)
    if not source.is_file():
        raise DatastoreError(f"{source}: no datastore to back up (is --data-dir the server's data directory?)")
    src = sqlite3.connect(source, timeout=30)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        backup_connection(src, target)
    except sqlite3.Error as exc:
        raise DatastoreError(f"backing up {source} to {target} failed: {exc}") from exc
    finally:
        src.close()
    return describe(target)


def holders(path: Path) -> list[int]:
    """PIDs of processes that have `path` open (read from /proc)."""
    want = str(path.resolve())
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                try:
                    if os.readlink(fd) == want:
                        pids.append(int(entry.name))
                        break
                except OSError:
                    continue
        except OSError:
            continue
    return pids


def restore(data_dir: Path, source: Path) -> dict[str, Any]:
    """Put the backup `source` back as `data_dir`'s datastore (the server must be stopped)."""
    describe(source)  # raises for a file that is not a datastore
    check = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        ok = check.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        check.close()
    if ok != "ok":
        raise DatastoreError(f"{source}: the backup is damaged ({ok}); nothing was changed")
    target = db_path(data_dir)
    if target.exists():
        busy = holders(target)
        if busy:
            raise DatastoreError(f"{target} is open by process(es) {', '.join(map(str, busy))}: stop dvp-server "
                                 "before restoring; nothing was changed")
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{DB_NAME}.restoring"
    shutil.copyfile(source, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    present = [p for p in (target, *(target.with_name(DB_NAME + s) for s in SIDE_FILES)) if p.exists()]
    aside = None
    if present:
        aside = data_dir / f"replaced-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        aside.mkdir()
        for p in present:
            p.rename(aside / p.name)
    tmp.replace(target)
    fsync_dir(data_dir)
    result = describe(target)
    result["previousFilesMovedTo"] = str(aside) if aside else ""
    return result
