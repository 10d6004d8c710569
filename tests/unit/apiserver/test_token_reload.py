"""A token another process issues is accepted at once, and one it revokes is refused at once:
`dvp server`'s supervisor writes a component's token just before starting it, and `dvp user
delete` revokes one, while the API server process may have looked at the file a moment ago."""

from __future__ import annotations

from pathlib import Path

from controlplane.apiserver.auth import TokenAuthenticator


def test_a_token_issued_by_another_process_is_accepted_at_once(tmp_path: Path) -> None:
    server = TokenAuthenticator(tmp_path / "tokens.json")
    admin = server.issue("admin", ["system:masters"])
    assert server.authenticate(f"Bearer {admin}") is not None  # the server has just looked
    token = TokenAuthenticator(tmp_path / "tokens.json").issue("system:node:n1", ["system:nodes"])
    user = server.authenticate(f"Bearer {token}")
    assert user is not None and user.name == "system:node:n1"
    assert server.authenticate("Bearer not-a-token") is None


def test_a_token_revoked_by_another_process_is_refused_from_the_next_request(tmp_path: Path) -> None:
    server = TokenAuthenticator(tmp_path / "tokens.json")
    token = server.issue("temp", ["system:authenticated"])
    assert server.authenticate(f"Bearer {token}") is not None  # cached, and looked at just now
    TokenAuthenticator(tmp_path / "tokens.json").revoke_user("temp")  # `dvp user delete temp`
    assert server.authenticate(f"Bearer {token}") is None
