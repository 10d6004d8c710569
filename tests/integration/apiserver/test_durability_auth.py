"""Durability across SIGKILL, watches that resume after a restart, 410 for compacted
history, and authentication/TLS on the only listener."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import urllib.request

import pytest
from kubernetes import client, watch

from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration


def test_acknowledged_writes_survive_sigkill_and_watch_resumes(fresh_apiserver: ApiServerProcess) -> None:
    server = fresh_apiserver
    v1 = client.CoreV1Api(server.client())
    start_rv = v1.list_namespaced_config_map("default").metadata.resource_version
    acked: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            try:
                v1.create_namespaced_config_map("default", {"metadata": {"name": f"d-{i}"}, "data": {"i": str(i)}})
            except Exception:
                return  # the server died under us; this write was never acknowledged
            acked.append(f"d-{i}")
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    while len(acked) < 50:
        pass
    server.kill()  # SIGKILL while the writer is mid-flight
    stop.set()
    t.join(10)
    server.start()
    v1 = client.CoreV1Api(server.client())
    names = {c.metadata.name for c in v1.list_namespaced_config_map("default").items}
    missing = [n for n in acked if n not in names]
    assert not missing, f"acknowledged but lost after SIGKILL: {missing[:5]}"
    events = list(watch.Watch().stream(v1.list_namespaced_config_map, "default", resource_version=start_rv,
                                       timeout_seconds=2))
    resumed = [e["object"].metadata.name for e in events if e["type"] == "ADDED"]
    assert resumed[: len(acked)] == acked, "a watch from before the restart replays every change in order"


def test_watch_from_compacted_version_is_gone(tmp_path: pytest.TempPathFactory) -> None:
    server = ApiServerProcess(tmp_path / "data", extra_args=["--watch-history", "20"])  # type: ignore[operator]
    server.start()
    try:
        v1 = client.CoreV1Api(server.client())
        for i in range(40):
            v1.create_namespaced_config_map("default", {"metadata": {"name": f"c-{i}"}})
        status, body = server.raw("GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2"
                                         "&timeoutSeconds=1")
        first = json.loads(body.splitlines()[0])
        assert first["type"] == "ERROR" and first["object"]["code"] == 410
        assert first["object"]["reason"] == "Expired"
    finally:
        server.stop()


@pytest.mark.parametrize("token", ["", "not-a-token"], ids=["anonymous", "wrong-token"])
def test_requests_without_valid_token_get_401(apiserver: ApiServerProcess, token: str) -> None:
    for path in ("/api/v1/namespaces", "/version", "/apis", "/openapi/v2"):
        status, body = apiserver.raw("GET", path, token=token)
        assert status == 401, path
        assert json.loads(body)["reason"] == "Unauthorized"


def test_kubectl_with_wrong_token_is_refused(apiserver: ApiServerProcess) -> None:
    out = apiserver.kubectl("get", "ns", "--token=wrong", check=False)
    assert out.returncode != 0 and "Unauthorized" in out.stderr


def test_plain_http_is_refused(apiserver: ApiServerProcess) -> None:
    with pytest.raises((ConnectionError, OSError)):
        urllib.request.urlopen(f"http://127.0.0.1:{apiserver.port}/version", timeout=5).read()
    with socket.create_connection(("127.0.0.1", apiserver.port), timeout=5) as s:
        s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = s.recv(4096)
        assert not reply.startswith(b"HTTP/1.1 200")


def test_serving_certificate_is_signed_by_the_written_ca(apiserver: ApiServerProcess) -> None:
    ctx = ssl.create_default_context(cafile=str(apiserver.ca_file))
    with socket.create_connection(("127.0.0.1", apiserver.port)) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        cert = tls.getpeercert()
    sans = {v for _, v in cert["subjectAltName"]}
    assert {"localhost", "127.0.0.1"} <= sans
    assert (apiserver.kubeconfig.stat().st_mode & 0o077) == 0, "the kubeconfig holds a token: owner-only"


def test_token_review_tells_components_who_a_token_belongs_to(apiserver: ApiServerProcess) -> None:
    auth = client.AuthenticationV1Api(apiserver.client())
    good = auth.create_token_review({"spec": {"token": apiserver.token}})
    assert good.status.authenticated and good.status.user.username == "admin"
    assert "system:masters" in good.status.user.groups
    bad = auth.create_token_review({"spec": {"token": "forged"}})
    assert not bad.status.authenticated
