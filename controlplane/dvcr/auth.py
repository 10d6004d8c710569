"""Who may talk to DVCR, and what they may do.

Two ways in, both checked on every request (anonymous access is refused with 401):
- HTTP basic against an htpasswd file of bcrypt hashes (`htpasswd -B` format), re-read when
  it changes. Each user has a role from the roles file (`users.json`): `pull` (the node
  handler), `push` (the importer), `admin` (push, delete and garbage collection).
- `Authorization: Bearer <token>` with a token issued by the platform's API server,
  checked with an `authentication.k8s.io/v1` TokenReview through a kubeconfig (the same
  call on the embedded API server and on a real kube-apiserver). Members of
  `system:masters` are admins, of `dvp:dvcr-writers` pushers, everyone else may pull.

Docker-style clients (skopeo, containerd) follow the `Bearer realm=` challenge to
`/auth/token`, present either of the above there, and get a short-lived DVCR token (kept
in memory only, as a digest) that they send from then on.

Verdicts are cached (keyed by a SHA-256 of the credentials, never the credentials), failed
attempts throttled per source address and the expensive checks run a few at a time
(`authguard`), so bcrypt and TokenReview cost is paid once per client, and a flood of wrong
credentials costs legitimate clients nothing.
Secrets never reach a log line: a user name or a token's fingerprint does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt

from controlplane.common.pki import fingerprint, new_token, token_digest
from controlplane.dvcr.authguard import (
    CostGate,
    FailureThrottle,
    GuardSettings,
    TooManyAttempts,
    VerdictCache,
)

log = logging.getLogger(__name__)

ROLES = ("pull", "push", "admin")
ADMIN_GROUPS = ("system:masters",)
WRITER_GROUPS = ("dvp:dvcr-writers",)
ISSUED_PREFIX = "dvcr."


@dataclass(frozen=True)
class Identity:
    name: str
    role: str
    via: str  # "htpasswd" or "token"
    groups: tuple[str, ...] = ()

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class AuthError(Exception):
    """Credentials were presented but are not valid (or could not be checked)."""


class _ReviewFailed(AuthError):
    """The API server could not answer: not a verdict on the token, so not cached."""



def read_htpasswd(path: Path) -> dict[str, bytes]:
    users: dict[str, bytes] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ValueError(f"{path}:{n}: expected USER:BCRYPT-HASH (create it with `htpasswd -B`)")
        users[user] = hashed.encode()
    return users


class _Reloading:
    """A file parsed again when its mtime changes (checked at most once a second)."""

    def __init__(self, path: Path | None, parse: Any, empty: Any) -> None:
        self.path, self.parse, self.value = path, parse, empty
        self._mtime = -1.0
        self._checked = 0.0

    def get(self) -> Any:
        if self.path is None:
            return self.value
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            try:
                mtime = self.path.stat().st_mtime
            except FileNotFoundError:
                return self.value
            if mtime != self._mtime:
                self.value = self.parse(self.path)
                self._mtime = mtime
        return self.value


class Authenticator:
    def __init__(self, *, htpasswd: Path | None, roles: Path | None = None, kubeconfig: Path | None = None,
                 extra_htpasswd: Path | None = None, default_role: str = "push", basic_ttl: float = 900.0,
                 token_ttl: float = 10.0, guard: GuardSettings | None = None) -> None:
        self._users = _Reloading(htpasswd, read_htpasswd, {})
        self._extra_users = _Reloading(extra_htpasswd, read_htpasswd, {})
        self._roles = _Reloading(roles, lambda p: json.loads(p.read_text()), {})
        self.kubeconfig = kubeconfig
        self.default_role = default_role
        self.guard = guard or GuardSettings(positive_ttl=basic_ttl, token_positive_ttl=token_ttl)
        self._right: VerdictCache[tuple[Identity, bytes | None]] = VerdictCache(self.guard.max_entries)
        self._wrong: VerdictCache[tuple[str, bytes | None]] = VerdictCache(self.guard.max_entries)
        self.throttle = FailureThrottle(self.guard.failure_burst, self.guard.failure_refill_seconds)
        self._bcrypt = CostGate(self.guard.concurrency, self.guard.queue)
        self._reviews = CostGate(4, 64)
        self._issued: dict[str, tuple[float, Identity]] = {}
        self._api: Any = None

    def issue(self, identity: Identity, *, ttl: float = 3600.0) -> str:
        """A DVCR access token for `identity` (the token endpoint's answer)."""
        token = ISSUED_PREFIX + new_token()
        now = time.monotonic()
        if len(self._issued) > 10_000:
            self._issued = {k: v for k, v in self._issued.items() if v[0] > now}
        self._issued[token_digest(token)] = (now + ttl, identity)
        return token

    async def authenticate(self, header: str | None, source: str = "") -> Identity | None:
        """The caller's identity; None without credentials; AuthError when they are wrong,
        TooManyAttempts when `source` has failed too often to have them checked now."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        value = value.strip()
        key = hashlib.sha256(header.encode()).hexdigest()
        right = self._right.get(key)
        if right is not None and self._still_valid(right[0], right[1]):
            return right[0]
        self.throttle.take(source)
        wrong = self._wrong.get(key)
        if wrong is not None and self._still_valid_failure(wrong[1], value, scheme):
            raise AuthError(wrong[0])
        try:
            if scheme.lower() == "basic":
                identity, hashed = await self._basic(value)
                ttl = self.guard.positive_ttl
            elif scheme.lower() == "bearer":
                identity, hashed = await self._bearer(value), None
                ttl = self.guard.token_positive_ttl
            else:
                raise AuthError(f"authorization scheme {scheme!r} is not supported (use Basic or Bearer)")
        except TooManyAttempts:
            self.throttle.refund(source)  # not checked: not a failure of the caller's
            raise
        except AuthError as exc:
            if not isinstance(exc, _ReviewFailed):
                self._wrong.put(key, (str(exc), self._hash_for(value) if scheme.lower() == "basic" else None),
                                self.guard.negative_ttl)
            raise
        self.throttle.refund(source)
        self._right.put(key, (identity, hashed), ttl)
        return identity

    def _still_valid(self, identity: Identity, hashed: bytes | None) -> bool:
        """A cached basic login holds while the user's htpasswd entry is the one it was checked against."""
        return hashed is None or self._lookup(identity.name) == hashed

    def _still_valid_failure(self, hashed: bytes | None, value: str, scheme: str) -> bool:
        return scheme.lower() != "basic" or self._hash_for(value) == hashed

    def _lookup(self, user: str) -> bytes | None:
        found: bytes | None = self._users.get().get(user) or self._extra_users.get().get(user)
        return found

    def _hash_for(self, value: str) -> bytes | None:
        try:
            user = base64.b64decode(value, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return self._lookup(user)

    async def _basic(self, value: str) -> tuple[Identity, bytes]:
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthError("malformed basic credentials") from exc
        if not sep:
            raise AuthError("malformed basic credentials")
        hashed = self._lookup(user)
        if hashed is None:
            await asyncio.sleep(0.05)  # don't make unknown user names cheaper to probe than known ones
            raise AuthError(f"unknown user {user!r} or wrong password")
        ok = await self._bcrypt.run(bcrypt.checkpw, password.encode(), hashed)
        if not ok:
            log.warning("dvcr: wrong password for user %s", user)
            raise AuthError(f"unknown user {user!r} or wrong password")
        role = self._roles.get().get(user, self.default_role)
        return Identity(user, role if role in ROLES else "pull", "htpasswd"), hashed

    async def _bearer(self, token: str) -> Identity:
        if token.startswith(ISSUED_PREFIX):
            hit = self._issued.get(token_digest(token))
            if hit is None or hit[0] <= time.monotonic():
                raise AuthError("the DVCR access token is unknown or expired; get a new one from /auth/token")
            return hit[1]
        if self.kubeconfig is None:
            raise AuthError("bearer tokens are not accepted here (no API server configured); use basic auth")
        try:
            status = await self._reviews.run(self._token_review, token)
        except TooManyAttempts:
            raise
        except Exception as exc:
            log.warning("dvcr: TokenReview for token %s failed: %s", fingerprint(token), type(exc).__name__)
            raise _ReviewFailed("the bearer token could not be checked with the API server (TokenReview failed); "
                                "retry later") from exc
        if not status.get("authenticated"):
            raise AuthError(f"bearer token {fingerprint(token)} was not accepted by the API server")
        user = status.get("user") or {}
        groups = set(user.get("groups") or [])
        role = "admin" if groups & set(ADMIN_GROUPS) else "push" if groups & set(WRITER_GROUPS) else "pull"
        return Identity(str(user.get("username", "")), role, "token", tuple(sorted(groups)))

    async def may_get(self, spec: dict[str, Any]) -> bool:
        """A SubjectAccessReview with `spec` (user, groups, resourceAttributes), in a thread."""
        return await self._reviews.run(self._access_review, spec)

    def _access_review(self, spec: dict[str, Any]) -> bool:
        from kubernetes import client

        self._ensure_api()
        api = client.AuthorizationV1Api(self._api.api_client)
        attrs = spec["resourceAttributes"]
        review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            user=spec["user"], groups=spec["groups"], resource_attributes=client.V1ResourceAttributes(**attrs)))
        status = api.create_subject_access_review(review).status
        return bool(status is not None and status.allowed)

    def _ensure_api(self) -> None:
        from kubernetes import client

        from controlplane.common.kube.configuration import load_configuration

        assert self.kubeconfig is not None, "token reviews need the kubeconfig (checked by the caller)"
        if self._api is None:  # the CA held in memory: a killed DVCR leaves no temporary file of it
            self._api = client.AuthenticationV1Api(client.ApiClient(load_configuration(self.kubeconfig)))

    def _token_review(self, token: str) -> dict[str, Any]:
        from kubernetes import client

        self._ensure_api()
        review = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
        result = self._api.create_token_review(review)
        status = result.status
        return {"authenticated": bool(status.authenticated),
                "user": {"username": status.user.username, "groups": status.user.groups or []} if status.user else {}}


def hash_password(password: str, *, rounds: int = 10) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()
