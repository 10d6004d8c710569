"""Client certificates as kube-apiserver reads them: CN is the user, every O a group; a
certificate not made for client authentication, without a CN, expired, or revoked by
`dvp user delete` authenticates no one."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from controlplane.apiserver.auth import User
from controlplane.apiserver.certauth import ClientCertAuthenticator, read_certificate
from controlplane.common import pki
from controlplane.common.kubeconfig import render_kubeconfig

YEAR = dt.timedelta(days=365)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> pki.KeyPair:
    return pki.ensure_ca(tmp_path_factory.mktemp("pki"))


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(("cn", "orgs", "groups"), [
    ("alice", [], ()),
    ("alice", ["devs"], ("devs",)),
    ("bob", ["devs", "system:monitoring"], ("devs", "system:monitoring")),
], ids=["no-groups", "one-group", "two-groups"])
def test_subject_maps_to_user_and_groups(ca: pki.KeyPair, cn: str, orgs: list[str], groups: tuple[str, ...]) -> None:
    made = pki.issue_client_cert(ca, common_name=cn, organizations=orgs, validity=YEAR)
    presented = read_certificate(_der(made.cert_pem))
    assert presented.user == User(cn, groups, made.not_after.timestamp())
    assert presented.serial == made.serial


def test_a_serving_certificate_is_no_user(ca: pki.KeyPair, tmp_path: Path) -> None:
    serving = pki.issue_cert(ca, tmp_path, "srv", common_name="apiserver", sans=["localhost"])
    assert read_certificate(_der(serving.cert_pem())).user is None


def test_revoked_and_expired_certificates_authenticate_no_one(ca: pki.KeyPair, tmp_path: Path) -> None:
    auth = ClientCertAuthenticator(tmp_path / "client-certs.json")
    alice = pki.issue_client_cert(ca, common_name="alice", organizations=["devs"], validity=YEAR)
    bob = pki.issue_client_cert(ca, common_name="bob", organizations=[], validity=YEAR)
    for made, name in ((alice, "alice"), (bob, "bob")):
        auth.record(made.serial, name, [], made.not_after.timestamp())
    assert auth.authenticate(None) is None
    assert auth.authenticate(_der(alice.cert_pem)) == User("alice", ("devs",), alice.not_after.timestamp())
    # another process (`dvp user delete`) revokes: this instance sees it on the next request
    assert ClientCertAuthenticator(auth.path).revoke_user("alice") == 1
    assert auth.authenticate(_der(alice.cert_pem)) is None
    assert auth.authenticate(_der(bob.cert_pem)) is not None
    assert [c.user for c in auth.issued()] == ["bob"]
    assert (tmp_path / "client-certs.json").stat().st_mode & 0o777 == 0o600
    expired = pki.issue_client_cert(ca, common_name="old", organizations=[], validity=dt.timedelta(seconds=-1))
    assert auth.authenticate(_der(expired.cert_pem)) is None
    auth.record(expired.serial, "old", [], time.time() - 1)  # past expiry: not even kept
    assert "old" not in [c.user for c in auth.issued()] and expired.serial not in auth._issued


def test_kubeconfig_carries_certificate_and_key_not_a_token(ca: pki.KeyPair) -> None:
    made = pki.issue_client_cert(ca, common_name="alice", organizations=[], validity=YEAR)
    doc = render_kubeconfig(server="https://h:6443", ca_pem=b"ca", user="alice", client_cert_pem=made.cert_pem,
                            client_key_pem=made.key_pem)
    assert set(doc["users"][0]["user"]) == {"client-certificate-data", "client-key-data"}
