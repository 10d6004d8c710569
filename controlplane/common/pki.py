"""The platform's PKI: one CA per installation, serving certificates, and bearer tokens.

`dvp server` calls `ensure_ca` and `ensure_serving_cert` on first start; DVCR and the node
handler get their serving certificates from the same CA, so one `certificate-authority`
in a kubeconfig (or a registry's CA bundle) trusts every listener of the platform.
Private keys and token files are written with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controlplane.common.filemodes import make_private_dirs

CA_VALIDITY = dt.timedelta(days=3650)
CERT_VALIDITY = dt.timedelta(days=825)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, as files on disk."""

    cert_path: Path
    key_path: Path

    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()


def _write_private(path: Path, data: bytes) -> None:
    make_private_dirs(path.parent)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    make_private_dirs(path.parent)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ensure_ca(directory: Path, *, common_name: str = "dvp-ca") -> KeyPair:
    """Create the CA under `directory` unless it exists; return its files."""
    pair = KeyPair(directory / "ca.crt", directory / "ca.key")
    if pair.cert_path.exists() and pair.key_path.exists():
        return pair
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(pair.key_path, _key_pem(key))
    _write_public(pair.cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return pair


def _san_entries(sans: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for san in dict.fromkeys(s for s in sans if s):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            out.append(x509.DNSName(san))
    return out


def cert_sans(path: Path) -> set[str]:
    """The DNS names and IP addresses a certificate file is valid for."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = {str(n) for n in ext.get_values_for_type(x509.DNSName)}
    return names | {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}


def _signed_leaf(ca: KeyPair, key: ec.EllipticCurvePrivateKey, *, common_name: str, organizations: list[str],
                 validity: dt.timedelta, client: bool, sans: list[str], signing_only: bool = False) -> x509.Certificate:
    """A leaf certificate for `key` signed by `ca`: CN and O as given, clientAuth or serverAuth,
    the SANs if any; `signing_only` adds a critical KeyUsage of digitalSignature alone."""
    ca_key = serialization.load_pem_private_key(ca.key_path.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if signing_only:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
        ), critical=True)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san_entries(sans)), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def issue_cert(
    ca: KeyPair, directory: Path, name: str, *, common_name: str, sans: list[str],
    client: bool = False, organizations: list[str] | None = None,
) -> KeyPair:
    """Issue (or re-issue) `name.crt`/`name.key` signed by `ca` for the given SANs."""
    key = _new_key()
    cert = _signed_leaf(ca, key, common_name=common_name, organizations=organizations or [], validity=CERT_VALIDITY,
                        client=client, sans=sans)
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    _write_private(pair.key_path, _key_pem(key))
    _write_public(pair.cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return pair


def issue_leaf_pem(ca: KeyPair, *, common_name: str, organizations: list[str], sans: list[str],
                   client: bool) -> tuple[bytes, bytes]:
    """A fresh key and a certificate for it signed by `ca` (clientAuth or serverAuth), as PEM
    (certificate, key), for callers that write them under names of their own."""
    key = _new_key()
    cert = _signed_leaf(ca, key, common_name=common_name, organizations=organizations, validity=CERT_VALIDITY,
                        client=client, sans=sans)
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


@dataclass(frozen=True)
class ClientCert:
    """A client certificate made for a person: PEM bytes kept in memory, never in the pki directory."""

    cert_pem: bytes
    key_pem: bytes
    serial: int
    not_after: dt.datetime


def issue_client_cert(ca: KeyPair, *, common_name: str, organizations: list[str],
                      validity: dt.timedelta) -> ClientCert:
    """A fresh key and a clientAuth certificate signed by `ca`: subject CN = user, O = groups,
    as kube-apiserver's `--client-ca-file` authentication reads them."""
    key = _new_key()
    cert = _signed_leaf(ca, key, common_name=common_name, organizations=organizations, validity=validity,
                        client=True, sans=[], signing_only=True)
    return ClientCert(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), cert.serial_number,
                      cert.not_valid_after_utc)


def ensure_serving_cert(ca: KeyPair, directory: Path, name: str, *, sans: list[str]) -> KeyPair:
    """Keep a serving certificate whose SANs cover `sans`; re-issue it when they don't."""
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    if pair.cert_path.exists() and pair.key_path.exists() and {s for s in sans if s} <= cert_sans(pair.cert_path):
        return pair
    return issue_cert(ca, directory, name, common_name=name, sans=sans)


def new_token() -> str:
    """An unguessable bearer token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What is stored instead of a token: its SHA-256, so a leaked file grants nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def fingerprint(secret: str) -> str:
    """A short, non-reversible name for a secret, safe to log."""
    return "sha256:" + token_digest(secret)[:12]


def write_private_file(path: Path, data: bytes) -> None:
    """Write a file only root can read (tokens, kubeconfigs with credentials)."""
    _write_private(path, data)
