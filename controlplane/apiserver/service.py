"""Kubernetes object semantics, independent of HTTP: create, update, patch, delete, get, list.

The HTTP layer (`handlers.py`), the garbage collector and the server's own bootstrap all go
through here, so every write gets the same treatment: server-owned metadata (uid,
creationTimestamp, generation bumped on spec changes only), the status subresource split,
pruning/defaulting/validation, finalizers and deletionTimestamp, optimistic concurrency.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from controlplane.apiserver import (
    admission_defaults,
    admission_finalizers,
    admission_vmmac,
    admission_vmpool,
    conversion,
    errors,
    kinds,
)
from controlplane.apiserver import patch as patching
from controlplane.apiserver.apply import writes
from controlplane.apiserver.apply.patching import server_side_apply
from controlplane.apiserver.apply.writes import WriteOptions
from controlplane.apiserver.bodies import (
    BodyLimits,
    check_storable,
    in_worker_if,
    json_size,
    off_loop_if_large,
)
from controlplane.apiserver.datastore import Datastore, StorageError, Stored
from controlplane.apiserver.errors import Cause
from controlplane.apiserver.metadata import validate_metadata
from controlplane.apiserver.resources import Registry, ResourceInfo
from controlplane.apiserver.selectors import FieldSelector, LabelSelector
from controlplane.common.jsoncopy import json_copy

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
PATCH_RETRIES = 16


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class DeleteOptions:
    propagation: str = "Background"
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False


@dataclass
class ListResult:
    items: list[Stored]
    rv: int
    continue_token: str = ""
    remaining: int | None = None


def object_key(info: ResourceInfo, namespace: str, name: str) -> str:
    return f"{namespace if info.namespaced else ''}/{name}"


def _rules_iterate(info: ResourceInfo) -> bool:
    """The kind's CEL rules iterate: its writes are checked off the event loop (`off_loop_if_large`)."""
    return info.schema is not None and info.schema.cel.iterates


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """What makes two versions different: everything but the resourceVersion and the time of
    managedFields entries (an unchanged object is not rewritten)."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")}
    meta["managedFields"] = [{k: v for k, v in e.items() if k != "time"} if isinstance(e, dict) else e
                             for e in (obj.get("metadata") or {}).get("managedFields") or []]
    return {**obj, "metadata": meta}


class ApiService:
    def __init__(self, store: Datastore, registry: Registry, *, limits: BodyLimits | None = None,
                 finalizers_on_create: bool = False) -> None:
        self.store = store
        self.registry = registry
        self.limits = limits or BodyLimits()
        self.finalizers_on_create = finalizers_on_create
        """Whether creates get their controller's finalizer (`admission_finalizers`): the controllers run."""
        # checks of a write by who makes it (RBAC escalation prevention): raise an ApiError to refuse
        self.write_checks: list[Callable[[ResourceInfo, dict[str, Any], dict[str, Any] | None], None]] = []

    # -- errors bound to one object ------------------------------------------------------------
    @staticmethod
    def _conflict(info: ResourceInfo, name: str) -> errors.ApiError:
        return errors.conflict(info.plural, info.group, name, errors.CONFLICT_ADVICE)

    @staticmethod
    async def _written(info: ResourceInfo, name: str, write: Awaitable[Stored]) -> Stored:
        """A datastore write, its storage-level errors answered as Kubernetes Status errors."""
        try:
            return await write
        except StorageError as exc:
            raise errors.from_storage(exc, info.plural, info.group, name) from exc

    # -- reads ----------------------------------------------------------------------------------
    def get(self, info: ResourceInfo, namespace: str, name: str) -> Stored:
        found = self.store.get(info.storage_resource, object_key(info, namespace, name))
        if found is None:
            raise errors.not_found(info.plural, info.group, name)
        return found

    def list(self, info: ResourceInfo, namespace: str, *, labels: LabelSelector | None = None,
             fields: FieldSelector | None = None, limit: int = 0, continue_token: str = "",
             at: tuple[int, list[tuple[str, Stored]]] | None = None) -> ListResult:
        """`at`: (revision, objects) to list from instead of the current state (resourceVersionMatch=Exact)."""
        rv = self.store.rv if at is None else at[0]
        start = ""
        if continue_token:
            try:
                token = orjson.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start = str(token["start"])
            except (ValueError, KeyError, TypeError) as exc:
                raise errors.bad_request(f"invalid continue token: {exc}") from exc
        ns = namespace if info.namespaced else None
        pinned = fields.name_equals() if fields else None
        if at is not None:
            candidates: list[tuple[str, Stored | None]] = list(at[1])
        elif pinned is not None and (ns or not info.namespaced):
            one = self.store.get(info.storage_resource, object_key(info, ns or "", pinned))
            candidates = [(object_key(info, ns or "", pinned), one)] if one else []
        else:
            candidates = list(self.store.items(info.storage_resource, ns))
        items: list[Stored] = []
        last_key = ""
        remaining = 0
        for key, stored in candidates:
            if stored is None or (start and key <= start):
                continue
            if labels and not labels.matches(stored.obj):
                continue
            if fields and not fields.matches(stored.obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(stored)
            last_key = key
        token = ""
        if remaining:
            token = base64.urlsafe_b64encode(orjson.dumps({"rv": rv, "start": last_key})).decode()
        return ListResult(items, rv, token, remaining if remaining else None)

    # -- create ---------------------------------------------------------------------------------
    def _check_namespace(self, info: ResourceInfo, namespace: str, name: str) -> None:
        if not info.namespaced:
            return
        ns = self.store.get("/namespaces", f"/{namespace}")
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if (ns.obj.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.forbidden(f'{info.plural} "{name}" is forbidden: unable to create new content in namespace '
                                   f"{namespace} because it is being terminated")

    def _check_identity(self, info: ResourceInfo, obj: Any, namespace: str) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        if obj.get("apiVersion") not in (None, info.api_version):
            raise errors.bad_request(f"the API version in the data ({obj.get('apiVersion')}) does not match the "
                                     f"expected API version ({info.api_version})")
        if obj.get("kind") not in (None, info.kind):
            raise errors.bad_request(f"the kind in the data ({obj.get('kind')}) does not match the expected kind "
                                     f"({info.kind})")
        obj["apiVersion"] = info.api_version
        obj["kind"] = info.kind
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if info.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent "
                                         "on the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return meta

    def _validate(self, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None,
                  options: WriteOptions | None = None, *, admit: bool = True) -> None:
        check_storable(info.kind, info.group, str((obj.get("metadata") or {}).get("name") or ""), obj, self.limits)
        if options is not None:
            writes.check_validation(info, obj, options)
        causes: list[Cause] = validate_metadata(obj.get("metadata"), namespaced=info.namespaced,
                                                name_is_label=info.kind == "Namespace" and info.builtin,
                                                name_is_path_segment=info.group == "rbac.authorization.k8s.io")
        causes += kinds.prepare(info, obj, old)
        if old is not None:
            causes += kinds.immutable_violation(info, obj, old)
        if info.schema is not None:
            info.schema.prune(obj)
            info.schema.apply_defaults(obj)
        if admit:  # mutating admission: after schema defaults, before validation (as kube-apiserver orders them)
            causes += admission_defaults.default(self.store, info, obj)
        if info.schema is not None and not causes and not (options is not None and options.typed_body):
            causes += info.schema.validate(obj, old)
        if admit and not causes:  # validating admission: after schema validation
            causes += admission_vmmac.validate(self.store, info, obj, old)
            causes += admission_vmpool.validate(info, obj, old)
            for check in self.write_checks:
                check(info, obj, old)
        if causes:
            name = (obj.get("metadata") or {}).get("name") or ""
            raise errors.invalid(info.kind, info.group, name, causes)

    async def create(self, info: ResourceInfo, namespace: str, obj: Any, *, dry_run: bool = False,
                     options: WriteOptions | None = None) -> Stored:
        options = options or WriteOptions()
        meta = self._check_identity(info, obj, namespace)
        self._check_namespace(info, namespace, str(meta.get("name") or meta.get("generateName") or ""))
        generate = not meta.get("name") and meta.get("generateName")
        for k in (*_SERVER_META, "resourceVersion", "selfLink"):
            meta.pop(k, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if info.tracks_generation:
            meta["generation"] = 1
        if info.has_status and not info.builtin:
            obj.pop("status", None)
        for _attempt in range(8 if generate else 1):
            if generate:
                meta["name"] = str(meta["generateName"]) + "".join(random.choices(_NAME_CHARS, k=5))
            await off_loop_if_large(obj, lambda: self._admit_create(info, obj, options), self.limits,
                                    costly=_rules_iterate(info))
            if dry_run:
                return Stored(self.store.rv, orjson.dumps(obj), obj)
            name = meta["name"]
            try:
                return await self._written(info, name, self.store.create(
                    info.storage_resource, object_key(info, namespace, name), self._to_storage(info, obj)))
            except errors.ApiError as exc:
                if not (generate and exc.reason == "AlreadyExists"):
                    raise
        raise errors.ApiError(500, "AlreadyExists", "could not generate a unique name; try again")

    def _to_storage(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        return conversion.to_storage(info, obj) if not info.is_storage_version else obj

    # -- update ---------------------------------------------------------------------------------
    async def update(self, info: ResourceInfo, namespace: str, name: str, obj: Any, *, subresource: str = "",
                     dry_run: bool = False, require_rv: bool | None = None,
                     options: WriteOptions | None = None) -> Stored:
        meta = self._check_identity(info, obj, namespace)
        if meta.get("name") not in (None, name):
            raise errors.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the "
                                     f"URL ({name})")
        meta["name"] = name
        current = self.get(info, namespace, name)
        body_rv = meta.get("resourceVersion")
        if require_rv is None:
            require_rv = not info.builtin
        if not body_rv and require_rv:
            raise errors.invalid(info.kind, info.group, name, [
                Cause("metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update")])
        if body_rv and str(body_rv) != str(current.rv):
            raise self._conflict(info, name)
        return await self._write_update(info, namespace, name, obj, current, subresource=subresource, dry_run=dry_run,
                                        options=options or WriteOptions())

    def _merge_for_update(self, info: ResourceInfo, obj: dict[str, Any], current: Stored,
                          subresource: str) -> dict[str, Any]:
        old = current.obj
        if subresource == "status":
            new = current.copy()
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            if "managedFields" in obj["metadata"]:  # recomputed from the old ones unless an apply set them
                new["metadata"]["managedFields"] = obj["metadata"]["managedFields"]
            return new
        new = obj
        meta = new["metadata"]
        for k in _SERVER_META:
            if k in (old.get("metadata") or {}):
                meta[k] = old["metadata"][k]
            else:
                meta.pop(k, None)
        if info.has_status:
            if "status" in old:
                new["status"] = json_copy(old["status"])
            else:
                new.pop("status", None)
        return new

    def _admit_create(self, info: ResourceInfo, obj: dict[str, Any], options: WriteOptions) -> None:
        """Validation and managed-field tracking of a create: off the event loop for large objects."""
        self._validate(info, obj, None, options)
        if not options.tracked:
            writes.track_create(info, obj, options)
            options.tracked = True
        if self.finalizers_on_create:  # after tracking, as kube's admission: owned by no manager
            admission_finalizers.add(info, obj)

    def _admit_update(self, info: ResourceInfo, new: dict[str, Any], old: dict[str, Any], options: WriteOptions,
                      subresource: str) -> None:
        """Validation and managed-field tracking of an update: off the event loop for large objects."""
        self._validate(info, new, old, options, admit=subresource != "status")
        if not options.tracked:
            writes.track_update(info, old, new, options, subresource=subresource)

    async def _write_update(self, info: ResourceInfo, namespace: str, name: str, obj: dict[str, Any],
                            current: Stored, *, subresource: str, dry_run: bool, options: WriteOptions) -> Stored:
        new = self._merge_for_update(info, obj, current, subresource)
        new = conversion.view(info, new)
        old_view = conversion.view(info, current.copy())
        await off_loop_if_large(new, lambda: self._admit_update(info, new, old_view, options, subresource),
                                self.limits, costly=_rules_iterate(info))
        old_meta = current.obj.get("metadata") or {}
        if old_meta.get("deletionTimestamp"):
            added = set(new["metadata"].get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise errors.invalid(info.kind, info.group, name, [Cause(
                    "metadata.finalizers", f"Forbidden: no new finalizers can be added if the object is being "
                    f"deleted, found new finalizers {sorted(added)!r}", "FieldValueForbidden")])
        self._to_storage(info, new)
        # generation moves when the spec as stored moves: after defaulting and pruning, so a
        # write that only restates defaults or sends pruned fields is the no-op it is
        if subresource != "status" and info.tracks_generation and _spec_part(new) != _spec_part(current.obj):
            new["metadata"]["generation"] = int(old_meta.get("generation") or 1) + 1
        if _comparable(new) == _comparable(current.obj):
            return current
        if dry_run:
            return Stored(current.rv, orjson.dumps(new), new)
        key = object_key(info, namespace, name)
        if old_meta.get("deletionTimestamp") and not new["metadata"].get("finalizers") \
                and not _spec_finalizers(info, new):
            return await self._written(info, name, self.store.delete(info.storage_resource, key, current.rv))
        return await self._written(info, name, self.store.update(info.storage_resource, key, new, current.rv))

    # -- patch ----------------------------------------------------------------------------------
    async def patch(self, info: ResourceInfo, namespace: str, name: str, content_type: str, body: Any, *,
                    subresource: str = "", dry_run: bool = False, options: WriteOptions | None = None) -> Stored:
        accepted = [patching.JSON_PATCH, patching.MERGE_PATCH, patching.APPLY_PATCH]
        if info.builtin:
            accepted.append(patching.STRATEGIC_PATCH)
        if content_type not in accepted:
            raise errors.unsupported_media_type(content_type, accepted)
        options = options or WriteOptions()
        if content_type == patching.APPLY_PATCH:
            return await server_side_apply(self, info, namespace, name, body, subresource=subresource,
                                           dry_run=dry_run, options=options)
        for _attempt in range(PATCH_RETRIES):
            options.tracked = False
            current = self.get(info, namespace, name)
            new = await in_worker_if(json_size(current.raw, body) > self.limits.offload_bytes,
                                     functools.partial(self._patched, info, current, content_type, body))
            if not isinstance(new, dict):
                raise errors.bad_request("the patch did not produce an object")
            meta: dict[str, Any] = new["metadata"] if isinstance(new.get("metadata"), dict) else {}
            wanted_rv = meta.get("resourceVersion")
            if wanted_rv and str(wanted_rv) != str(current.rv) and _patch_sets_rv(body):
                raise self._conflict(info, name)
            meta["resourceVersion"] = str(current.rv)
            self._check_identity(info, new, namespace)
            if new["metadata"].get("name") != name:
                raise errors.bad_request("the name of the object cannot be changed by a patch")
            try:
                return await self._write_update(info, namespace, name, new, current, subresource=subresource,
                                                dry_run=dry_run, options=options)
            except errors.ApiError as exc:
                if exc.reason == "Conflict" and not _patch_sets_rv(body) and not exc.details.get("causes"):
                    continue
                raise
        raise self._conflict(info, name)

    @staticmethod
    def _patched(info: ResourceInfo, current: Stored, content_type: str, body: Any) -> Any:
        base = conversion.view(info, current.copy())
        if content_type == patching.JSON_PATCH:
            return patching.json_patch(base, body)
        if content_type == patching.MERGE_PATCH:
            return patching.merge_patch(base, body)
        return patching.strategic_merge_patch(base, body, info.merge_keys)

    # -- delete ---------------------------------------------------------------------------------
    async def delete(self, info: ResourceInfo, namespace: str, name: str, options: DeleteOptions) -> tuple[Stored, bool]:
        """Delete or mark for deletion; returns (object, removed_now)."""
        for _attempt in range(PATCH_RETRIES):
            current = self.get(info, namespace, name)
            meta = current.obj.get("metadata") or {}
            if options.uid and options.uid != meta.get("uid"):
                raise errors.conflict(info.plural, info.group, name,
                                      f"Precondition failed: UID in precondition: {options.uid}, UID in object meta: "
                                      f"{meta.get('uid')}")
            if options.resource_version and options.resource_version != str(current.rv):
                raise errors.conflict(info.plural, info.group, name,
                                      f"Precondition failed: ResourceVersion in precondition: "
                                      f"{options.resource_version}, ResourceVersion in object meta: {current.rv}")
            finalizers = list(meta.get("finalizers") or [])
            extra = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(options.propagation)
            if extra and extra not in finalizers and not meta.get("deletionTimestamp"):
                finalizers.append(extra)
            is_namespace = info.builtin and info.kind == "Namespace"
            if not finalizers and not _spec_finalizers(info, current.obj):
                if options.dry_run:
                    return current, True
                stored = await self._written(info, name, self.store.delete(
                    info.storage_resource, object_key(info, namespace, name), current.rv))
                return stored, True
            if meta.get("deletionTimestamp"):
                return current, False
            new = current.copy()
            new["metadata"]["finalizers"] = finalizers
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if is_namespace:
                new.setdefault("status", {})["phase"] = "Terminating"
            if options.dry_run:
                return Stored(current.rv, orjson.dumps(new), new), False
            try:
                stored = await self._written(info, name, self.store.update(
                    info.storage_resource, object_key(info, namespace, name), new, current.rv))
                return stored, False
            except errors.ApiError as exc:
                if exc.reason != "Conflict":
                    raise
        raise self._conflict(info, name)


def _spec_finalizers(info: ResourceInfo, obj: dict[str, Any]) -> list[str]:
    """A Namespace also waits for `spec.finalizers` (emptied once its content is gone)."""
    if info.builtin and info.kind == "Namespace":
        return list((obj.get("spec") or {}).get("finalizers") or [])
    return []


def _patch_sets_rv(body: Any) -> bool:
    if isinstance(body, dict):
        return bool((body.get("metadata") or {}).get("resourceVersion")) if isinstance(body.get("metadata"), dict) else False
    if isinstance(body, list):  # a `test` of the resourceVersion is re-evaluated on retry, as kube does
        return any(isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion"
                   and op.get("op") in ("add", "replace", "copy", "move") for op in body)
    return False
