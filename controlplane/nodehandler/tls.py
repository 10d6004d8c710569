"""The console endpoint's TLS: a serving certificate from the platform CA.

Either given as files (`--tls-cert-file/--tls-key-file`, issued by the installer for a remote
host), or issued here from the CA in `--pki-dir` (the one-host case, where `dvp server` and the
handler share the CA directory) into `STATE_DIR/pki/agent.{crt,key}`, re-issued when the node's
names change or the CA is a different one.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from controlplane.common import pki
from controlplane.nodehandler.config import AgentConfig
from controlplane.nodehandler.layout import Layout


def default_node_ip() -> str:
    """The source address of the default route (no packet is sent), else 127.0.0.1."""
    done = subprocess.run(["ip", "-j", "route", "get", "1.1.1.1"], capture_output=True, text=True, check=False)
    try:
        routes = json.loads(done.stdout or "[]")
        return str(routes[0]["prefsrc"])
    except (ValueError, IndexError, KeyError):
        return "127.0.0.1"


def _issued_by(cert: pki.KeyPair, ca: pki.KeyPair) -> bool:
    try:
        leaf = x509.load_pem_x509_certificate(cert.cert_path.read_bytes())
        root = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
        leaf.verify_directly_issued_by(root)
        return True
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False


def serving_pair(config: AgentConfig, layout: Layout, node_ip: str) -> pki.KeyPair:
    if config.tls_cert_file is not None and config.tls_key_file is not None:
        return pki.KeyPair(config.tls_cert_file, config.tls_key_file)
    assert config.pki_dir is not None
    ca = pki.KeyPair(config.pki_dir / "ca.crt", config.pki_dir / "ca.key")
    if not (ca.cert_path.exists() and ca.key_path.exists()):
        raise FileNotFoundError(f"--pki-dir {config.pki_dir}: ca.crt and ca.key are needed to issue the console "
                                "endpoint's certificate")
    sans = [config.node_name, node_ip, "localhost", "127.0.0.1", socket.gethostname()]
    pair = pki.ensure_serving_cert(ca, layout.pki, "agent", sans=sans)
    if not _issued_by(pair, ca):
        pair = pki.issue_cert(ca, layout.pki, "agent", common_name=f"system:node:{config.node_name}", sans=sans)
    return pair


def server_context(pair: pki.KeyPair) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pair.cert_path, pair.key_path)
    return ctx
