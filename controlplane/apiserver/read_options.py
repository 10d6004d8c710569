"""Which revision a read sees, as kube-apiserver decides it from the query parameters.

- `limit`: a positive page size; zero or negative means no limit (as kube does); anything
  not an integer is a 400.
- `resourceVersion` + `resourceVersionMatch`:
  unset / "0"            the current state (kube may serve a cache; ours is always current);
  N, `NotOlderThan`      any state at least as new as N: the current one, unless N is in the
                         future (504 "Too large resource version");
  N, `Exact`             the state exactly at revision N, rebuilt from the change history
                         (410 Expired once that history was compacted).
- `continue`: every page of a paged list comes from the revision of its first page.
- `sendInitialEvents=true` on a watch (the "watch list" of client-go): requires
  `resourceVersionMatch=NotOlderThan` and `allowWatchBookmarks=true`, sends the current
  state as ADDED events and then one BOOKMARK annotated `k8s.io/initial-events-end: "true"`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from controlplane.apiserver import errors
from controlplane.apiserver.datastore import Datastore, Stored

EXACT, NOT_OLDER_THAN = "Exact", "NotOlderThan"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def parse_limit(query: Mapping[str, str]) -> int:
    value = query.get("limit", "")
    if not value:
        return 0
    try:
        limit = int(value)
    except ValueError as exc:
        raise errors.bad_request(f'limit: Invalid value: "{value}": must be an integer') from exc
    return max(limit, 0)


@dataclass(frozen=True)
class ReadVersion:
    rv: int | None
    """The asked revision, None for "current"."""
    match: str

    @property
    def exact(self) -> bool:
        return self.match == EXACT and self.rv is not None


def _too_large(rv: int, current: int) -> errors.ApiError:
    return errors.ApiError(504, "Timeout", f"Too large resource version: {rv}, current: {current}",
                           {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                            "retryAfterSeconds": 1})


def read_version(query: Mapping[str, str], store: Datastore, *, watch: bool = False) -> ReadVersion:
    """Validate resourceVersion/resourceVersionMatch of a get, list or watch."""
    raw = query.get("resourceVersion", "")
    match = query.get("resourceVersionMatch", "")
    rv: int | None = None
    if raw:
        try:
            rv = int(raw)
        except ValueError as exc:
            raise errors.bad_request(f'resourceVersion: Invalid value: "{raw}": must be an integer') from exc
        if rv < 0:
            raise errors.bad_request(f'resourceVersion: Invalid value: "{raw}": must not be negative')
    if match not in ("", EXACT, NOT_OLDER_THAN):
        raise errors.bad_request(f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                                 f'"{EXACT}", "{NOT_OLDER_THAN}"')
    if match and not raw and not (watch and query.get("sendInitialEvents")):
        raise errors.bad_request("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
                                 "resourceVersion is provided")
    if match == EXACT and rv == 0:
        raise errors.bad_request('resourceVersionMatch: Forbidden: resourceVersionMatch "Exact" is forbidden for '
                                 'resourceVersion "0"')
    if watch:
        initial = query.get("sendInitialEvents", "")
        if initial not in ("", "true", "false"):
            raise errors.bad_request(f'sendInitialEvents: Invalid value: "{initial}": must be true or false')
        if initial:
            if match != NOT_OLDER_THAN:
                raise errors.bad_request('resourceVersionMatch: Forbidden: sendInitialEvents requires setting '
                                         'resourceVersionMatch to NotOlderThan')
            if query.get("allowWatchBookmarks") not in ("true", "1"):
                raise errors.bad_request("allowWatchBookmarks: Forbidden: sendInitialEvents requires setting "
                                         "allowWatchBookmarks to true")
        elif match:
            raise errors.bad_request("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch "
                                     "unless sendInitialEvents is provided")
    if rv and rv > store.rv and not watch:
        raise _too_large(rv, store.rv)
    return ReadVersion(None if rv == 0 else rv, match)


def _undo(store: Datastore, resource: str, rv: int) -> list[tuple[str, Stored | None]]:
    """(key, state at `rv`) for every object of `resource` changed after `rv`, oldest change last."""
    if rv < store.compacted_rv:
        raise errors.gone(f"too old resource version: {rv} ({store.compacted_rv + 1})")
    restored: list[tuple[str, Stored | None]] = []
    for event in reversed(store.events_since(rv)):
        if event.resource != resource:
            continue
        if event.type == "ADDED":
            restored.append((event.key, None))
        elif event.prev is None:  # the state before this change was compacted away
            raise errors.gone(f"too old resource version: {rv} ({event.rv})")
        else:
            restored.append((event.key, event.prev))
    return restored


def object_at(store: Datastore, resource: str, key: str, rv: int) -> Stored | None:
    """One object as it was at revision `rv` (None: it did not exist then)."""
    state = store.get(resource, key)
    for k, prev in _undo(store, resource, rv):
        if k == key:
            state = prev
    return state


def items_at(store: Datastore, resource: str, namespace: str | None, rv: int) -> list[tuple[str, Stored]]:
    """Every object of `resource` (in `namespace`) as it was at revision `rv`, in key order."""
    state: dict[str, Stored | None] = dict(store.items(resource, namespace))
    prefix = f"{namespace}/" if namespace else ""
    for key, prev in _undo(store, resource, rv):
        if key.startswith(prefix):
            state[key] = prev
    return [(k, v) for k, v in sorted(state.items()) if v is not None]


def _continue_rv(token: str) -> int | None:
    try:
        rv = orjson.loads(base64.urlsafe_b64decode(token.encode())).get("rv")
    except (ValueError, AttributeError, TypeError):
        return None  # the list itself refuses a malformed token
    return rv if isinstance(rv, int) else None


def list_snapshot(query: Mapping[str, str], store: Datastore, resource: str,
                  namespace: str | None) -> tuple[int, list[tuple[str, Stored]]] | None:
    """The revision and objects a list shows, or None for "the current state".

    `resourceVersionMatch=Exact` pins the revision asked; a `continue` token pins the revision
    of the list's first page, so every page comes from one consistent state, as with kube-apiserver
    (410 once the change log no longer reaches back to it)."""
    version = read_version(query, store)
    rv = version.rv if version.exact else None
    token = query.get("continue", "")
    if rv is None and token:
        rv = _continue_rv(token)
        if rv is not None and rv < store.compacted_rv:
            raise errors.gone("The provided continue parameter is too old to display a consistent list result. "
                              "You can start a new list without the continue parameter.")
    if rv is None or rv == store.rv:
        return None
    return rv, items_at(store, resource, namespace, rv)


def initial_events_end(kind: str, api_version: str, rv: int) -> dict[str, Any]:
    """The BOOKMARK that ends the initial events of a `sendInitialEvents=true` watch."""
    return {"type": "BOOKMARK", "object": {
        "kind": kind, "apiVersion": api_version,
        "metadata": {"resourceVersion": str(rv), "annotations": {INITIAL_EVENTS_END: "true"}}}}
