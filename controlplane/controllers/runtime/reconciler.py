"""A reconciler for one kind: an ordered chain of small handlers over one `State`, then one
write — status through the status subresource guarded by the resourceVersion the cycle
read, then metadata (finalizers, labels, annotations, owners) and the spec fields the
reconciler owns (`spec_fields`, e.g. a Node's taints) in one patch guarded the same way.

A reconcile always reports, as DVP's reconcilers do: every handler of the chain runs even
when an earlier one failed; a failing handler's condition (its `condition`, or the kind's
`failure_condition`) says what failed and what to do; the status is written; then the
handlers' errors, joined in one `ExceptionGroup`, go to the controller loop, which retries
the key (`common.kube.errors` decides how soon). A failure report lasts as long as the failure:
each cycle starts by taking back the previous cycle's reports (`clear_failures`). A lost race
is a quick requeue, not an error.

A cycle does not work from a copy its own last write has made stale: the reconciler remembers
the resourceVersions its writes replaced, and a key whose cached object is still one of them
waits for the watch event of the write (which queues it again) instead of deciding again from
old data — which would redo creates and events and end in a conflicting write. The wait is
bounded (`stale_cache_wait`, the key is looked at again then): an event that never comes
costs a delay, never a stuck object.

Nor does a cycle run again only because its own write came back (`drop_echoes`): the watch
event of a version this reconciler's write made is the object it decided on, written, so a
cycle over it would decide the same and write nothing (controller-runtime's generation and
resourceVersion predicates do the same work). Such an echo wakes the key only when a cycle is
already waiting for it (the stale-cache wait above). A kind opts in once every handler of its
chain finishes its decision in one cycle, waking up again only through watches of related
objects or a requeue, never through its own status write.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from controlplane.api import condition_builder as conditions
from controlplane.api.condition_builder import FailureReason
from controlplane.common.kube import errors
from controlplane.common.kube.client import KubeError, Resource
from controlplane.common.kube.controller import Result
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.state import State

log = logging.getLogger(__name__)

_META_FIELDS = ("finalizers", "labels", "annotations", "ownerReferences")


class Handler(Protocol):
    name: str

    def handle(self, state: State) -> None: ...


class ReconcileError(ExceptionGroup):
    """The errors of one reconcile's handlers (and of its write), joined."""


class Reconciler:
    def __init__(self, ctx: Context, resource: Resource, handlers: list[Handler], *,
                 failure_condition: str | None = None, after: list[Handler] | None = None,
                 spec_fields: tuple[str, ...] = (), drop_echoes: bool = False) -> None:
        self.ctx = ctx
        self.drop_echoes = drop_echoes
        """Whether the watch event of this reconciler's own write is dropped (`echo`)."""
        self.spec_fields = spec_fields
        """Spec fields its handlers may set (other spec changes are never written)."""
        self.resource = resource
        self.handlers = handlers
        self.after = after or []
        """Handlers run after the chain even when one of it stopped the cycle (phase events)."""
        self.failure_condition = failure_condition
        """The condition that reports a failing handler that names none of its own."""
        self._replaced: dict[tuple[str, str], tuple[set[str], float]] = {}
        """Per key, the resourceVersions this reconciler's writes replaced (the cache may still
        hold one) and until when to wait for the cache to move past them."""
        self._replaced_lock = threading.Lock()
        self._echoes: dict[tuple[str, str], set[str]] = {}
        """Per key, the resourceVersions this reconciler's writes made since its last cycle."""
        self._deferred: set[tuple[str, str]] = set()
        """Keys whose cycle waits for the watch event of a write (those events are never dropped)."""

    def echo(self, obj: dict[str, Any]) -> bool:
        """Whether a watch event of this kind only brings back this reconciler's own write (a
        version it made, with no cycle waiting for it): nothing in it for a cycle to decide."""
        if not self.drop_echoes:
            return False
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        with self._replaced_lock:
            return key not in self._deferred and meta.get("resourceVersion") in self._echoes.get(key, ())

    def _stale(self, key: tuple[str, str], current: dict[str, Any] | None) -> float | None:
        """Seconds left to wait when the cache still holds a version of the object this
        reconciler has replaced; None when the cycle can go on."""
        with self._replaced_lock:
            entry = self._replaced.get(key)
            if entry is not None:
                replaced, until = entry
                left = until - time.monotonic()
                if current is not None and current["metadata"].get("resourceVersion") in replaced and left > 0:
                    # the echo may have reached the cache (and been dropped) since `current` was read:
                    # looked at under the lock `echo` takes, the cache says whether to wait for it
                    latest = self.ctx.cached(self.resource, *key)
                    if self.drop_echoes and latest is not None and \
                            latest["metadata"].get("resourceVersion") not in replaced:
                        return 0.0  # the cycle runs again at once, on the version that came
                    self._deferred.add(key)
                    return left
                del self._replaced[key]  # the cache has caught up, the object is gone, or the wait is over
            # a cycle on what the cache holds now: the echoes of earlier writes are behind it
            self._deferred.discard(key)
            self._echoes.pop(key, None)
            return None

    def _wrote(self, key: tuple[str, str], before: str, after: str) -> None:
        if before != after:  # a write that changed nothing keeps the version
            with self._replaced_lock:
                replaced, _ = self._replaced.get(key) or (set(), 0.0)
                replaced.add(before)
                self._replaced[key] = (replaced, time.monotonic() + self.ctx.runtime.stale_cache_wait)
                if self.drop_echoes:
                    self._echoes.setdefault(key, set()).add(after)

    def __call__(self, key: Any) -> Result | None:
        namespace, name = key
        current = self.ctx.cached(self.resource, namespace, name)
        if current is None:
            self._stale((namespace, name), None)
            return None
        wait = self._stale((namespace, name), current)
        if wait is not None:
            return Result(wait)  # the write's watch event queues the key sooner, as a rule
        with self.ctx.recorder.held():  # the cycle's events go out after its writes
            return self._cycle(State(self.ctx, self.resource, current), namespace, name)

    def _cycle(self, state: State, namespace: str, name: str) -> Result | None:
        conditions.clear_failures(state.status)
        failures: list[tuple[Handler, Exception]] = []
        for handler in self.handlers:
            try:
                handler.handle(state)
            except Exception as exc:  # noqa: BLE001 - joined and re-raised after the status is written
                exc.add_note(f"handler {handler.name!r} of {self.resource.kind} {namespace}/{name}")
                failures.append((handler, exc))
            if state.stop:
                break
        for handler in self.after:
            try:
                handler.handle(state)
            except Exception as exc:  # noqa: BLE001 - as above
                exc.add_note(f"handler {handler.name!r} of {self.resource.kind} {namespace}/{name}")
                failures.append((handler, exc))
        for failing, error in failures:  # last, so a later handler does not overwrite the report
            self.report(state, failing, error)
        failed = [error for _, error in failures]
        try:
            self.write(state)
        except Exception as write_error:
            if not failed:
                raise
            failed.append(write_error)
        if failed:
            raise ReconcileError(f"{len(failed)} handler(s) of {self.resource.kind} {namespace}/{name} failed", failed)
        return Result(state.requeue_after) if state.requeue_after is not None else None

    def report(self, state: State, handler: Handler, exc: Exception) -> None:
        """Leave the failure in the status: the handler's condition says what failed and what to do."""
        if errors.is_conflict(exc):
            return  # a lost race says nothing about the object; the quick requeue settles it
        type_ = getattr(handler, "condition", None) or self.failure_condition
        if not type_:
            log.warning("%s %s/%s: handler %s failed with no condition to report it in: %s", self.resource.kind,
                        state.namespace, state.name, handler.name, exc)
            return
        api_down = errors.is_temporary(exc) and not isinstance(exc, errors.TemporaryError)
        reason = FailureReason.API_UNAVAILABLE if api_down else FailureReason.RECONCILE_FAILED
        conditions.set_condition(state.status, type_, conditions.UNKNOWN, reason,
                                 f"{handler.name}: {errors.describe(exc)}", generation=state.generation)

    def write(self, state: State) -> None:
        current = state.current
        rv = current["metadata"]["resourceVersion"]
        ns = current["metadata"].get("namespace")
        key = (ns or "", state.name)
        try:
            if (state.changed.get("status") or {}) != (current.get("status") or {}):
                body = {**current, "status": state.changed["status"]}  # only serialised: no copy of the rest
                updated = self.ctx.kube.replace(self.resource, body, subresource="status")
                self._wrote(key, rv, updated["metadata"]["resourceVersion"])
                rv = updated["metadata"]["resourceVersion"]
            patch: dict[str, Any] = {}
            for f in _META_FIELDS:
                new, old = state.changed["metadata"].get(f), current["metadata"].get(f)
                if (new or None) != (old or None):
                    patch[f] = _map_patch(new, old) if isinstance(new, dict) and isinstance(old, dict) else (
                        new if new else None)
            spec_patch = _changed_fields(state.changed.get("spec") or {}, current.get("spec") or {}, self.spec_fields)
            if patch or spec_patch:
                patch["resourceVersion"] = rv
                merge: dict[str, Any] = {"metadata": patch, **({"spec": spec_patch} if spec_patch else {})}
                patched = self.ctx.kube.patch(self.resource, state.name, merge, ns)
                self._wrote(key, rv, ((patched or {}).get("metadata") or {}).get("resourceVersion") or rv)
        except KubeError as exc:
            if exc.not_found:
                return
            raise


def _changed_fields(new: dict[str, Any], old: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The merge patch that makes `fields` of `old` those of `new` (None removes one)."""
    return {f: new.get(f) or None for f in fields if (new.get(f) or None) != (old.get(f) or None)}


def _map_patch(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch from map `old` to map `new` (labels, annotations): a removed key is null,
    as a JSON merge patch needs (a plain new map would keep it)."""
    if not new:
        return None
    return {**{k: None for k in old if k not in new}, **{k: v for k, v in new.items() if old.get(k) != v}}

