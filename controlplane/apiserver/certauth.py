"""Client-certificate authentication, as kube-apiserver does it with `--client-ca-file`.

The TLS listener asks every client for a certificate (optional) and OpenSSL verifies one
that is shown against the client CA (the cluster CA by default: `ServerConfig.client_ca_file`).
A certificate that does not verify (another CA, expired, not for clientAuth) ends the TLS
handshake with an alert, before any HTTP: Python's `ssl` has no hook to accept it there and
refuse it later with kube-apiserver's 401. A verified certificate authenticates as user =
subject CN and groups = the subject's O values; bearer tokens work as before and a request
with neither is 401.

kube-apiserver has no revocation for client certificates. Here `dvp user create --cert`
records each certificate's serial in `DATA_DIR/client-certs.json` and `dvp user delete`
marks it revoked: a revoked serial is refused from the next request on (the file is
re-read only when its inode, mtime or size changed, as `tokens.json` is).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controlplane.apiserver.auth import User
from controlplane.apiserver.recordfile import RecordFile

FILE_NAME = "client-certs.json"


@dataclass(frozen=True)
class Presented:
    """What a verified client certificate says: who, and which serial until when."""

    user: User | None  # None: no CN, or not made for client authentication
    serial: int


@lru_cache(maxsize=1024)
def read_certificate(der: bytes) -> Presented:
    """CN → user name, every O → a group; kube-apiserver's mapping (cached per certificate)."""
    cert = x509.load_der_x509_certificate(der)
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    groups = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    if not names or not names[0] or (usages is not None and ExtendedKeyUsageOID.CLIENT_AUTH not in usages):
        return Presented(None, cert.serial_number)
    user = User(str(names[0]), groups, cert.not_valid_after_utc.timestamp())
    return Presented(user, cert.serial_number)


def peer_certificate(request: web.Request) -> bytes | None:
    """The DER of the client certificate the TLS handshake verified, if one was shown."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:  # plain HTTP (the Unix socket)
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return der if isinstance(der, bytes) else None


@dataclass(frozen=True)
class Issued:
    """One certificate `dvp user create --cert` made (the certificate itself is only the user's)."""

    serial: int
    user: str
    groups: tuple[str, ...]
    expires: float
    revoked: bool = False


class ClientCertAuthenticator:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._issued: dict[int, Issued] = {}
        self._revoked: frozenset[int] = frozenset()
        self._file = RecordFile(path)
        self._reload()

    def _reload(self, *, force: bool = False) -> None:
        records = self._file.read_if_changed(force=force)
        if records is None:
            return
        entries = [Issued(int(e["serial"], 16), e["user"], tuple(e.get("groups", [])), float(e["expires"]),
                          bool(e.get("revoked", False))) for e in records]
        self._issued = {e.serial: e for e in entries}
        self._revoked = frozenset(e.serial for e in entries if e.revoked)

    def _update(self, change: Callable[[dict[int, Issued]], None]) -> None:
        """Apply `change` to the records as they are on disk now; forget certificates past expiry."""
        with self._file.locked():
            self._reload(force=True)
            issued = dict(self._issued)
            change(issued)
            now = time.time()
            data = [{"serial": f"{e.serial:x}", "user": e.user, "groups": list(e.groups), "expires": e.expires,
                     **({"revoked": True} if e.revoked else {})} for e in issued.values() if e.expires > now]
            self._file.write(data)
            self._reload(force=True)

    def record(self, serial: int, user: str, groups: list[str], expires: float) -> None:
        self._update(lambda issued: issued.__setitem__(serial, Issued(serial, user, tuple(groups), expires)))

    def revoke_user(self, user: str) -> int:
        """Refuse every certificate issued to `user` from the next request on; how many there were."""
        count = 0

        def revoke(issued: dict[int, Issued]) -> None:
            nonlocal count
            for serial, e in list(issued.items()):
                if e.user == user and not e.revoked:
                    issued[serial] = Issued(e.serial, e.user, e.groups, e.expires, revoked=True)
                    count += 1

        self._update(revoke)
        return count

    def issued(self) -> list[Issued]:
        """Certificates issued and neither revoked nor expired."""
        self._reload()
        now = time.time()
        return [e for e in self._issued.values() if not e.revoked and e.expires > now]

    def authenticate(self, der: bytes | None) -> User | None:
        """The user a verified certificate stands for, unless its serial is revoked or it expired
        while the connection stayed open."""
        if der is None:
            return None
        presented = read_certificate(der)
        if presented.user is None or time.time() >= presented.user.expires:
            return None
        self._reload()
        if presented.serial in self._revoked:
            return None
        return presented.user
