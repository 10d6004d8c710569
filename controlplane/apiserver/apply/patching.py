"""Server-side apply as a write: read the live object (or start from an empty one, so an
apply creates), let `writes.apply` merge and settle ownership, then store it through the
service's ordinary update or create path, retrying when a concurrent write wins the race."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import orjson

from controlplane.apiserver import conversion, errors
from controlplane.apiserver.apply import writes
from controlplane.apiserver.apply.writes import WriteOptions
from controlplane.apiserver.bodies import in_worker_if, json_size
from controlplane.apiserver.datastore import Stored
from controlplane.apiserver.resources import ResourceInfo

if TYPE_CHECKING:
    from controlplane.apiserver.service import ApiService

async def server_side_apply(service: ApiService, info: ResourceInfo, namespace: str, name: str, body: Any, *,
                            subresource: str, dry_run: bool, options: WriteOptions) -> Stored:
    """Server-side apply: merge the configuration, settle ownership, write (or create)."""
    from controlplane.apiserver.service import PATCH_RETRIES, object_key  # service imports this module
    for _attempt in range(PATCH_RETRIES):
        options.tracked = False
        config = _config(service, info, namespace, name, body)
        found = service.store.get(info.storage_resource, object_key(info, namespace, name))
        large = json_size(config, found.raw if found is not None else b"") > service.limits.offload_bytes
        if found is None:
            if subresource:
                raise errors.not_found(info.plural, info.group, name)
            live: dict[str, Any] = {"apiVersion": info.api_version, "kind": info.kind,
                                    "metadata": {"name": name, **({"namespace": namespace} if info.namespaced
                                                                  else {})}}
            obj = await in_worker_if(large, functools.partial(writes.apply, info, live, config, options, subresource=""))
            options.tracked = True
            try:
                created = await service.create(info, namespace, obj, dry_run=dry_run, options=options)
                options.created = True
                return created
            except errors.ApiError as exc:
                if exc.reason == "AlreadyExists":
                    continue
                raise
        wanted_rv = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        if wanted_rv and str(wanted_rv) != str(found.rv):
            raise service._conflict(info, name)
        new = await in_worker_if(large, functools.partial(_apply_to_stored, info, found, config, options, subresource))
        options.tracked = True
        new["metadata"]["resourceVersion"] = str(found.rv)
        try:
            return await service._write_update(info, namespace, name, new, found, subresource=subresource,
                                            dry_run=dry_run, options=options)
        except errors.ApiError as exc:
            if exc.reason == "Conflict" and not exc.details.get("causes"):
                continue
            raise
    raise service._conflict(info, name)


def _apply_to_stored(info: ResourceInfo, found: Stored, config: dict[str, Any], options: WriteOptions,
                     subresource: str) -> dict[str, Any]:
    return writes.apply(info, conversion.view(info, found.copy()), config, options, subresource=subresource)


def _config(service: ApiService, info: ResourceInfo, namespace: str, name: str, body: Any) -> dict[str, Any]:
    from controlplane.apiserver.service import _SERVER_META
    if not isinstance(body, dict):
        raise errors.bad_request("the body of an apply patch must be a YAML or JSON object")
    for key in ("apiVersion", "kind"):
        if not body.get(key):
            raise errors.bad_request(f"{key} must be set in an apply patch")
    config: dict[str, Any] = orjson.loads(orjson.dumps(body))
    service._check_identity(info, config, namespace)
    meta = config["metadata"]
    if meta.get("name") not in (None, name):
        raise errors.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the "
                                 f"URL ({name})")
    meta["name"] = name
    for k in (*_SERVER_META, "resourceVersion", "selfLink"):
        meta.pop(k, None)
    return config
