"""Who may open a console or read the node's metrics: bearer tokens checked with a TokenReview,
requests authorized with a SubjectAccessReview against the API server — a kubelet's delegated
authentication and authorization.

The console endpoint has no user database of its own: it asks the API server
(`POST /apis/authentication.k8s.io/v1/tokenreviews`, with the handler's own credentials) who a
token belongs to, then (`POST /apis/authorization.k8s.io/v1/subjectaccessreviews`) whether
that user may do what the request does — the same RBAC rule the API server's own console
proxy checks: `get` of `virtualmachines/console` or `virtualmachines/vnc` in group
`subresources.virtualization.deckhouse.io` in the VM's namespace, and `get nodes/metrics` on
this node for `/metrics`, as a kubelet asks. Answers are remembered for a short time, keyed by
the token's SHA-256 (never the token). Node identities (group `system:nodes`) are refused
outright: one node's handler has no business in another's consoles. The API server's console
proxy presents its own token (system:masters), having authorized its user already.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from controlplane.common.kube.client import KubeClient

NODES_GROUP = "system:nodes"
CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class Identity:
    username: str
    groups: tuple[str, ...]


class Denied(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


SUBRESOURCES_GROUP = "subresources.virtualization.deckhouse.io"


def stream_access(namespace: str, name: str, kind: str) -> dict[str, str]:
    """The SubjectAccessReview resourceAttributes of opening a VM's console or VNC."""
    return {"group": SUBRESOURCES_GROUP, "resource": "virtualmachines", "subresource": kind, "verb": "get",
            "namespace": namespace, "name": name}


def metrics_access(node: str) -> dict[str, str]:
    """...and of reading this node's metrics (a kubelet's `nodes/metrics`)."""
    return {"group": "", "resource": "nodes", "subresource": "metrics", "verb": "get", "name": node}


class TokenReviewer:
    def __init__(self, kube: KubeClient, *, ttl: float = CACHE_SECONDS) -> None:
        self.kube = kube
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Identity | None]] = {}
        self._decisions: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, bool, str]] = {}
        self._lock = threading.Lock()

    def review(self, token: str) -> Identity | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
                return hit[1]
        answer = self.kube.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
        status = answer.get("status") or {}
        ident = None
        if status.get("authenticated"):
            user = status.get("user") or {}
            ident = Identity(str(user.get("username", "")), tuple(user.get("groups") or ()))
        with self._lock:
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[digest] = (time.monotonic(), ident)
        return ident

    def authorize(self, header: str | None, access: dict[str, str]) -> Identity:
        """The caller behind an `Authorization` header if it may do `access` (SubjectAccessReview
        resourceAttributes), or `Denied` (401/403)."""
        if not header or not header.startswith("Bearer ") or not header[7:].strip():
            raise Denied(401, "a bearer token is required (Authorization: Bearer ...)")
        token = header[7:].strip()
        ident = self.review(token)
        if ident is None:
            raise Denied(401, "the bearer token is not valid")
        if NODES_GROUP in ident.groups:
            raise Denied(403, f"user {ident.username} is a node ({NODES_GROUP}): nodes may not open consoles")
        allowed, reason = self._access(hashlib.sha256(token.encode()).hexdigest(), ident, access)
        if not allowed:
            what = f"{access['resource']}/{access['subresource']}"
            where = f' in the namespace "{access["namespace"]}"' if access.get("namespace") else ""
            raise Denied(403, f'User "{ident.username}" cannot {access["verb"]} resource "{what}" in API group '
                              f'"{access["group"]}"{where}' + (f": {reason}" if reason else ""))
        return ident

    def _access(self, digest: str, ident: Identity, access: dict[str, str]) -> tuple[bool, str]:
        key = (digest, tuple(sorted(access.items())))
        with self._lock:
            hit = self._decisions.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
                return hit[1], hit[2]
        answer = self.kube.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body={
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": ident.username, "groups": list(ident.groups), "resourceAttributes": access}})
        status = answer.get("status") or {}
        allowed, reason = bool(status.get("allowed")), str(status.get("reason") or "")
        with self._lock:
            if len(self._decisions) > 1000:
                self._decisions.clear()
            self._decisions[key] = (time.monotonic(), allowed, reason)
        return allowed, reason
