"""Request bodies with bounds: how much is read, how deep it nests, how far YAML aliases expand.

kube-apiserver refuses a request body over 3 MiB with 413 before reading the rest of it, and
its decoders bound nesting depth and YAML alias expansion. Without those bounds one request
could stall or bloat the whole server: a 423-byte YAML "billion laughs" body expands to a
69 MB object, 2,000 levels of nesting exhaust the validators' recursion, and a 50 MB object
costs every list afterwards. The resource handlers read every body through here:

- `read_limited` answers 413 from `Content-Length` alone when it says too much, and stops
  reading a chunked body at the limit (the connection is then closed, the rest never read);
- `decode` parses JSON (orjson) or YAML (libyaml, with a loader that stringifies map keys as
  sigs.k8s.io/yaml does, keeps timestamps as strings and counts merge-key expansion), then
  measures the result without expanding it: depth and JSON size are computed once per
  distinct node, so shared (aliased) nodes cost their expanded size without being copied,
  and a recursive alias is refused. Large bodies are parsed off the event loop, a few at a
  time, so a bad body never stalls other requests;
- `check_storable` is the last check before an object joins a commit batch: it must encode
  as JSON (string keys, 64-bit integers), nest at most `max_depth` levels and stay under the
  object size limit, so one bad write can never fail the batch it would share with others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import copy
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import yaml
import yaml._yaml
from aiohttp import web

from controlplane.apiserver import errors, seat

MiB = 1024 * 1024


@dataclass(frozen=True)
class BodyLimits:
    max_request_bytes: int = 3 * MiB
    """Largest request body (kube-apiserver's default, --max-request-bytes)."""
    max_object_bytes: int = 3 * MiB
    """Largest object as stored (after YAML alias expansion and patches)."""
    max_depth: int = 100
    """Deepest nesting of maps and lists in a body or object."""
    offload_bytes: int = 64 * 1024
    """Bodies larger than this are parsed in a worker thread, at most `parallel` at a time."""
    parallel: int = 2


DEFAULT_LIMITS = BodyLimits()
LIMITS_KEY = web.AppKey("dvp_body_limits", BodyLimits)
LARGE = 64 * 1024  # bodies at least this large are read chunk by chunk
_MERGE_BUDGET = 100_000  # map entries merge keys (`<<`) may copy in one document


def limits_of(request: web.Request) -> BodyLimits:
    return request.config_dict.get(LIMITS_KEY, DEFAULT_LIMITS)


def too_large(limit: int, what: str = "") -> errors.ApiError:
    """kube-apiserver's 413: `Request entity too large: limit is N`."""
    return errors.ApiError(413, "RequestEntityTooLarge",
                           f"Request entity too large: {what + ', ' if what else ''}limit is {limit}")


# -- reading --------------------------------------------------------------------------------------
READ_BODY = "dvp_read_body"
"""The body, read before the request queued for a seat (flowcontrol); aiohttp's own limit applied."""


async def read_limited(request: web.Request, limits: BodyLimits | None = None) -> bytes:
    """The whole body, or a 413 without reading past the limit."""
    if READ_BODY in request:
        body: bytes = request[READ_BODY]
        return body
    limits = limits or limits_of(request)
    limit = limits.max_request_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        _close_after(request)
        raise too_large(limit)
    if declared is not None and declared < LARGE:
        return await request.read()
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            _close_after(request)
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


KEEP_REQUEST_OBJECT = "dvp_keep_request_object"
"""Set on a request whose audit level records its body: the decoded body is kept under
REQUEST_OBJECT as it arrived (a copy: handlers may change theirs)."""
REQUEST_OBJECT = "dvp_request_object"


def keep_for_audit(request: web.Request, obj: Any) -> None:
    if request.get(KEEP_REQUEST_OBJECT) and isinstance(obj, dict):
        request[REQUEST_OBJECT] = copy.deepcopy(obj)


def _close_after(request: web.Request) -> None:
    """Do not read (or linger on) the rest of a refused body: close the connection."""
    request["dvp_close_connection"] = True


@web.middleware
async def middleware(request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Closes connections whose body was refused; turns aiohttp's own 413 into a Status."""
    try:
        response = await handler(request)
    except web.HTTPRequestEntityTooLarge:
        _close_after(request)
        status = too_large(limits_of(request).max_request_bytes)
        response = web.Response(body=orjson.dumps(status.to_status()), status=413, content_type="application/json")
    if request.get("dvp_close_connection"):
        response.force_close()  # with the server's lingering_time=0, the rest of the body is never read
    return response


# -- decoding -------------------------------------------------------------------------------------
class _BoundedConstructor(yaml.constructor.SafeConstructor):
    """SafeConstructor with JSON's view of keys and a budget for merge-key expansion."""

    merged = 0

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            mapping[_json_key(key, key_node)] = self.construct_object(value_node, deep=deep)
        return mapping

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        if not any(key.tag == "tag:yaml.org,2002:merge" for key, _ in node.value):
            return
        super().flatten_mapping(node)
        self.merged += len(node.value)
        if self.merged > _MERGE_BUDGET:
            raise yaml.constructor.ConstructorError(
                None, None, f"document contains excessive merging (more than {_MERGE_BUDGET} merged entries)",
                node.start_mark)


def _json_key(key: Any, node: yaml.Node) -> str:
    """Map keys as sigs.k8s.io/yaml converts them: `1` → "1", `true` → "true", `null` → "null"."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int | float):
        return str(key)
    raise yaml.constructor.ConstructorError(None, None, f"map keys must be strings, not {type(key).__name__}",
                                            node.start_mark)


class _Resolver(yaml.resolver.Resolver):
    """YAML 1.1 implicit types minus timestamps (they stay strings, as in Kubernetes)."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()}

if yaml.__with_libyaml__:
    class _Loader(yaml._yaml.CParser, _BoundedConstructor, _Resolver):
        def __init__(self, stream: Any) -> None:
            yaml._yaml.CParser.__init__(self, stream)
            _BoundedConstructor.__init__(self)
            _Resolver.__init__(self)
else:  # pure Python fallback (no libyaml)
    class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,  # type: ignore[no-redef]
                  yaml.composer.Composer, _BoundedConstructor, _Resolver):
        def __init__(self, stream: Any) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _BoundedConstructor.__init__(self)
            _Resolver.__init__(self)


def load_yaml(raw: bytes | str) -> Any:
    loader = _Loader(raw)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def decode_sync(raw: bytes, content_type: str, limits: BodyLimits = DEFAULT_LIMITS) -> Any:
    """Parse and measure a body; ApiError 400/413 when it is malformed or too big."""
    kind = content_type or "JSON"
    as_yaml = "yaml" in content_type and "apply-patch" not in content_type
    try:
        obj = load_yaml(raw) if as_yaml else orjson.loads(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError, ValueError, RecursionError) as exc:
        raise errors.bad_request(f"the body of the request could not be decoded as {kind}: {exc}") from exc
    if as_yaml or len(raw) > limits.max_object_bytes or raw.count(b"{") + raw.count(b"[") > limits.max_depth:
        measure(obj, limits, what="the decoded body")
    # else JSON, which has no aliases: it is no bigger than the body, and nests no deeper than its brackets
    return obj


_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_GATE: dict[int, asyncio.Semaphore] = {}


async def decode(raw: bytes, content_type: str, limits: BodyLimits = DEFAULT_LIMITS) -> Any:
    """`decode_sync`, in a worker thread for large bodies (at most `limits.parallel` at once)."""
    if len(raw) <= limits.offload_bytes:
        return decode_sync(raw, content_type, limits)
    global _POOL
    if _POOL is None:
        _POOL = concurrent.futures.ThreadPoolExecutor(max(1, limits.parallel), thread_name_prefix="dvp-body-decode")
    loop = asyncio.get_running_loop()
    gate = _GATE.setdefault(id(loop), asyncio.Semaphore(max(1, limits.parallel)))
    seat.release()  # a large body decodes in a thread, without the request's seat
    async with gate:
        return await loop.run_in_executor(_POOL, functools.partial(decode_sync, raw, content_type, limits))


_CHECKS: concurrent.futures.ThreadPoolExecutor | None = None
T = TypeVar("T")


async def off_loop_if_large(obj: Any, fn: Callable[[], None], limits: BodyLimits = DEFAULT_LIMITS, *,
                            costly: bool = False) -> None:
    """Run `fn` (validation of `obj`) in a worker thread when `obj` is large or its checks are
    `costly` (CEL rules that iterate): schema checks cost tens of microseconds per value, seconds
    for a 3 MiB object of small values, and an iterating rule up to a fraction of a second for a
    small one, which must not stall the event loop."""
    await in_worker_if(costly or json_size(obj) > limits.offload_bytes, fn)  # not JSON: check_storable names it


async def in_worker_if(large: bool, fn: Callable[[], T]) -> T:
    """`fn()`, in the worker thread when `large` (work on a large object: a patch, an apply, its
    checks), else here. The worker runs one such job at a time, in the request's context (checks
    that depend on who writes, RBAC escalation, see the user) and without the request's seat."""
    if not large:
        return fn()
    global _CHECKS
    if _CHECKS is None:
        _CHECKS = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dvp-large-object-checks")
    seat.release()
    return await asyncio.get_running_loop().run_in_executor(_CHECKS, contextvars.copy_context().run, fn)


def json_size(*values: Any) -> int:
    """The JSON size of `values` together (0 for one that is not JSON: later checks name it)."""
    total = 0
    for value in values:
        with contextlib.suppress(TypeError, orjson.JSONEncodeError):
            total += len(value) if isinstance(value, bytes) else len(orjson.dumps(value))
    return total


# -- measuring ------------------------------------------------------------------------------------
class _Measure:
    """Depth and JSON size of a value graph, each distinct container visited once."""

    def __init__(self, limits: BodyLimits, what: str) -> None:
        self.limits = limits
        self.what = what
        self.sizes: dict[int, int] = {}
        self.depths: dict[int, int] = {}
        self.active: set[int] = set()

    def too_deep(self) -> errors.ApiError:
        return errors.bad_request(f"{self.what} is nested too deeply: more than {self.limits.max_depth} levels of "
                                  f"maps and lists")

    def run(self, value: Any, level: int) -> tuple[int, int]:
        """(size in bytes, depth) of `value` found at nesting `level`."""
        if isinstance(value, str):
            return len(value) + 2, 0
        if value is None or isinstance(value, bool | int | float):
            return 8, 0
        if not isinstance(value, dict | list):
            if isinstance(value, bytes):
                raise errors.bad_request(f"{self.what} holds binary data (!!binary), which JSON cannot carry")
            return len(str(value)) + 2, 0
        ident = id(value)
        if ident in self.sizes:
            depth = self.depths[ident]
            if level + depth > self.limits.max_depth:
                raise self.too_deep()
            return self.sizes[ident], depth
        if ident in self.active:
            raise errors.bad_request(f"{self.what} refers to itself (a recursive YAML alias)")
        if level >= self.limits.max_depth:
            raise self.too_deep()
        self.active.add(ident)
        size, depth = 2, 0
        items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
        for key, item in items:
            item_size, item_depth = self.run(item, level + 1)
            size += item_size + 1 + (len(key) + 3 if isinstance(key, str) else 0)
            depth = max(depth, item_depth)
            if size > self.limits.max_object_bytes:
                raise too_large(self.limits.max_object_bytes, f"{self.what} would exceed it (YAML aliases expanded)")
        self.active.discard(ident)
        self.sizes[ident] = size
        self.depths[ident] = depth + 1
        return size, depth + 1


def measure(obj: Any, limits: BodyLimits = DEFAULT_LIMITS, *, what: str = "the object") -> int:
    """The JSON size `obj` expands to; ApiError 400 (too deep, recursive) or 413 (too large)."""
    return _Measure(limits, what).run(obj, 0)[0]


def check_storable(kind: str, group: str, name: str, obj: dict[str, Any],
                   limits: BodyLimits = DEFAULT_LIMITS) -> None:
    """Everything the datastore needs to commit `obj`, checked before it joins a batch."""
    try:
        raw = orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError) as exc:
        if "ecursion" in str(exc):
            measure(obj, limits)  # names the depth limit
        raise errors.invalid(kind, group, name, [errors.Cause("", f"Invalid value: the object cannot be stored "
                                                                  f"as JSON: {exc}")]) from exc
    if len(raw) > limits.max_object_bytes:
        raise too_large(limits.max_object_bytes, f"the object is {len(raw)} bytes")
    if raw.count(b"{") + raw.count(b"[") > limits.max_depth:  # else it cannot nest that deep
        measure(obj, limits)
