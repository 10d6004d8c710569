"""Certificates of libvirtd's migration listener: what lets one host's libvirtd hand a VM to another's.

Live migration is peer-to-peer: the source libvirtd opens `qemu+tls://<target address>/system` to
the target's libvirtd (docs/live-migration.md). Both ends authenticate with a certificate from the
platform's CA (`pki.ensure_ca`, the server's data directory): each host gets one directory in the
layout libvirt reads (`?pkipath=DIR` for the client side, `ca_file`/`cert_file`/`key_file` for the
listener):

```
DIR/cacert.pem                  the platform CA (public)
DIR/servercert.pem, serverkey.pem  the listener's: serverAuth, SANs = node name + internal address
DIR/clientcert.pem, clientkey.pem  what this host's libvirtd presents to the others: clientAuth
```

Both certificates carry subject `CN=dvp-migration:<node>, O=dvp:migration`; the listener admits
only those (`ALLOWED_DN`, libvirtd's `tls_allowed_dn_list`), so a user's client certificate from
the same CA (`dvp user --cert`: CN = user, O = groups) opens no libvirtd. The install also
copies the set under QEMU's names (`QEMU_NAMES`) for QEMU's own TLS on the migration stream.
Every file is written 0600 in a 0700 directory (the copy on the master sits in the server's data
directory, whose modes the server checks); the install makes the host's certificates 0644, keys
stay 0600.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controlplane.common import pki

ORGANIZATION = "dvp:migration"
CN_PREFIX = "dvp-migration:"
ALLOWED_DN = (f"O={ORGANIZATION},CN={CN_PREFIX}*", f"CN={CN_PREFIX}*,O={ORGANIZATION}")
"""libvirtd's `tls_allowed_dn_list`: the subject in both orders, as gnutls versions print a DN
in encoding order or in RFC 4514's (reversed) order."""
CA_FILE, SERVER_CERT, SERVER_KEY, CLIENT_CERT, CLIENT_KEY = (
    "cacert.pem", "servercert.pem", "serverkey.pem", "clientcert.pem", "clientkey.pem")
FILES = (CA_FILE, SERVER_CERT, SERVER_KEY, CLIENT_CERT, CLIENT_KEY)
QEMU_NAMES = {CA_FILE: "ca-cert.pem", SERVER_CERT: "server-cert.pem", SERVER_KEY: "server-key.pem",
              CLIENT_CERT: "client-cert.pem", CLIENT_KEY: "client-key.pem"}
"""The same files under the names QEMU reads from an x509 directory (qemu.conf's
`migrate_tls_x509_cert_dir`): the target's QEMU serves the migration stream and the disks' NBD
server with the server pair, the source's QEMU connects with the client pair, each verifying the
other against the CA (and the source the target's address against the server certificate)."""
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class LibvirtPki:
    """One host's libvirt PKI directory."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    def conf_lines(self) -> str:
        """libvirtd.conf lines naming the listener's files and who may connect."""
        dns = ", ".join(f'"{dn}"' for dn in ALLOWED_DN)
        return (f'ca_file = "{self.path(CA_FILE)}"\ncert_file = "{self.path(SERVER_CERT)}"\n'
                f'key_file = "{self.path(SERVER_KEY)}"\ntls_no_verify_certificate = 0\n'
                f"tls_allowed_dn_list = [{dns}]\n")


def subject_cn(node_name: str) -> str:
    return f"{CN_PREFIX}{node_name}"


def _current(directory: Path, ca_pem: bytes, node_name: str, sans: list[str]) -> bool:
    """The directory holds a usable set for this CA, node and addresses (not expiring soon)."""
    if any(not (directory / name).is_file() for name in FILES):
        return False
    if (directory / CA_FILE).read_bytes() != ca_pem:
        return False
    ca = x509.load_pem_x509_certificate(ca_pem)
    for name, usage in ((SERVER_CERT, ExtendedKeyUsageOID.SERVER_AUTH), (CLIENT_CERT, ExtendedKeyUsageOID.CLIENT_AUTH)):
        cert = x509.load_pem_x509_certificate((directory / name).read_bytes())
        if cert.issuer != ca.subject or cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE:
            return False
        cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if cns != [subject_cn(node_name)]:
            return False
        if usage not in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value:
            return False
    return {s for s in sans if s} == pki.cert_sans(directory / SERVER_CERT)


def ensure_libvirt_pki(ca: pki.KeyPair, directory: Path, *, node_name: str, address: str) -> bool:
    """Keep (or issue) `directory`'s CA, server and client certificates for `node_name` listening
    on `address`; True when anything was written."""
    ca_pem = ca.cert_pem()
    sans = sorted({node_name, address} - {""})
    if _current(directory, ca_pem, node_name, sans):
        return False
    for cert_name, key_name, client in ((SERVER_CERT, SERVER_KEY, False), (CLIENT_CERT, CLIENT_KEY, True)):
        cert, key = pki.issue_leaf_pem(ca, common_name=subject_cn(node_name), organizations=[ORGANIZATION],
                                       sans=sans if not client else [], client=client)
        pki.write_private_file(directory / key_name, key)
        pki.write_private_file(directory / cert_name, cert)
    pki.write_private_file(directory / CA_FILE, ca_pem)
    return True


def copy_for_qemu(directory: Path, qemu_dir: Path) -> None:
    """`directory`'s set copied to `qemu_dir` under QEMU's names (0600 in a 0700 directory, for a
    QEMU running as root; the install sets the group QEMU runs as where that is not root)."""
    for name, qemu_name in QEMU_NAMES.items():
        pki.write_private_file(qemu_dir / qemu_name, (directory / name).read_bytes())
