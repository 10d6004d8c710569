"""`dvp join` (on the server host): what a worker's `dvp agent` joins the embedded API with —
a kubeconfig for user `system:node:<name>` (group `system:nodes`) with a token of its own,
a serving certificate for its console endpoint from the server's CA, and that CA's certificate
(ca.crt, public: the worker checks DVCR's certificate with it). The node's token is also its
DVCR pull credential: DVCR accepts platform tokens through a TokenReview, and a member of
`system:nodes` may only pull.

The install (playbooks/roles/embedded_agent) runs it on the master and copies the files to
the worker. It is idempotent: a bundle whose token still authenticates and whose certificate
covers the node's addresses is kept, so a second install changes nothing. Only the token's
digest is stored in tokens.json (controlplane/apiserver/auth.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("join", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("/var/lib/dvp/server"), show_default=True,
              help="The server's data directory (tokens, PKI, kubeconfig).")
@click.option("--node-name", required=True, help="The worker's node name (its host name).")
@click.option("--node-ip", default="", help="The worker's address (goes into its console certificate).")
@click.option("--out-dir", type=click.Path(path_type=Path), required=True,
              help="Where kubeconfig, tls.crt and tls.key (0600) and ca.crt are written.")
def join(data_dir: Path, node_name: str, node_ip: str, out_dir: Path) -> None:
    """Issue (or keep) a worker's join kubeconfig and console certificate; prints
    {"changed": true|false}."""
    from controlplane.apiserver.auth import TokenAuthenticator
    from controlplane.common import pki
    from controlplane.common.kubeconfig import read_kubeconfig, write_kubeconfig

    admin = data_dir / "kubeconfig"
    if not admin.is_file():
        raise click.ClickException(f"{admin} does not exist: is `dvp server --data-dir {data_dir}` initialised?")
    server = read_kubeconfig(admin)
    user = f"system:node:{node_name}"
    auth = TokenAuthenticator(data_dir / "tokens.json")
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    changed = False
    kubeconfig = out_dir / "kubeconfig"
    token = ""
    if kubeconfig.is_file():
        token = str(read_kubeconfig(kubeconfig).get("token", ""))
        who = auth.authenticate(f"Bearer {token}") if token else None
        if who is None or who.name != user:
            token = ""
    if not token:
        token = auth.issue(user, ["system:nodes"])
        changed = True
    ca = pki.ensure_ca(data_dir / "pki")
    if changed or not kubeconfig.is_file():
        write_kubeconfig(kubeconfig, server=server["server"], ca_pem=ca.cert_pem(), token=token, user=user)
    ca_file = out_dir / "ca.crt"
    if not ca_file.is_file() or ca_file.read_bytes() != ca.cert_pem():
        ca_file.write_bytes(ca.cert_pem())
        changed = True
    sans = sorted({node_name, *([node_ip] if node_ip else [])})
    cert = out_dir / "tls.crt"
    if not cert.is_file() or pki.cert_sans(cert) != set(sans):
        pair = pki.issue_cert(ca, out_dir, "tls", common_name=user, sans=sans)
        assert pair.cert_path == cert
        changed = True
    click.echo(json.dumps({"changed": changed}))
