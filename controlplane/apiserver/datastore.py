"""The datastore contract of the API server: what any storage driver gives the service.

The service (`service.py`), the watch hub, garbage collection and the namespace/CRD
lifecycle use storage only through `Datastore`: reads of the latest committed state from
memory, writes that are acknowledged once durable and checked against the latest state
inside the driver (an object that exists, the resourceVersion the writer read), one
cluster-wide revision counter, and the history of changes that watches resume from.

A driver reports failures with the storage-level errors below, never HTTP: the service
turns them into Kubernetes Status responses in one place (`errors.from_storage`).
Drivers are registered by name in `DRIVERS` (k3s's datastore idea); every driver passes
the conformance suite in `tests/unit/apiserver/test_datastore_conformance.py`.
Key layout: a resource is `"<group>/<plural>"`, a key `"<namespace>/<name>"` (namespace
empty for cluster-scoped kinds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson


class StorageError(Exception):
    """A write or read the datastore refused; subclasses say why."""

    def __init__(self, resource: str, key: str, message: str = "") -> None:
        super().__init__(message or f"{resource} {key}")
        self.resource = resource
        self.key = key


class NotFound(StorageError):
    """The object does not exist (update, delete)."""


class Exists(StorageError):
    """An object with this key already exists (create)."""


class Conflict(StorageError):
    """The object changed since the writer read it (its revision is not the expected one)."""


class Expired(StorageError):
    """The revision asked for is older than the history still kept (watch resume)."""

    def __init__(self, rv: int, oldest: int) -> None:
        super().__init__("", "", f"too old resource version: {rv} ({oldest})")
        self.rv = rv
        self.oldest = oldest


class Unavailable(StorageError):
    """The write could not be made durable (disk full, I/O error); nothing was acknowledged."""


class DiskFull(Unavailable):
    """The datastore's disk is full: nothing was stored; writes succeed again once there is room."""


@dataclass(frozen=True, slots=True)
class Stored:
    """One version of one object: its revision, its JSON bytes, and the parsed dict.

    The dict is shared by readers and must never be mutated; `copy()` gives a private one.
    """

    rv: int
    raw: bytes
    obj: dict[str, Any]

    def copy(self) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(self.raw)
        return result


@dataclass(frozen=True, slots=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    resource: str  # "<group>/<resource>"
    key: str  # "<namespace>/<name>"
    new: Stored
    prev: Stored | None


class Datastore(Protocol):
    rv: int
    """The latest committed revision (cluster-wide, bumped by every write)."""
    compacted_rv: int
    """Changes up to this revision are no longer in the history."""

    def start(self) -> None:
        """Start accepting writes (inside the running event loop)."""

    async def close(self) -> None: ...

    def subscribe(self, listener: Callable[[list[Event]], None]) -> None:
        """Call `listener` with every committed batch of events, in revision order."""

    def get(self, resource: str, key: str) -> Stored | None: ...

    def items(self, resource: str, namespace: str | None = None) -> Iterator[tuple[str, Stored]]:
        """Objects of a resource in key order, optionally only one namespace's."""

    def resources(self) -> list[str]: ...

    def events_since(self, rv: int) -> list[Event]:
        """Changes after `rv`, oldest first; raises `Expired` when `rv` is older than the history."""

    async def create(self, resource: str, key: str, obj: dict[str, Any]) -> Stored:
        """Store a new object; raises `Exists`."""

    async def update(self, resource: str, key: str, obj: dict[str, Any], expected_rv: int) -> Stored:
        """Replace an object last seen at `expected_rv`; raises `NotFound` or `Conflict`."""

    async def delete(self, resource: str, key: str, expected_rv: int | None) -> Stored:
        """Remove an object (if still at `expected_rv`); returns its last version with the
        deletion's revision; raises `NotFound` or `Conflict`."""


def _sqlite(path: Path, **options: Any) -> Datastore:
    from controlplane.apiserver.storage import Store, StoreSettings

    return Store(path, settings=StoreSettings(**options))


DRIVERS: dict[str, Callable[..., Datastore]] = {"sqlite": _sqlite}
"""Datastore drivers by name: `open_datastore("sqlite", DATA_DIR / "state.db")`."""


def open_datastore(driver: str, path: Path, **options: Any) -> Datastore:
    try:
        factory = DRIVERS[driver]
    except KeyError:
        raise ValueError(f"unknown datastore driver {driver!r}: use one of {', '.join(sorted(DRIVERS))}") from None
    return factory(path, **options)
