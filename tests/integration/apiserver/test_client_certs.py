"""Client certificates on a real `dvp server`, as kube-apiserver's `--client-ca-file` accepts
them, driven by kubectl 1.33: `dvp user create --cert` writes a kubeconfig with a key and a
certificate signed by the cluster CA; `kubectl auth whoami` shows CN and O as user and
groups; RBAC decides as for token users; `dvp user delete` refuses the certificate from the
next request; a certificate of another CA, or an expired one, ends the TLS handshake."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from controlplane.common import pki
from tests.services.apiserver import KUBECTL_V33, REPO, ApiServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    srv = ApiServerProcess(tmp_path_factory.mktemp("certs") / "data")
    srv.start(timeout=120)
    srv.kubectl("create", "namespace", "team-c")
    srv.kubectl("create", "configmap", "settings", "-n", "team-c", "--from-literal=k=v")
    yield srv
    srv.stop()


def dvp(server: ApiServerProcess, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "installer.cli.main", *args, "--data-dir", str(server.data_dir)],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    return subprocess.run([str(KUBECTL_V33), *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def carol(server: ApiServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("carol") / "carol.kubeconfig"
    made = json.loads(dvp(server, "user", "create", "carol", "--cert", "--namespace", "team-c", "--role", "view",
                          "--group", "devs", "--group", "ops", "--kubeconfig-out", str(out), "-o", "json"))
    assert made["kind"] == "cert" and made["expires"].endswith("Z")
    assert out.stat().st_mode & 0o777 == 0o600
    return out


def test_kubeconfig_holds_a_certificate_and_no_token(carol: Path) -> None:
    credentials = yaml.safe_load(carol.read_text())["users"][0]["user"]
    assert set(credentials) == {"client-certificate-data", "client-key-data"}


def test_whoami_shows_cn_as_user_and_o_as_groups(carol: Path) -> None:
    whoami = kubectl(carol, "auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    info = json.loads(whoami.stdout)["status"]["userInfo"]
    assert info["username"] == "carol"
    assert info["groups"] == ["devs", "ops", "system:authenticated"]


def test_rbac_decides_for_a_certificate_user(carol: Path) -> None:
    allowed = kubectl(carol, "get", "configmap", "settings", "-n", "team-c", "-o", "name")
    assert allowed.returncode == 0 and allowed.stdout.strip() == "configmap/settings", allowed.stderr
    denied = kubectl(carol, "get", "secrets", "-n", "kube-system")
    assert denied.returncode != 0
    assert 'secrets is forbidden: User "carol" cannot list resource "secrets" in API group "" in the namespace ' \
           '"kube-system"' in denied.stderr


def test_list_shows_kind_and_expiry(server: ApiServerProcess, carol: Path) -> None:
    rows = json.loads(dvp(server, "user", "list", "-o", "json"))
    row = next(r for r in rows if r["user"] == "carol")
    assert row["kind"] == "cert" and row["expires"].endswith("Z")
    assert row["bindings"][0]["binding"] == "RoleBinding/dvp-user:carol:view"
    assert "carol                cert" in dvp(server, "user", "list")


def _tls_request(server: ApiServerProcess, cert: pki.ClientCert, tmp_path: Path) -> int | OSError:
    """GET /api with `cert` and no token: the HTTP status, or the error that ended the connection
    (TLS 1.2, where the server's verdict on the certificate comes inside the handshake)."""
    (tmp_path / "c.crt").write_bytes(cert.cert_pem)
    (tmp_path / "c.key").write_bytes(cert.key_pem)
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    ctx.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        with urllib.request.urlopen(server.url + "/api", context=ctx, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError as exc:
        return exc


def test_foreign_or_expired_certificates_end_the_handshake(server: ApiServerProcess, tmp_path: Path) -> None:
    ca = pki.KeyPair(server.data_dir / "pki" / "ca.crt", server.data_dir / "pki" / "ca.key")
    good = pki.issue_client_cert(ca, common_name="dave", organizations=[], validity=dt.timedelta(hours=1))
    assert _tls_request(server, good, tmp_path) == 200
    expired = pki.issue_client_cert(ca, common_name="dave", organizations=[], validity=dt.timedelta(seconds=-1))
    foreign = pki.issue_client_cert(pki.ensure_ca(tmp_path / "other"), common_name="dave", organizations=[],
                                    validity=dt.timedelta(hours=1))
    for cert in (expired, foreign):
        outcome = _tls_request(server, cert, tmp_path)
        assert isinstance(getattr(outcome, "reason", outcome), ssl.SSLError), outcome  # no HTTP answer at all


def test_deleting_a_certificate_user_refuses_the_certificate(server: ApiServerProcess, carol: Path) -> None:
    out = json.loads(dvp(server, "user", "delete", "carol", "-o", "json"))
    assert out["revoked"] is True
    refused = kubectl(carol, "get", "configmap", "settings", "-n", "team-c")
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr, refused.stderr
    assert "carol" not in [r["user"] for r in json.loads(dvp(server, "user", "list", "-o", "json"))]
