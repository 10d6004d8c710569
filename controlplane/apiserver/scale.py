"""The `scale` subresource of custom resources, as kube-apiserver serves it.

A CRD version that declares `subresources.scale` (specReplicasPath, statusReplicasPath and
optionally labelSelectorPath) gets `GET/PUT/PATCH .../{name}/scale`: the object seen as an
`autoscaling/v1` `Scale`. Reads map the three paths into `spec.replicas`, `status.replicas`
and `status.selector` (a string); writes change only the replicas path of the main object,
through the ordinary update path of `ApiService` (validation, generation, managedFields with
subresource `scale`, watch events). A Scale carrying `metadata.resourceVersion` is a
precondition on the main object (409 when it moved); without one the write retries on
conflicts as kube-apiserver does. This is what `kubectl scale` and autoscalers talk to.

The mapping (`scale_of`, `with_replicas`, `replicas_of`) is pure; `ScaleHandler` is the HTTP
side called from `handlers.ResourceHandlers` for the `scale` subresource.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from aiohttp import web

from controlplane.apiserver import conversion, errors, patch
from controlplane.apiserver.apply import requests as apply_requests
from controlplane.apiserver.datastore import Stored
from controlplane.apiserver.errors import Cause
from controlplane.apiserver.resources import ResourceInfo
from controlplane.apiserver.service import ApiService

GROUP, VERSION, KIND = "autoscaling", "v1", "Scale"
API_VERSION = f"{GROUP}/{VERSION}"
WRITE_RETRIES = 8
_META = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")


def spec_of(info: ResourceInfo) -> dict[str, Any] | None:
    """The version's `subresources.scale` declaration, or None when it has none."""
    found = info.subresources.get("scale")
    return found if isinstance(found, dict) else None


def _path(json_path: str) -> list[str]:
    """`.spec.replicas` -> ["spec", "replicas"] (CRD scale paths are simple dotted paths)."""
    return [p for p in json_path.strip().lstrip(".").split(".") if p]


def _lookup(obj: Any, json_path: str) -> Any:
    for part in _path(json_path):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def scale_of(declared: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """The object as an `autoscaling/v1` Scale (absent replicas read as 0, as kube does)."""
    meta = obj.get("metadata") or {}
    spec_replicas = _lookup(obj, declared.get("specReplicasPath", ""))
    status_replicas = _lookup(obj, declared.get("statusReplicasPath", ""))
    status: dict[str, Any] = {"replicas": status_replicas if isinstance(status_replicas, int) else 0}
    selector_path = declared.get("labelSelectorPath")
    if selector_path:
        selector = _lookup(obj, selector_path)
        if isinstance(selector, str) and selector:
            status["selector"] = selector
    return {"kind": KIND, "apiVersion": API_VERSION,
            "metadata": {k: meta[k] for k in _META if k in meta},
            "spec": {"replicas": spec_replicas if isinstance(spec_replicas, int) else 0},
            "status": status}


def replicas_of(scale: Any, name: str) -> int:
    """`spec.replicas` of a Scale a client sent; 422 naming the field when it is not a
    non-negative integer."""
    if not isinstance(scale, dict):
        raise errors.bad_request("the body of a scale request must be an autoscaling/v1 Scale object")
    kind, api_version = scale.get("kind"), scale.get("apiVersion")
    if kind not in (None, "", KIND) or api_version not in (None, "", API_VERSION):
        raise errors.bad_request(f"expected {API_VERSION} {KIND}, got {api_version} {kind}")
    spec = scale.get("spec")
    value = spec.get("replicas", 0) if isinstance(spec, dict) else 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.invalid(KIND, GROUP, name, [Cause(
            "spec.replicas", f"Invalid value: {orjson.dumps(value).decode()}: must be an integer",
            "FieldValueTypeInvalid")])
    if value < 0:
        raise errors.invalid(KIND, GROUP, name, [Cause(
            "spec.replicas", f"Invalid value: {value}: must be greater than or equal to 0")])
    if value > 2**31 - 1:
        raise errors.invalid(KIND, GROUP, name, [Cause(
            "spec.replicas", f"Invalid value: {value}: must be less than or equal to 2147483647")])
    return value


def with_replicas(declared: dict[str, Any], obj: dict[str, Any], replicas: int) -> dict[str, Any]:
    """A copy of the object with only its spec replicas path set."""
    out = copy.deepcopy(obj)
    parts = _path(declared.get("specReplicasPath", ""))
    if not parts:
        raise errors.ApiError(500, "InternalError", "the CRD declares no scale specReplicasPath")
    node = out
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = replicas
    return out


def patched_scale(current: dict[str, Any], content_type: str, body: Any) -> Any:
    """The Scale a PATCH asks for: merge, strategic-merge (a Scale has no lists, so the same)
    or JSON patch applied to the current Scale."""
    if content_type in (patch.MERGE_PATCH, patch.STRATEGIC_PATCH):
        if not isinstance(body, dict):
            raise errors.bad_request("a merge patch of a Scale must be a JSON object")
        return patch.merge_patch(current, body)
    if content_type == patch.JSON_PATCH:
        return patch.json_patch(current, body)
    raise errors.unsupported_media_type(content_type, [patch.JSON_PATCH, patch.MERGE_PATCH, patch.STRATEGIC_PATCH])


class ScaleHandler:
    """`GET/PUT/PATCH {resource}/{name}/scale` of custom resources that declare it."""

    def __init__(self, service: ApiService) -> None:
        self.service = service

    def _current(self, info: ResourceInfo, ns: str, name: str) -> tuple[int, dict[str, Any]]:
        stored = self.service.get(info, ns, name)
        return stored.rv, _view(info, stored)

    async def handle(self, request: web.Request, info: ResourceInfo, ns: str, name: str) -> web.Response:
        declared = spec_of(info)
        if declared is None or not name:
            raise errors.not_found(f"{info.plural}/scale", info.group, name)
        if request.method == "GET":
            return _json(scale_of(declared, self._current(info, ns, name)[1]))
        if request.method not in ("PUT", "PATCH"):
            raise errors.method_not_allowed(request.method, f"{info.plural}/scale")
        opts = apply_requests.write_options(request)
        body = await apply_requests.read_body(request, opts)
        dry_run = request.query.get("dryRun") == "All"
        for _attempt in range(WRITE_RETRIES):
            rv, obj = self._current(info, ns, name)
            current = scale_of(declared, obj)
            wanted = body if request.method == "PUT" else patched_scale(current, request.content_type, body)
            replicas = replicas_of(wanted, name)
            precondition = str(((wanted.get("metadata") or {}) if isinstance(wanted, dict) else {})
                               .get("resourceVersion") or "")
            if request.method == "PATCH" and precondition == str(rv):
                precondition = ""  # the current Scale's own version, not one the patch asked for
            if precondition and precondition != str(rv):
                raise errors.conflict(info.plural, info.group, name, errors.CONFLICT_ADVICE)
            new = with_replicas(declared, obj, replicas)
            new["metadata"]["resourceVersion"] = str(rv)
            opts.tracked = False
            try:
                stored = await self.service.update(info, ns, name, new, subresource="scale", dry_run=dry_run,
                                                   options=opts)
            except errors.ApiError as exc:
                if exc.code == 409 and not precondition:
                    continue  # someone else wrote the object between our read and write: read again
                raise
            return _json(scale_of(declared, _view(info, stored)))
        raise errors.conflict(info.plural, info.group, name, errors.CONFLICT_ADVICE)


def _view(info: ResourceInfo, stored: Stored) -> dict[str, Any]:
    """The stored object as the requested version shows it."""
    return stored.obj if info.is_storage_version else conversion.view(info, stored.copy())


def _json(body: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")
