"""ServiceAccounts and their tokens on a real `dvp server`, driven by kubectl 1.33: every
namespace has a `default` account; `kubectl create token` answers a TokenRequest with a
signed token that authenticates as `system:serviceaccount:NS:NAME`; a RoleBinding to the
account grants what it says; deleting the account refuses its tokens at the next request."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.services.apiserver import KUBECTL_V33, ApiServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    srv = ApiServerProcess(tmp_path_factory.mktemp("sa") / "data")
    srv.start(timeout=120)
    yield srv
    srv.stop()


def admin(server: ApiServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return kubectl(server.kubeconfig, *args)


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    return subprocess.run([str(KUBECTL_V33), *args], env=env, capture_output=True, text=True, timeout=60)


def _token_kubeconfig(server: ApiServerProcess, token: str, path: Path) -> Path:
    doc = yaml.safe_load(server.kubeconfig.read_text())
    doc["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(doc))
    return path


def test_every_namespace_has_a_default_account(server: ApiServerProcess) -> None:
    assert admin(server, "create", "namespace", "robots").returncode == 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        got = admin(server, "get", "serviceaccount", "default", "-n", "robots", "-o", "name")
        if got.returncode == 0:
            break
        time.sleep(0.2)
    assert got.stdout.strip() == "serviceaccount/default", got.stderr
    table = admin(server, "get", "serviceaccounts", "-n", "robots").stdout.split()
    assert table[:6] == ["NAME", "SECRETS", "AGE", "default", "0", table[5]], table


def test_a_token_authenticates_the_account_until_it_is_deleted(server: ApiServerProcess, tmp_path: Path) -> None:
    assert admin(server, "create", "namespace", "bots").returncode == 0
    made = admin(server, "create", "serviceaccount", "builder", "-n", "bots")
    assert made.returncode == 0, made.stderr
    created = admin(server, "create", "token", "builder", "-n", "bots", "--duration", "20m")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.count(".") == 2
    as_sa = _token_kubeconfig(server, token, tmp_path / "sa.kubeconfig")

    whoami = json.loads(kubectl(as_sa, "auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert whoami["username"] == "system:serviceaccount:bots:builder"
    assert whoami["groups"] == ["system:serviceaccounts", "system:serviceaccounts:bots", "system:authenticated"]

    denied = kubectl(as_sa, "get", "configmaps", "-n", "bots")
    assert denied.returncode != 0
    assert 'User "system:serviceaccount:bots:builder" cannot list resource "configmaps"' in denied.stderr
    bound = admin(server, "create", "rolebinding", "builder-view", "-n", "bots", "--clusterrole", "view",
                  "--serviceaccount", "bots:builder")
    assert bound.returncode == 0, bound.stderr
    allowed = kubectl(as_sa, "get", "configmaps", "-n", "bots")
    assert allowed.returncode == 0, allowed.stderr

    assert admin(server, "delete", "serviceaccount", "builder", "-n", "bots").returncode == 0
    refused = kubectl(as_sa, "get", "configmaps", "-n", "bots")
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr, refused.stderr


def test_bad_token_requests_name_the_field(server: ApiServerProcess) -> None:
    short = admin(server, "create", "token", "default", "-n", "default", "--duration", "1m")
    assert short.returncode != 0 and "spec.expirationSeconds" in short.stderr, short.stderr
    missing = admin(server, "create", "token", "nobody", "-n", "default")
    assert missing.returncode != 0 and 'serviceaccounts "nobody" not found' in missing.stderr, missing.stderr


def test_discovery_lists_serviceaccounts_and_their_token_subresource(server: ApiServerProcess) -> None:
    code, body = server.raw("GET", "/api/v1")
    assert code == 200
    found = {r["name"]: r for r in json.loads(body)["resources"]}
    assert found["serviceaccounts"]["shortNames"] == ["sa"]
    assert found["serviceaccounts/token"]["kind"] == "TokenRequest"
    assert found["serviceaccounts/token"]["group"] == "authentication.k8s.io"
