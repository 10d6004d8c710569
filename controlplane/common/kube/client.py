"""A dict-in, dict-out wrapper over the official `kubernetes` client, for every component.

Controllers, DVCR and node handlers reach the API only through this (and a kubeconfig), so
the same code runs on the embedded server and on DKP. The official client does the
kubeconfig loading, TLS and bearer-token auth; we skip its generated models (objects stay
plain dicts, as the CRDs define them) and stream watches line by line.

Errors come back as `KubeError` with the HTTP status and the server's Status reason, so
callers can tell NotFound/Conflict/Invalid apart without parsing text.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from kubernetes import client as k8s

from controlplane.common.kube.configuration import load_configuration
from controlplane.common.kube.local import LocalTransport, split_lines


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str, body: dict[str, Any] | None = None, *,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}
        details = self.body.get("details") or {}
        hinted = details.get("retryAfterSeconds") if isinstance(details, dict) else None
        self.retry_after: float | None = retry_after if retry_after is not None else \
            float(hinted) if isinstance(hinted, int | float) and hinted > 0 else None
        """Seconds the server asked us to wait (`Retry-After` header, `details.retryAfterSeconds`)."""

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    @property
    def conflict(self) -> bool:
        return self.status == 409 and self.reason == "Conflict"

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def gone(self) -> bool:
        return self.status == 410


@dataclass(frozen=True)
class Resource:
    """A kind's REST coordinates: group, version, plural, scope (and its Kind name)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name)}"
            if subresource:
                base += f"/{subresource}"
        return base


NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
SECRETS = Resource("", "v1", "secrets", "Secret")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
EVENTS = Resource("", "v1", "events", "Event")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
                namespaced=False)


REQUEST_TIMEOUT = 30.0
"""Seconds a request waits for its whole answer unless its caller says otherwise (a graceful stop
gives its lease up with less: `RuntimeSettings.lease_release_timeout`)."""
OWN_WRITES = {"fieldValidation": "Ignore"}
"""The query of a typed write: the platform's components write dicts they built (a key cannot
repeat) with the fields of their own API, so the server's duplicate-field scan and unknown-field
warnings, meant for people's manifests, are skipped (a server-side cost on every status write)."""


class KubeClient:
    """Thread-safe: the underlying urllib3 pool is shared by all threads of a component."""

    def __init__(self, api_client: k8s.ApiClient, *, user_agent: str = "dvp",
                 local: LocalTransport | None = None) -> None:
        self.api = api_client
        self.api.user_agent = user_agent
        self._lock = threading.Lock()
        self._streams: k8s.ApiClient | None = None
        self.local = local

    @classmethod
    def from_kubeconfig(cls, path: Path | str, *, user_agent: str = "dvp", pool_size: int = 32,
                        local_socket: Path | None = None) -> KubeClient:
        """A client for the kubeconfig's cluster; `pool_size` connections are kept open (one per
        informer watch plus the workers of every controller sharing this client). With
        `local_socket` (a component on the API server's host) requests go over that Unix
        socket in plain HTTP, with the kubeconfig's token (see `local.py`)."""
        configuration = load_configuration(path)
        configuration.connection_pool_maxsize = pool_size
        local = None
        if local_socket is not None:
            keys = configuration.api_key or {}
            header = keys.get("BearerToken") or keys.get("authorization") or ""
            token = header.removeprefix("Bearer ").strip()
            local = LocalTransport(local_socket, token, user_agent=user_agent) if token else None
        return cls(k8s.ApiClient(configuration), user_agent=user_agent, local=local)

    @property
    def bearer_token(self) -> str:
        """The token this client authenticates with ("" for none), for calls to endpoints that
        check it with the API server (a node handler's console endpoint)."""
        keys = self.api.configuration.api_key or {}
        header = keys.get("BearerToken") or keys.get("authorization") or ""
        return str(header).removeprefix("Bearer ").strip()

    @staticmethod
    def _query(query: dict[str, Any] | None) -> list[tuple[str, str]]:
        return [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()
                if v is not None]

    def _stream_api(self) -> k8s.ApiClient:
        """The client of watch streams, with a connection pool of its own. A stream its reader
        stops before the server ends it leaves a connection the server still writes to: it is
        closed, never reused. In the pool of requests that closed connection would be the next
        one taken (the pool is last-in first-out): a new TLS handshake, 2.5 ms here, on the
        first request after every watch cut short."""
        with self._lock:
            if self._streams is None:
                self._streams = k8s.ApiClient(self.api.configuration)
                self._streams.user_agent = self.api.user_agent
            return self._streams

    # -- raw requests ----------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None,
              content_type: str = "application/json", timeout: float | tuple[float, float] | None = REQUEST_TIMEOUT,
              api: k8s.ApiClient | None = None) -> Any:
        api = api or self.api
        q = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items() if v is not None]
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        # The official client encodes JSON bodies itself (json.dumps of the object we pass).
        m, url, hdrs, b, post = api.param_serialize(method=method, resource_path=path, query_params=q,
                                                    header_params=headers, body=body,
                                                    auth_settings=["BearerToken"])
        try:
            return api.call_api(m, url, header_params=hdrs, body=b, post_params=post, _request_timeout=timeout)
        except k8s.ApiException as exc:
            raise _error(exc.status or 0, exc.body, exc.headers) from exc

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None,
                content_type: str = "application/json", timeout: float | None = REQUEST_TIMEOUT) -> dict[str, Any]:
        if self.local is not None:
            data = orjson.dumps(body) if body is not None else None
            status, raw_local = self.local.call(method, path, self._query(query), data, content_type, timeout)
            if not 200 <= status < 300:
                raise _error(status, raw_local)
            result_local: dict[str, Any] = orjson.loads(raw_local) if raw_local else {}
            return result_local
        resp = self._call(method, path, query=query, body=body, content_type=content_type, timeout=timeout)
        raw = resp.read()
        if not 200 <= resp.status < 300:
            raise _error(resp.status, raw, resp.headers)
        result: dict[str, Any] = json.loads(raw) if raw else {}
        return result

    def status_of(self, path: str, *, timeout: float = 10) -> int:
        """The HTTP status of GET `path` (e.g. /readyz), whatever it is."""
        try:
            resp = self._call("GET", path, timeout=timeout)
        except KubeError as exc:
            return exc.status
        resp.read()
        return int(resp.status)

    def stream_lines(self, path: str, query: dict[str, Any], *, timeout: float | None = None) -> Iterator[bytes]:
        if self.local is not None:
            status, lines = self.local.stream(path, self._query(query), timeout)
            if isinstance(lines, bytes):
                raise _error(status, lines)
            yield from lines
            return
        resp = self._call("GET", path, query=query, timeout=(10, timeout) if timeout else None,
                          api=self._stream_api())
        if not 200 <= resp.status < 300:
            raise _error(resp.status, resp.read(), resp.headers)
        ended = False
        try:
            yield from split_lines(resp.response.stream(65536, decode_content=False))
            ended = True
        finally:
            if not ended:  # cut short: the rest of the stream would be read as the next response
                resp.response.close()
            resp.response.release_conn()

    # -- typed verbs on dicts ----------------------------------------------------------------------
    def get(self, res: Resource, name: str, namespace: str | None = None, *, subresource: str = "",
            timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
        return self.request("GET", res.path(namespace, name, subresource), timeout=timeout)

    def get_or_none(self, res: Resource, name: str, namespace: str | None = None, *,
                    timeout: float = REQUEST_TIMEOUT) -> dict[str, Any] | None:
        try:
            return self.get(res, name, namespace, timeout=timeout)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    def list(self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None, limit: int | None = None, continue_: str | None = None
             ) -> dict[str, Any]:
        return self.request("GET", res.path(namespace), query={
            "labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit, "continue": continue_})

    def create(self, res: Resource, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        return self.request("POST", res.path(ns), body=obj, query=OWN_WRITES)

    def replace(self, res: Resource, obj: dict[str, Any], *, subresource: str = "",
                timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
        meta = obj["metadata"]
        return self.request("PUT", res.path(meta.get("namespace"), meta["name"], subresource), body=obj,
                            query=OWN_WRITES, timeout=timeout)

    def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None, *, subresource: str = "",
              patch_type: str = "application/merge-patch+json") -> dict[str, Any]:
        return self.request("PATCH", res.path(namespace, name, subresource), body=patch, content_type=patch_type,
                            query=OWN_WRITES)

    def delete(self, res: Resource, name: str, namespace: str | None = None, *,
               propagation: str | None = None, preconditions: dict[str, str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation:
            body["propagationPolicy"] = propagation
        if preconditions:
            body["preconditions"] = preconditions
        return self.request("DELETE", res.path(namespace, name), body=body)

    def delete_if_exists(self, res: Resource, name: str, namespace: str | None = None, **kw: Any) -> bool:
        try:
            self.delete(res, name, namespace, **kw)
            return True
        except KubeError as exc:
            if exc.not_found:
                return False
            raise

    def watch(self, res: Resource, namespace: str | None = None, *, resource_version: str = "",
              label_selector: str | None = None, field_selector: str | None = None, timeout_seconds: int = 300,
              bookmarks: bool = True) -> Iterator[dict[str, Any]]:
        """Yield watch events ({type, object}); raises KubeError(410) when the version is too old."""
        query = {"watch": "true", "resourceVersion": resource_version or None, "labelSelector": label_selector,
                 "fieldSelector": field_selector, "timeoutSeconds": timeout_seconds,
                 "allowWatchBookmarks": bookmarks}
        for line in self.stream_lines(res.path(namespace), query, timeout=timeout_seconds + 30):
            event: dict[str, Any] = orjson.loads(line)  # every write of a watched kind passes here
            if event.get("type") == "ERROR":
                status = event.get("object") or {}
                raise KubeError(int(status.get("code") or 500), status.get("reason", ""), status.get("message", ""),
                                status)
            yield event


def _error(status: int, raw: Any, headers: Any = None) -> KubeError:
    body: dict[str, Any] = {}
    retry_after: float | None = None
    getter = getattr(headers, "get", None)
    value = getter("Retry-After") if getter is not None else None
    if value is not None and str(value).strip().isdigit():
        retry_after = float(str(value).strip())
    if raw:
        try:
            body = json.loads(raw)
        except (ValueError, TypeError):
            body = {"message": raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)}
    return KubeError(status, str(body.get("reason", "")), str(body.get("message", "")), body, retry_after=retry_after)
