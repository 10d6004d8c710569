"""tokens.json is shared by several writers (the server, `dvp join`, test harnesses): a token
issued by one is never dropped by another's later write."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controlplane.apiserver.auth import TokenAuthenticator


def test_writers_of_the_same_file_keep_each_others_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    server = TokenAuthenticator(path)
    admin = server.issue("admin", ["system:masters"])
    other = TokenAuthenticator(path)  # loaded now; the server writes after it
    node = other.issue("system:node:n1", ["system:nodes"])
    dvcr = server.issue("system:dvcr", ["dvp:components"])  # the server did not reload in between
    fresh = TokenAuthenticator(path)
    for token, user in ((admin, "admin"), (node, "system:node:n1"), (dvcr, "system:dvcr")):
        found = fresh.authenticate(f"Bearer {token}")
        assert found is not None and found.name == user
    other.revoke_user("system:node:n1")
    assert TokenAuthenticator(path).authenticate(f"Bearer {node}") is None
    assert TokenAuthenticator(path).authenticate(f"Bearer {dvcr}") is not None


def test_a_token_with_a_ttl_is_refused_once_it_expires(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tokens.json"
    auth = TokenAuthenticator(path)
    short = auth.issue("dev", ["devs"], ttl=60)
    forever = auth.issue("ops", [])
    assert auth.authenticate(f"Bearer {short}") is not None
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 61)
    fresh = TokenAuthenticator(path)  # the expiry is in the file, not only in memory
    assert fresh.authenticate(f"Bearer {short}") is None
    assert fresh.authenticate(f"Bearer {forever}") is not None
