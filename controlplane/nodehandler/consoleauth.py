"""Who may open a console: bearer tokens checked with a TokenReview against the API server.

The console endpoint has no user database of its own: it asks the API server
(`POST /apis/authentication.k8s.io/v1/tokenreviews`, with the handler's own credentials) who a
token belongs to, as a kubelet does, and remembers answers for a short time keyed by the
token's SHA-256 (never the token). Authorization: any authenticated user except node
identities (group `system:nodes`: one node's handler has no business in another's consoles).
The API server's console proxy will present its own token.
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


class TokenReviewer:
    def __init__(self, kube: KubeClient, *, ttl: float = CACHE_SECONDS) -> None:
        self.kube = kube
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Identity | None]] = {}
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

    def authorize(self, header: str | None) -> Identity:
        """The caller behind an `Authorization` header, or `Denied` (401/403)."""
        if not header or not header.startswith("Bearer ") or not header[7:].strip():
            raise Denied(401, "a bearer token is required (Authorization: Bearer ...)")
        ident = self.review(header[7:].strip())
        if ident is None:
            raise Denied(401, "the bearer token is not valid")
        if NODES_GROUP in ident.groups:
            raise Denied(403, f"user {ident.username} is a node ({NODES_GROUP}): nodes may not open consoles")
        return ident
