"""The certificates of libvirtd's migration listener (controlplane/common/libvirt_pki.py) and
`dvp libvirt-cert`: issued by the platform CA, server and client usage apart, the node's address
in the server's SANs, the subject libvirtd's allowed-DN list admits (and a user's does not),
keys 0600, kept as they are on a second run."""

from __future__ import annotations

import fnmatch
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from controlplane.common import pki
from controlplane.common.libvirt_pki import (
    ALLOWED_DN,
    CA_FILE,
    CLIENT_CERT,
    CLIENT_KEY,
    FILES,
    SERVER_CERT,
    SERVER_KEY,
    LibvirtPki,
    ensure_libvirt_pki,
)
from controlplane.embedded.libvirt_cert import libvirt_cert


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _dn(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def test_issues_server_and_client_certificates_of_the_platform_ca(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path / "ca")
    out = tmp_path / "libvirt"
    assert ensure_libvirt_pki(ca, out, node_name="node-1", address="10.0.0.2") is True
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert (out / CA_FILE).read_bytes() == ca.cert_pem()
    server, client = _cert(out / SERVER_CERT), _cert(out / CLIENT_CERT)
    assert server.issuer == client.issuer == _cert(ca.cert_path).subject
    assert ExtendedKeyUsageOID.SERVER_AUTH in server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert pki.cert_sans(out / SERVER_CERT) == {"node-1", "10.0.0.2"}
    for name in (SERVER_KEY, CLIENT_KEY):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600


def test_allowed_dn_list_admits_node_certificates_only(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path / "ca")
    ensure_libvirt_pki(ca, tmp_path / "l", node_name="node-1", address="10.0.0.2")
    node = _cert(tmp_path / "l" / CLIENT_CERT)
    # both orders gnutls may print a DN in
    reversed_dn = ",".join(reversed(_dn(node).split(",")))
    assert all(any(fnmatch.fnmatchcase(dn, p) for p in ALLOWED_DN) for dn in (_dn(node), reversed_dn))
    user = x509.load_pem_x509_certificate(pki.issue_client_cert(
        ca, common_name="alice", organizations=["system:masters"], validity=pki.CERT_VALIDITY).cert_pem)
    assert not any(fnmatch.fnmatchcase(_dn(user), p) for p in ALLOWED_DN)
    conf = LibvirtPki(tmp_path / "l").conf_lines()
    assert "tls_no_verify_certificate = 0" in conf and f'"{ALLOWED_DN[0]}"' in conf


@pytest.mark.parametrize("change,reissued", [
    ({}, False), ({"address": "10.0.0.3"}, True), ({"node_name": "node-2"}, True), ({"new_ca": True}, True),
], ids=["same", "new-address", "new-name", "new-ca"])
def test_second_run_keeps_a_current_set(tmp_path: Path, change: dict[str, object], reissued: bool) -> None:
    ca = pki.ensure_ca(tmp_path / "ca")
    out = tmp_path / "l"
    ensure_libvirt_pki(ca, out, node_name="node-1", address="10.0.0.2")
    if change.get("new_ca"):
        ca = pki.ensure_ca(tmp_path / "ca2")
    args = {"node_name": "node-1", "address": "10.0.0.2", **{k: v for k, v in change.items() if k != "new_ca"}}
    assert ensure_libvirt_pki(ca, out, node_name=str(args["node_name"]), address=str(args["address"])) is reissued


def test_command_reports_changed_once(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path / "server"), "--node-name", "n1", "--node-ip", "10.0.0.2",
            "--out-dir", str(tmp_path / "out")]
    missing = runner.invoke(libvirt_cert, args)
    assert missing.exit_code != 0 and "ca.key" in missing.output
    pki.ensure_ca(tmp_path / "server" / "pki")
    assert json.loads(runner.invoke(libvirt_cert, args).output) == {"changed": True}
    assert json.loads(runner.invoke(libvirt_cert, args).output) == {"changed": False}
