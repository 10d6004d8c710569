"""The server-side-apply side of every write: options a request carries (field manager,
force, field validation, warnings to return), and the calls `service.py` makes to keep
managedFields right on create, update, patch and apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controlplane.apiserver import errors, fieldvalidation
from controlplane.apiserver.apply import managed, shapes
from controlplane.apiserver.apply.fieldsets import Path
from controlplane.apiserver.resources import ResourceInfo

SERVER_MANAGER = "dvp-apiserver"
_STATUS: tuple[Path, ...] = (("f:status",),)
_shapes: dict[int, tuple[ResourceInfo, dict[str, Any]]] = {}


@dataclass
class WriteOptions:
    manager: str = SERVER_MANAGER
    validation: str = fieldvalidation.IGNORE
    force: bool = False
    duplicates: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tracked: bool = False  # managedFields already set (by an apply)
    typed_body: bool = False  # a protobuf body: its decoding already checked all the schema would
    created: bool = False  # the write (an apply) created the object: the answer is 201, as kube's


def shape(info: ResourceInfo) -> dict[str, Any]:
    found = _shapes.get(id(info))
    if found is None or found[0] is not info:
        found = _shapes[id(info)] = (info, shapes.shape_of(info.kind, info.raw_schema, builtin=info.builtin))
    return found[1]


def ignored(info: ResourceInfo, subresource: str) -> tuple[Path, ...]:
    """Fields a write can't change, so can't own: status on the main resource, all but
    status on the status subresource."""
    if subresource == "status":
        return tuple((f"f:{k}",) for k in shape(info).get("properties", {}) if k != "status") + (
            ("f:metadata",),)
    return _STATUS if info.has_status else ()


def _entries(raw: Any) -> list[managed.Entry] | None:
    return managed.decode(raw)


def _zero(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """The empty object an update of a new object starts from (kube's zero value: the
    built-in kinds' struct fields exist empty)."""
    zero: dict[str, Any] = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": {}}
    if info.builtin:
        props = shape(info).get("properties", {})
        for k in ("spec", "status"):
            if k in props:
                zero[k] = {}
    return zero


def check_validation(info: ResourceInfo, obj: dict[str, Any], options: WriteOptions) -> None:
    if options.validation == fieldvalidation.IGNORE or info.schema is None:
        return
    found = [f'duplicate field "{d}"' for d in options.duplicates]
    found += [f'unknown field "{p}"' for p in fieldvalidation.unknown_fields(obj, info.schema.schema)]
    fieldvalidation.report(info.kind, info.version, found, options.validation, options.warnings)


def track_create(info: ResourceInfo, obj: dict[str, Any], options: WriteOptions) -> None:
    meta = obj["metadata"]
    entries = _entries(meta.pop("managedFields", None))
    if entries is None:
        return
    entries = managed.record_update(entries, _zero(info, obj), obj, shape(info), manager=options.manager,
                                    api_version=info.api_version, subresource="", ignored=ignored(info, ""))
    if entries:
        meta["managedFields"] = managed.encode(entries)


def track_update(info: ResourceInfo, old: dict[str, Any], new: dict[str, Any], options: WriteOptions, *,
                 subresource: str) -> None:
    """Set `new`'s managedFields after `options.manager` changed `old` into `new`."""
    meta = new["metadata"]
    old_raw = (old.get("metadata") or {}).get("managedFields")
    raw = meta.pop("managedFields", None)
    entries = _entries(old_raw if raw is None or subresource == "status" else raw)
    if entries is None:
        return
    entries = managed.record_update(entries, old, new, shape(info), manager=options.manager,
                                    api_version=info.api_version, subresource=subresource,
                                    ignored=ignored(info, subresource))
    if entries:
        meta["managedFields"] = managed.encode(entries)


def apply(info: ResourceInfo, live: dict[str, Any], config: Any, options: WriteOptions, *,
          subresource: str) -> dict[str, Any]:
    """The object after `options.manager` applied `config` to `live` (managedFields set)."""
    if not isinstance(config, dict):
        raise errors.bad_request("the body of an apply patch must be a YAML or JSON object")
    causes = managed.validate_manager(options.manager, required=True)
    if causes:
        raise errors.invalid("PatchOptions", "meta.k8s.io", "", causes)
    cfg = dict(config)
    cfg_meta = cfg.get("metadata")
    if cfg_meta is not None and not isinstance(cfg_meta, dict):
        raise errors.bad_request("metadata must be an object")
    if isinstance(cfg_meta, dict) and "managedFields" in cfg_meta:
        raise errors.bad_request("metadata.managedFields must be nil in an apply patch")
    meta = live.setdefault("metadata", {})
    entries = _entries(meta.pop("managedFields", None)) or []
    merged, entries = managed.apply(entries, live, cfg, shape(info), manager=options.manager,
                                    api_version=info.api_version, subresource=subresource, force=options.force,
                                    ignored=ignored(info, subresource))
    merged.setdefault("metadata", {})["managedFields"] = managed.encode(entries)
    return merged
