"""Storage migrations: stored objects converted to what this version's CRDs expect.

The datastore records a *data version* (`meta.data_version`; a datastore without one is at
`BASE_DATA_VERSION`). This build reads up to `data_version()`, the highest version a
registered migration produces. When `Store` opens a datastore it runs, in one transaction,
every migration above the stored data version in order: each converts the stored objects of
its resources (e.g. fills a field a new CRD version defaults), and every changed object gets a
new resourceVersion and a MODIFIED entry in the change log, so watchers that resume see the
converted object. Either all pending migrations commit together with the new data version,
or nothing changes.

A datastore written by a newer build (stored data version above `data_version()`) is refused
with `DatastoreTooNew`, before anything is read or written: the fix is the newer binary, or
restoring the backup the upgrade took before it migrated (`dvp datastore restore`).

`dvp upgrade` backs the datastore up before the new server first opens it (migrations run
there), and restores that backup when it rolls back.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from controlplane.common.version import __version__

log = logging.getLogger(__name__)

BASE_DATA_VERSION = 1


class DatastoreTooNew(RuntimeError):
    """The datastore was written by a newer build than this one."""


@dataclass(frozen=True)
class Migration:
    """Converts the stored objects of `resources` ("<group>/<resource>") to data version `version`."""

    version: int
    name: str
    resources: tuple[str, ...]
    convert: Callable[[dict[str, Any]], bool]
    """Edits one object in place; returns True when it changed it."""


@dataclass
class MigrationReport:
    from_version: int
    to_version: int
    applied: list[str] = field(default_factory=list)
    changed_objects: int = 0


_MIGRATIONS: list[Migration] = []
"""The migrations of this tree, in order (none yet beyond the base layout)."""


def registered() -> list[Migration]:
    """Every migration this build carries, sorted by version (test builds add their own)."""
    from controlplane.common import upgradetest

    extra = [Migration(version=v, name=n, resources=r, convert=c) for v, n, r, c in upgradetest.migrations()]
    return sorted([*_MIGRATIONS, *extra], key=lambda m: m.version)


def data_version() -> int:
    """The highest data version this build reads and writes."""
    return max([BASE_DATA_VERSION, *(m.version for m in registered())])


def stored_data_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE name='data_version'").fetchone()
    return int(row[0]) if row else BASE_DATA_VERSION


def _set_meta(cur: sqlite3.Cursor, name: str, value: str) -> None:
    cur.execute("INSERT OR REPLACE INTO meta VALUES(?, ?)", (name, value))


def migrate(conn: sqlite3.Connection, *, path: str = "the datastore") -> MigrationReport:
    """Bring the datastore behind `conn` (tables created, autocommit mode) to `data_version()`."""
    current = stored_data_version(conn)
    target = data_version()
    if current > target:
        raise DatastoreTooNew(
            f"{path} holds data version {current}, written by a newer dvp; this dvp ({__version__}) reads up to "
            f"data version {target}. Run the newer dvp, or restore the backup taken before the upgrade "
            f"(`dvp datastore restore --data-dir DIR --from /var/lib/dvp/backups/<upgrade>.db`).")
    report = MigrationReport(current, target)
    pending = [m for m in registered() if m.version > current]
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        if pending:
            rv = max(conn.execute("SELECT max(rv) FROM objects").fetchone()[0] or 0,
                     conn.execute("SELECT max(rv) FROM log").fetchone()[0] or 0,
                     int((conn.execute("SELECT value FROM meta WHERE name='compacted'").fetchone() or ["0"])[0]))
            for m in pending:
                for resource in m.resources:
                    rows = conn.execute("SELECT key, data FROM objects WHERE key >= ? AND key < ?",
                                        (resource + "/", resource + "/\uffff")).fetchall()
                    for key, data in rows:
                        obj = orjson.loads(data)
                        if not m.convert(obj):
                            continue
                        rv += 1
                        obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
                        raw = orjson.dumps(obj)
                        cur.execute("UPDATE objects SET rv=?, data=? WHERE key=?", (rv, raw, key))
                        cur.execute("INSERT INTO log(rv, key, type, data) VALUES(?,?,?,?)", (rv, key, "MODIFIED", raw))
                        report.changed_objects += 1
                report.applied.append(f"{m.version}:{m.name}")
                log.info("datastore migration %s (data version %d) applied", m.name, m.version)
            history = json.loads((conn.execute("SELECT value FROM meta WHERE name='migrations'").fetchone()
                                  or ["[]"])[0])
            history.append({"by": __version__, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "from": current, "to": target, "applied": report.applied,
                            "changedObjects": report.changed_objects})
            _set_meta(cur, "migrations", json.dumps(history))
        _set_meta(cur, "data_version", str(max(current, target)))
        _set_meta(cur, "written_by", __version__)
        cur.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            cur.execute("ROLLBACK")
        raise
    return report
