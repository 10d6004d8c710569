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

Positive answers are cached briefly (keyed by a SHA-256 of the credentials, never the
credentials), so bcrypt and TokenReview cost is paid once per client, not per request.
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

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class AuthError(Exception):
    """Credentials were presented but are not valid (or could not be checked)."""


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
                 extra_htpasswd: Path | None = None, default_role: str = "push", basic_ttl: float = 60.0,
                 token_ttl: float = 10.0) -> None:
        self._users = _Reloading(htpasswd, read_htpasswd, {})
        self._extra_users = _Reloading(extra_htpasswd, read_htpasswd, {})
        self._roles = _Reloading(roles, lambda p: json.loads(p.read_text()), {})
        self.kubeconfig = kubeconfig
        self.default_role = default_role
        self.basic_ttl = basic_ttl
        self.token_ttl = token_ttl
        self._cache: dict[str, tuple[float, Identity]] = {}
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

    async def authenticate(self, header: str | None) -> Identity | None:
        """The caller's identity; None without credentials; AuthError when they are wrong."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        value = value.strip()
        key = hashlib.sha256(header.encode()).hexdigest()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        if scheme.lower() == "basic":
            identity = await self._basic(value)
            ttl = self.basic_ttl
        elif scheme.lower() == "bearer":
            identity = await self._bearer(value)
            ttl = self.token_ttl
        else:
            raise AuthError(f"authorization scheme {scheme!r} is not supported (use Basic or Bearer)")
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + ttl, identity)
        return identity

    async def _basic(self, value: str) -> Identity:
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthError("malformed basic credentials") from exc
        if not sep:
            raise AuthError("malformed basic credentials")
        hashed = self._users.get().get(user) or self._extra_users.get().get(user)
        if hashed is None:
            await asyncio.sleep(0.05)  # don't make unknown user names cheaper to probe than known ones
            raise AuthError(f"unknown user {user!r} or wrong password")
        ok = await asyncio.get_running_loop().run_in_executor(None, bcrypt.checkpw, password.encode(), hashed)
        if not ok:
            log.warning("dvcr: wrong password for user %s", user)
            raise AuthError(f"unknown user {user!r} or wrong password")
        role = self._roles.get().get(user, self.default_role)
        return Identity(user, role if role in ROLES else "pull", "htpasswd")

    async def _bearer(self, token: str) -> Identity:
        if token.startswith(ISSUED_PREFIX):
            hit = self._issued.get(token_digest(token))
            if hit is None or hit[0] <= time.monotonic():
                raise AuthError("the DVCR access token is unknown or expired; get a new one from /auth/token")
            return hit[1]
        if self.kubeconfig is None:
            raise AuthError("bearer tokens are not accepted here (no API server configured); use basic auth")
        try:
            status = await asyncio.get_running_loop().run_in_executor(None, self._token_review, token)
        except Exception as exc:
            log.warning("dvcr: TokenReview for token %s failed: %s", fingerprint(token), type(exc).__name__)
            raise AuthError("the bearer token could not be checked with the API server (TokenReview failed); "
                            "retry later") from exc
        if not status.get("authenticated"):
            raise AuthError(f"bearer token {fingerprint(token)} was not accepted by the API server")
        user = status.get("user") or {}
        groups = set(user.get("groups") or [])
        role = "admin" if groups & set(ADMIN_GROUPS) else "push" if groups & set(WRITER_GROUPS) else "pull"
        return Identity(str(user.get("username", "")), role, "token")

    def _token_review(self, token: str) -> dict[str, Any]:
        from kubernetes import client, config

        if self._api is None:
            api_client = config.new_client_from_config(str(self.kubeconfig))  # type: ignore[no-untyped-call]
            self._api = client.AuthenticationV1Api(api_client)
        review = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
        result = self._api.create_token_review(review)
        status = result.status
        return {"authenticated": bool(status.authenticated),
                "user": {"username": status.user.username, "groups": status.user.groups or []} if status.user else {}}


def hash_password(password: str, *, rounds: int = 10) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()
