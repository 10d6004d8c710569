"""`dvp server --audit-policy-file` with a kube-style audit.k8s.io/v1 Policy, driven by
kubectl 1.33: health checks are not recorded, ConfigMap writes carry their request and
response bodies, a Secret's data never reaches the log even when a rule asks for its body,
a request with a token the server does not know is recorded as a 401 without a user, and a bad
policy file stops `dvp server` with an error naming the field."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services.apiserver import REPO, ApiServerProcess
from tests.services.kubectl import kubectl

pytestmark = pytest.mark.integration

POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
- level: RequestResponse
  resources: [{group: "", resources: ["configmaps"]}]
- level: Request
  resources: [{group: "", resources: ["secrets"]}]
- level: Metadata
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    work = tmp_path_factory.mktemp("audit")
    (work / "policy.yaml").write_text(POLICY)
    srv = ApiServerProcess(work / "data", extra_args=["--audit-policy-file", str(work / "policy.yaml")])
    srv.start(60)
    yield srv
    srv.stop()


def events(server: ApiServerProcess, want: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The audit lines `want` picks, once there are some (the log is written every half second)."""
    deadline = time.monotonic() + 10
    while True:
        path = server.data_dir / "audit.log"
        found = [e for e in map(json.loads, path.read_text().splitlines()) if want(e)] if path.exists() else []
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_levels_follow_the_policy_and_secret_data_never_reaches_the_log(server: ApiServerProcess) -> None:
    kubectl(server, "create", "configmap", "audited", "--from-literal=colour=teal")  # kubectl's own encoding
    code, _ = server.raw("POST", "/api/v1/namespaces/default/configmaps?audit=json", json.dumps(
        {"metadata": {"name": "audited-json"}, "data": {"colour": "plum"}}).encode(),
        headers={"Content-Type": "application/json"})
    assert code == 201
    kubectl(server, "create", "secret", "generic", "kept-out", "--from-literal=password=pa55-w0rd-xyz")
    assert server.raw("GET", "/readyz")[0] in (200, 503)  # answered (ready or not): recorded or not by the policy
    creates = events(server, lambda e: e["verb"] == "create" and e.get("objectRef", {}).get("resource") == "configmaps"
                     and e["user"].get("username") == "admin")
    assert len(creates) == 2, creates
    assert all(e["level"] == "RequestResponse" for e in creates)
    assert [e["requestObject"]["data"] for e in creates] == [{"colour": "teal"}, {"colour": "plum"}]
    (answered,) = [e for e in creates if "audit=json" in e["requestURI"]]
    assert answered["responseObject"]["metadata"]["name"] == "audited-json"
    assert answered["responseObject"]["metadata"]["resourceVersion"]
    (secret,) = events(server, lambda e: e["verb"] == "create" and e.get("objectRef", {}).get("resource") == "secrets")
    assert secret["level"] == "Metadata" and "requestObject" not in secret  # capped: credentials
    text = (server.data_dir / "audit.log").read_text()
    assert "pa55-w0rd-xyz" not in text and "cGE1NS13MHJkLXh5eg" not in text  # plain or base64
    assert not events(server, lambda e: e["requestURI"].startswith("/readyz"))


def test_a_refused_token_is_recorded_as_401_without_a_user(server: ApiServerProcess) -> None:
    code, _ = server.raw("GET", "/api/v1/namespaces/default/configmaps?audit=unknown-token", token="not-a-token")
    assert code == 401
    (line,) = events(server, lambda e: "audit=unknown-token" in e["requestURI"])
    assert line["responseStatus"]["code"] == 401 and line["user"] == {} and line["verb"] == "list"
    assert "not-a-token" not in (server.data_dir / "audit.log").read_text()


def test_a_bad_policy_file_stops_the_server_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text(POLICY.replace("level: Request\n", "level: Everything\n"))
    done = subprocess.run([sys.executable, "-m", "installer.cli.main", "server", "--data-dir", str(tmp_path / "data"),
                           "--audit-policy-file", str(bad)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"{bad}: rules[2].level: must be one of None, Metadata, Request, RequestResponse" in done.stderr
    assert not (tmp_path / "data" / "state.db").exists()
