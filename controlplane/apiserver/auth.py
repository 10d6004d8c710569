"""Bearer-token authentication for the API server.

Tokens live in `DIR/tokens.json` as SHA-256 digests with the user name and groups they
stand for (`admin` in `system:masters`; node agents in `system:nodes`; DVCR and
controllers their own), so the file grants nothing if it leaks. Every request must carry
one: anonymous requests get 401. Tokens are never logged; a user name is.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from controlplane.common.pki import new_token, token_digest, write_private_file


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]


class TokenAuthenticator:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, User] = {}
        self._mtime = 0.0
        self._checked = 0.0
        self._reload()

    def _reload(self) -> None:
        """Pick up tokens added by `dvp server token create` while the server runs."""
        self._checked = time.monotonic()
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        self._entries = {e["sha256"]: User(e["user"], tuple(e.get("groups", [])))
                         for e in json.loads(self.path.read_text())}

    def _save(self) -> None:
        data = [{"sha256": digest, "user": u.name, "groups": list(u.groups)} for digest, u in self._entries.items()]
        write_private_file(self.path, json.dumps(data, indent=1).encode())
        self._mtime = self.path.stat().st_mtime

    def issue(self, user: str, groups: list[str]) -> str:
        """Create a new token for `user`; only its digest is kept."""
        token = new_token()
        self._entries[token_digest(token)] = User(user, tuple(groups))
        self._save()
        return token

    def add(self, token: str, user: str, groups: list[str]) -> None:
        self._entries[token_digest(token)] = User(user, tuple(groups))
        self._save()

    def revoke_user(self, user: str) -> None:
        self._entries = {d: u for d, u in self._entries.items() if u.name != user}
        self._save()

    def has_user(self, user: str) -> bool:
        return any(u.name == user for u in self._entries.values())

    def authenticate(self, header: str | None) -> User | None:
        if not header or not header.startswith("Bearer "):
            return None
        if time.monotonic() - self._checked > 1.0:
            self._reload()
        # Looking up the SHA-256 of the presented token leaks nothing useful about stored ones.
        return self._entries.get(token_digest(header[7:].strip()))
