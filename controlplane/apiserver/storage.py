"""The datastore: SQLite (WAL, synchronous=FULL) underneath, every live object in memory.

Layout of `DIR/state.db`:

    objects(key TEXT PRIMARY KEY, rv INTEGER, data BLOB)   current state, one row per object
    log(rv INTEGER PRIMARY KEY, key TEXT, type TEXT, data BLOB)   change history for watches
    meta(name TEXT PRIMARY KEY, value TEXT)                compacted revision, schema version,
                                                           data version, migration history

A key is `<group>/<resource>/<namespace>/<name>` (namespace empty for cluster-scoped kinds).
The cluster-wide resourceVersion is the log's revision: one counter, bumped by every write.

All writes go through one writer task that batches whatever is queued into one
transaction and one fsync (group commit): a write is acknowledged only after its commit,
so it survives SIGKILL and power loss. Preconditions (exists, resourceVersion) are checked
inside the writer against the latest state, so two writers racing on one object end as
one success and one Conflict. After each commit the in-memory state is updated and the
events are handed to the watch hub in revision order.

On open, pending storage migrations run first (`controlplane.apiserver.migrations`), in one
transaction; a datastore written by a newer build is refused before anything is loaded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from controlplane.apiserver import migrations, seat
from controlplane.apiserver.datastore import (
    Conflict,
    DiskFull,
    Event,
    Exists,
    Expired,
    NotFound,
    StorageError,
    Stored,
    Unavailable,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"


@dataclass
class _Op:
    verb: str  # create | update | delete
    resource: str
    key: str
    obj: dict[str, Any] | None
    expected_rv: int | None
    future: asyncio.Future[Stored]


@dataclass
class StoreSettings:
    history_events: int = 50_000
    """How many past changes watches can resume from; older ones answer 410 Gone."""
    max_batch: int = 256
    compact_every: int = 1000


def split_key(full: str) -> tuple[str, str]:
    group, resource, ns, name = full.split("/", 3)
    return f"{group}/{resource}", f"{ns}/{name}"


class Store:
    """The SQLite driver of `datastore.Datastore` (registered as "sqlite")."""

    def __init__(self, path: Path, *, settings: StoreSettings | None = None) -> None:
        self.path = path
        self.settings = settings or StoreSettings()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(
            """
            CREATE TABLE IF NOT EXISTS objects(key TEXT PRIMARY KEY, rv INTEGER NOT NULL, data BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS log(rv INTEGER PRIMARY KEY, key TEXT NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);
            """
        )
        self._data: dict[str, dict[str, Stored]] = {}
        self.history: deque[Event] = deque()
        self.rv = 0
        """The latest revision whose batch is committed and handed to the listeners: what lists
        and watch bookmarks may promise (a write in flight has its own `_next_rv`)."""
        self._next_rv = 0
        self.compacted_rv = 0
        self._queue: asyncio.Queue[_Op] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dvp-store-commit")
        self._listeners: list[Callable[[list[Event]], None]] = []
        self._since_compact = 0
        try:
            self.migration = migrations.migrate(self._conn, path=str(path))
        except BaseException:
            self._executor.shutdown(wait=False)
            self._conn.close()
            raise
        self._load()

    # -- start-up ------------------------------------------------------------------------------
    def _load(self) -> None:
        row = self._conn.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
        if row is None:
            self._conn.execute("INSERT INTO meta VALUES('schema', ?)", (SCHEMA_VERSION,))
        row = self._conn.execute("SELECT value FROM meta WHERE name='compacted'").fetchone()
        self.compacted_rv = int(row[0]) if row else 0
        for key, rv, data in self._conn.execute("SELECT key, rv, data FROM objects"):
            resource, k = split_key(key)
            self._data.setdefault(resource, {})[k] = Stored(rv, bytes(data), orjson.loads(data))
        last: dict[str, Stored] = {}
        for rv, key, typ, data in self._conn.execute("SELECT rv, key, type, data FROM log ORDER BY rv"):
            resource, k = split_key(key)
            new = Stored(rv, bytes(data), orjson.loads(data))
            self.history.append(Event(rv, typ, resource, k, new, last.get(key)))
            last[key] = new
        max_obj = self._conn.execute("SELECT max(rv) FROM objects").fetchone()[0] or 0
        max_log = self._conn.execute("SELECT max(rv) FROM log").fetchone()[0] or 0
        self.rv = self._next_rv = max(max_obj, max_log, self.compacted_rv)
        if self.history:
            self.compacted_rv = max(self.compacted_rv, self.history[0].rv - 1)

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="store-writer")

    async def close(self) -> None:
        if self._writer:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        self._executor.shutdown(wait=True)
        self._conn.close()

    def alive(self) -> bool:
        """Whether the writer task runs (health checks)."""
        return self._writer is not None and not self._writer.done()

    def subscribe(self, listener: Callable[[list[Event]], None]) -> None:
        """Call `listener` with every committed batch of events, in revision order."""
        self._listeners.append(listener)

    # -- reads (from memory; always the latest committed state) --------------------------------
    def get(self, resource: str, key: str) -> Stored | None:
        return self._data.get(resource, {}).get(key)

    def items(self, resource: str, namespace: str | None = None) -> Iterator[tuple[str, Stored]]:
        """Objects of a resource in key order, optionally only one namespace's."""
        bucket = self._data.get(resource, {})
        if namespace:
            prefix = namespace + "/"
            keys = sorted(k for k in bucket if k.startswith(prefix))
        else:
            keys = sorted(bucket)
        for k in keys:
            value = bucket.get(k)
            if value is not None:
                yield k, value

    def count(self, resource: str) -> int:
        return len(self._data.get(resource, {}))

    def resources(self) -> list[str]:
        return list(self._data)

    def events_since(self, rv: int) -> list[Event]:
        """Changes after `rv` still in history; raises `Expired` if `rv` was compacted away."""
        if rv < self.compacted_rv:
            raise Expired(rv, self.compacted_rv + 1)
        if not self.history or rv >= self.history[-1].rv:
            return []
        lo, hi = 0, len(self.history)
        while lo < hi:  # first event with event.rv > rv
            mid = (lo + hi) // 2
            if self.history[mid].rv <= rv:
                lo = mid + 1
            else:
                hi = mid
        return [self.history[i] for i in range(lo, len(self.history))]

    # -- writes ---------------------------------------------------------------------------------
    async def create(self, resource: str, key: str, obj: dict[str, Any]) -> Stored:
        return await self._submit("create", resource, key, obj, None)

    async def update(self, resource: str, key: str, obj: dict[str, Any], expected_rv: int) -> Stored:
        return await self._submit("update", resource, key, obj, expected_rv)

    async def delete(self, resource: str, key: str, expected_rv: int | None) -> Stored:
        return await self._submit("delete", resource, key, None, expected_rv)

    async def _submit(self, verb: str, resource: str, key: str, obj: dict[str, Any] | None,
                      expected_rv: int | None) -> Stored:
        assert self._queue is not None, "store not started"
        fut: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Op(verb, resource, key, obj, expected_rv, fut))
        seat.release()  # the commit is off the CPU: the next request in turn runs meanwhile
        return await fut

    async def _write_loop(self) -> None:
        assert self._queue is not None
        while True:
            ops = [await self._queue.get()]
            while len(ops) < self.settings.max_batch and not self._queue.empty():
                ops.append(self._queue.get_nowait())
            try:
                await self._commit_batch(ops)
            except Exception as exc:  # never let the writer die: fail this batch, go on
                full = _disk_full(exc)
                if full:  # said once per batch, without a stack: the disk, not the code
                    log.error("datastore: the disk of %s is full; %d write(s) refused, nothing stored "
                              "(writes succeed again once there is room)", self.path, len(ops))
                else:
                    log.exception("datastore commit failed")
                error = DiskFull if full else Unavailable
                for op in ops:
                    if not op.future.done():
                        op.future.set_exception(error(op.resource, op.key, f"datastore write failed: {exc}"))

    async def _commit_batch(self, ops: list[_Op]) -> None:
        pending: dict[tuple[str, str], Stored | None] = {}
        events: list[Event] = []
        outcomes: list[tuple[_Op, Stored | StorageError]] = []
        start_rv = self._next_rv
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for op in ops:
                slot = (op.resource, op.key)
                current = pending[slot] if slot in pending else self.get(op.resource, op.key)
                try:
                    stored, event = self._apply(cur, op, current)
                except StorageError as exc:
                    outcomes.append((op, exc))
                    continue
                pending[slot] = None if event.type == "DELETED" else stored
                events.append(event)
                outcomes.append((op, stored))
            self._since_compact += len(events)
            if self._since_compact >= self.settings.compact_every:
                self._compact(cur)
            await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.commit)
        except BaseException:
            self._next_rv = start_rv
            if self._conn.in_transaction:
                self._conn.rollback()
            raise
        # from here to the listeners nothing awaits: a reader sees the batch whole or not at all,
        # so a list or a bookmark never names a revision whose events its watchers have not got
        self.rv = self._next_rv
        for (resource, key), value in pending.items():
            bucket = self._data.setdefault(resource, {})
            if value is None:
                bucket.pop(key, None)
            else:
                bucket[key] = value
        self.history.extend(events)
        while len(self.history) > self.settings.history_events:
            self.compacted_rv = self.history.popleft().rv
        for op, outcome in outcomes:
            if op.future.done():
                continue
            if isinstance(outcome, StorageError):
                op.future.set_exception(outcome)
            else:
                op.future.set_result(outcome)
        if events:
            for listener in self._listeners:
                listener(events)

    def _apply(self, cur: sqlite3.Cursor, op: _Op, current: Stored | None) -> tuple[Stored, Event]:
        full_key = f"{op.resource}/{op.key}"
        if op.verb == "create":
            if current is not None:
                raise Exists(op.resource, op.key)
        else:
            if current is None:
                raise NotFound(op.resource, op.key)
            if op.expected_rv is not None and op.expected_rv != current.rv:
                raise Conflict(op.resource, op.key, f"{op.resource} {op.key} is at revision {current.rv}, "
                               f"not {op.expected_rv}")
        rv = self._next_rv + 1
        if op.verb == "delete":
            assert current is not None
            obj = current.copy()
            obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
            raw = orjson.dumps(obj)
            cur.execute("DELETE FROM objects WHERE key=?", (full_key,))
            typ = "DELETED"
        else:
            assert op.obj is not None
            obj = op.obj
            obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
            raw = orjson.dumps(obj)
            cur.execute("INSERT OR REPLACE INTO objects(key, rv, data) VALUES(?,?,?)", (full_key, rv, raw))
            typ = "ADDED" if op.verb == "create" else "MODIFIED"
        cur.execute("INSERT INTO log(rv, key, type, data) VALUES(?,?,?,?)", (rv, full_key, typ, raw))
        self._next_rv = rv
        stored = Stored(rv, raw, obj)
        return stored, Event(rv, typ, op.resource, op.key, stored, current)

    def _compact(self, cur: sqlite3.Cursor) -> None:
        """Keep the last `history_events` changes on disk, as in memory."""
        self._since_compact = 0
        floor = self._next_rv - self.settings.history_events
        if floor > 0:
            cur.execute("DELETE FROM log WHERE rv <= ?", (floor,))
            cur.execute("INSERT OR REPLACE INTO meta VALUES('compacted', ?)", (str(floor),))


@dataclass
class Snapshot:
    """The state a list saw: its revision and its items (for continue tokens)."""

    rv: int
    items: list[tuple[str, Stored]] = field(default_factory=list)


def _disk_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL (13), or ENOSPC/EDQUOT from the file system."""
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)

