"""Reading a write request the way server-side apply and field validation need it: the
field manager (`fieldManager`, else derived from the User-Agent as kube does), `force`,
`fieldValidation`, the body with any duplicated fields noted (apply patches are YAML, which
includes JSON), and the `Warning` headers of the answer."""

from __future__ import annotations

import asyncio
from typing import Any

import yaml
from aiohttp import web

from controlplane.apiserver import bodies, errors, fieldvalidation, seat
from controlplane.apiserver.apply import managed
from controlplane.apiserver.apply.writes import WriteOptions
from controlplane.apiserver.patch import APPLY_PATCH
from controlplane.apiserver.protobuf.http import DECODED_BODY, TYPED_BODY

_JSON = "application/json"
_YAML = "application/yaml"
_OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}


def write_options(request: web.Request) -> WriteOptions:
    kind = _OPTIONS_KIND.get(request.method, "PatchOptions")
    is_apply = request.content_type == APPLY_PATCH
    query = request.query
    manager = query.get("fieldManager", "")
    causes = managed.validate_manager(manager, required=is_apply)
    force = query.get("force", "")
    if force and not is_apply:
        causes.append(errors.Cause("force", "Forbidden: may not be specified for non-apply patch",
                                   "FieldValueForbidden"))
    if causes:
        raise errors.invalid(kind, "meta.k8s.io", "", causes)
    if not manager:
        manager = managed.manager_from_user_agent(request.headers.get("User-Agent", "")) or "unknown"
    mode = fieldvalidation.directive(query.get("fieldValidation", ""), options_kind=kind)
    return WriteOptions(manager=manager, validation=mode, force=force == "true",
                        typed_body=request.get(TYPED_BODY) is True)


async def read_body(request: web.Request, options: WriteOptions) -> Any:
    """The body, bounded as `bodies` bounds every body (size, depth, alias expansion; 413/400),
    and, unless validation is ignored, the paths of the fields it sets twice (kept for the audit
    log when its level records bodies)."""
    body = await _read_body(request, options)
    bodies.keep_for_audit(request, body)
    return body


async def _read_body(request: web.Request, options: WriteOptions) -> Any:
    if DECODED_BODY in request:  # a protobuf body, decoded by protobuf.http (no unknown fields there)
        return request[DECODED_BODY]
    limits = bodies.limits_of(request)
    raw = await bodies.read_limited(request, limits)
    if not raw:
        return None
    as_yaml = "yaml" in request.content_type
    if as_yaml and raw.lstrip()[:1] == b"{":  # JSON, what kubectl sends, is YAML too: the fast parser first
        try:
            body = await bodies.decode(raw, _JSON, limits)
            as_yaml = False
        except errors.ApiError as exc:
            if exc.code != 400:
                raise
            body = await bodies.decode(raw, _YAML, limits)
    else:
        body = await bodies.decode(raw, _YAML if as_yaml else _JSON, limits)
    if options.validation != fieldvalidation.IGNORE:  # a second, duplicate-noting read of a bounded body
        if len(raw) > limits.offload_bytes:
            seat.release()
            options.duplicates = await asyncio.to_thread(_duplicates, raw, as_yaml)
        else:
            options.duplicates = _duplicates(raw, as_yaml)
    return body


def _duplicates(raw: bytes, as_yaml: bool) -> list[str]:
    try:
        return fieldvalidation.yaml_load(raw)[1] if as_yaml else fieldvalidation.json_duplicates(raw)
    except (ValueError, yaml.YAMLError, RecursionError):  # what `bodies` accepted, this reader may not
        return []


def add_warnings(response: web.StreamResponse, options: WriteOptions) -> web.StreamResponse:
    for text in dict.fromkeys(options.warnings):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{escaped}"')
    return response
