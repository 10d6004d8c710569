"""Bearer-token authentication for the API server.

Tokens live in `DIR/tokens.json` as SHA-256 digests with the user name and groups they
stand for (`admin` in `system:masters`; node agents in `system:nodes`; DVCR and
controllers their own), so the file grants nothing if it leaks. Every request must carry
one: anonymous requests get 401. Tokens are never logged; a user name is.

Several processes add tokens to the same file (the server for its components, `dvp join` for
workers): every change is a read-modify-write under an exclusive lock on `tokens.json.lock`,
so no process drops another's tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from controlplane.apiserver.recordfile import RecordFile
from controlplane.common.pki import new_token, token_digest


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]
    expires: float = 0.0  # epoch seconds after which the token is refused; 0: never


class BearerAuthenticator(Protocol):
    def authenticate(self, header: str | None) -> User | None: ...


class BearerChain:
    """Several bearer authenticators, asked in turn (tokens.json, then ServiceAccount tokens)."""

    def __init__(self, *chain: BearerAuthenticator) -> None:
        self.chain = chain

    def authenticate(self, header: str | None) -> User | None:
        for auth in self.chain:
            user = auth.authenticate(header)
            if user is not None:
                return user
        return None


class TokenAuthenticator:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, User] = {}
        self._file = RecordFile(path)
        self._reload()

    def _reload(self, *, force: bool = False) -> None:
        """Pick up tokens other processes added or revoked while the server runs (one stat when
        nothing changed)."""
        records = self._file.read_if_changed(force=force)
        if records is not None:
            self._entries = {e["sha256"]: User(e["user"], tuple(e.get("groups", [])), float(e.get("expires", 0)))
                             for e in records}

    def _update(self, change: Callable[[dict[str, User]], dict[str, User] | None]) -> None:
        """Apply `change` to the tokens as they are on disk now, and write them back."""
        with self._file.locked():
            self._reload(force=True)
            changed = change(self._entries)
            if changed is not None:
                self._entries = changed
            self._file.write([{"sha256": digest, "user": u.name, "groups": list(u.groups),
                               **({"expires": u.expires} if u.expires else {})} for digest, u in self._entries.items()])

    def issue(self, user: str, groups: list[str], *, ttl: float | None = None) -> str:
        """Create a new token for `user` (refused after `ttl` seconds if given); only its digest is kept."""
        token = new_token()
        self.add(token, user, groups, expires=time.time() + ttl if ttl else 0.0)
        return token

    def add(self, token: str, user: str, groups: list[str], *, expires: float = 0.0) -> None:
        self._update(lambda entries: entries.__setitem__(token_digest(token), User(user, tuple(groups), expires)))

    def revoke_user(self, user: str) -> None:
        self._update(lambda entries: {d: u for d, u in entries.items() if u.name != user})

    def users(self) -> list[User]:
        """Every identity with a token (one entry per token)."""
        self._reload()
        return list(self._entries.values())

    def has_user(self, user: str) -> bool:
        return any(u.name == user for u in self._entries.values())

    def authenticate(self, header: str | None) -> User | None:
        if not header or not header.startswith("Bearer "):
            return None
        self._reload()  # a revoke by `dvp user delete` counts from the next request on
        # Looking up the SHA-256 of the presented token leaks nothing useful about stored ones.
        user = self._entries.get(token_digest(header[7:].strip()))
        if user is not None and user.expires and time.time() >= user.expires:
            return None  # expired: as unknown as a token never issued
        return user
