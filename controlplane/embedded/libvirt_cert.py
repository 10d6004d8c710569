"""`dvp libvirt-cert` (on the server host): a host's certificates for libvirtd's migration listener,
issued by the platform CA (controlplane/common/libvirt_pki.py).

The install (playbooks/roles/libvirt_migration) runs it on the master for every host, copies the
directory to the host's /var/lib/dvp/pki/libvirt and makes libvirtd listen on TLS there. It is
idempotent: a set issued by this CA for this node and address, not expiring soon, is kept, so a
second install changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("libvirt-cert", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("/var/lib/dvp/server"), show_default=True,
              help="The server's data directory (its pki/ holds the platform CA).")
@click.option("--node-name", required=True, help="The host's node name.")
@click.option("--node-ip", required=True, help="The internal address its libvirtd listens on (a SAN of its certificate).")
@click.option("--out-dir", type=click.Path(path_type=Path), required=True,
              help="Where cacert.pem, servercert.pem, serverkey.pem, clientcert.pem, clientkey.pem are written.")
def libvirt_cert(data_dir: Path, node_name: str, node_ip: str, out_dir: Path) -> None:
    """Issue (or keep) a host's libvirt migration certificates; prints {"changed": true|false}."""
    from controlplane.common import pki
    from controlplane.common.libvirt_pki import ensure_libvirt_pki

    ca = pki.KeyPair(data_dir / "pki" / "ca.crt", data_dir / "pki" / "ca.key")
    if not ca.key_path.is_file():
        raise click.ClickException(f"{ca.key_path} does not exist: is `dvp server --data-dir {data_dir}` initialised?")
    changed = ensure_libvirt_pki(ca, out_dir, node_name=node_name, address=node_ip)
    click.echo(json.dumps({"changed": changed}))
