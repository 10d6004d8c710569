"""Who each component of `dvp server` is to the API server: its user and groups, and the
kubeconfig the supervisor writes for it before every start (the supervisor owns the tokens;
a component only reads its own file)."""

from __future__ import annotations

from pathlib import Path

from controlplane.apiserver.auth import TokenAuthenticator
from controlplane.common.kubeconfig import read_kubeconfig, write_kubeconfig

DVCR_USER, DVCR_GROUPS = "system:dvcr", ["dvp:components"]
CONTROLLERS_USER, CONTROLLERS_GROUPS = "system:dvp-controllers", ["system:controllers"]


def component_kubeconfig(data_dir: Path, path: Path, user: str, groups: list[str]) -> Path:
    """A kubeconfig for a component of the server: its token is reused across restarts while
    valid, and replaced (the old one revoked) when not. The server URL and CA come from the
    admin kubeconfig the API server wrote."""
    auth = TokenAuthenticator(data_dir / "tokens.json")
    admin = read_kubeconfig(data_dir / "kubeconfig")
    token = ""
    if path.exists():
        token = read_kubeconfig(path)["token"]
        if auth.authenticate(f"Bearer {token}") is None:
            token = ""
    if not token:
        auth.revoke_user(user)
        token = auth.issue(user, groups)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a component's credentials: root's only
    return write_kubeconfig(path, server=admin["server"], ca_pem=admin["ca_pem"], token=token, user=user)
