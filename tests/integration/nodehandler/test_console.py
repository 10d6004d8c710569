"""The console endpoint: TLS with a certificate from the platform CA, bearer tokens checked by
TokenReview against the real API server, the serial console as a bidirectional websocket
stream, and VNC proxied from the domain's unix socket (the RFB handshake comes through).
The VM's cloud-init user data comes from a Secret (userDataSecretRef)."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Iterator

import aiohttp
import pytest

from controlplane.common.kube.client import SECRETS
from controlplane.common.kubeconfig import read_kubeconfig
from controlplane.nodehandler.context import INSTANCES
from tests.integration.nodehandler.support import NodeEnv, instance, read_log_from, wait_for
from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration
NS = "console"
vm_uid: dict[str, str] = {}


@pytest.fixture(scope="module")
def vm(node_env: NodeEnv) -> Iterator[str]:
    env = node_env
    if not env.agent.alive():
        env.agent.start()
    env.ensure_namespace(NS)
    env.boot_volume("vm-c-root", NS)
    script = "#!/bin/sh\necho SECRET-USER-DATA-$((20 + 1))\n"
    env.kube.create(SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vm-c-cloud-init"},
                              "data": {"userData": base64.b64encode(script.encode()).decode()}}, NS)
    body = instance("vm-c", env.node, namespace=NS, hostname="vm-console", grace=5,
                    disks=[{"name": "root", "volume": {"name": "vm-c-root"}}])
    body["spec"]["cloudInit"] = {"userDataSecretRef": {"name": "vm-c-cloud-init"}}
    obj = env.create_instance(body)
    env.wait_marker(obj["metadata"]["uid"])
    vm_uid["vm-c"] = obj["metadata"]["uid"]
    yield "vm-c"
    env.kube.delete_if_exists(INSTANCES, "vm-c", NS)


def _ssl(apiserver: ApiServerProcess) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(apiserver.ca_file))


async def _open(env: NodeEnv, apiserver: ApiServerProcess, path: str, token: str | None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    url = f"wss://127.0.0.1:{env.agent.console_port}{path}"
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, headers=headers, ssl=_ssl(apiserver)) as ws:
                msg = await ws.receive(timeout=10)
                return 101, msg.data if isinstance(msg.data, bytes) else b""
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status, b""


async def _console_roundtrip(env: NodeEnv, apiserver: ApiServerProcess) -> str:
    url = f"wss://127.0.0.1:{env.agent.console_port}/v1/namespaces/{NS}/instances/vm-c/console"
    async with aiohttp.ClientSession() as session, session.ws_connect(
            url, headers={"Authorization": f"Bearer {apiserver.token}"}, ssl=_ssl(apiserver)) as ws:
        assert ws.protocol == "plain.kubevirt.io" or ws.protocol is None
        await ws.send_bytes(b"\necho ws-$((6 * 7))-$(hostname)\n")
        got = b""
        while b"ws-42-vm-console" not in got:
            msg = await ws.receive(timeout=15)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            got += msg.data
        return got.decode(errors="replace")


def test_serial_console_is_a_bidirectional_stream(env: NodeEnv, vm: str, apiserver: ApiServerProcess) -> None:
    text = asyncio.run(_console_roundtrip(env, apiserver))
    assert "ws-42-vm-console" in text


def test_vnc_stream_carries_the_rfb_handshake(env: NodeEnv, vm: str, apiserver: ApiServerProcess) -> None:
    status, first = asyncio.run(_open(env, apiserver, f"/v1/namespaces/{NS}/instances/{vm}/vnc", apiserver.token))
    assert status == 101
    assert first.startswith(b"RFB 003.")


@pytest.mark.parametrize("who,expected", [("nobody", 401), ("forged", 401), ("node", 403)],
                         ids=["no-token", "unknown-token", "node-identity"])
def test_streams_need_an_authorized_token(env: NodeEnv, vm: str, apiserver: ApiServerProcess, who: str,
                                          expected: int) -> None:
    token = {"nobody": None, "forged": "not-a-real-token",
             "node": read_kubeconfig(env.agent.kubeconfig)["token"]}[who]
    for kind in ("console", "vnc"):
        status, _ = asyncio.run(_open(env, apiserver, f"/v1/namespaces/{NS}/instances/{vm}/{kind}", token))
        assert status == expected


def test_streams_and_metrics_are_authorized_by_rbac(env: NodeEnv, apiserver: ApiServerProcess) -> None:
    """Delegated authorization, as a kubelet's: an editor of another namespace is refused this
    namespace's consoles and the node's metrics (403 naming the rule); an editor of this one
    gets past authorization (404: no such instance here); `nodes/metrics` opens /metrics."""
    from controlplane.apiserver.auth import TokenAuthenticator

    tokens = TokenAuthenticator(apiserver.data_dir / "tokens.json")
    here, elsewhere, scraper = (tokens.issue(n, []) for n in ("console-editor", "other-editor", "node-scraper"))
    env.ensure_namespace(NS)
    env.ensure_namespace("console-other")
    for name, ns, user in (("ce-edit", NS, "console-editor"), ("oe-edit", "console-other", "other-editor")):
        env.kube.request("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", body={
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}]})
    env.kube.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", body={
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "ns-scrape"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:monitoring"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "node-scraper"}]})
    for kind in ("console", "vnc"):
        path = f"/v1/namespaces/{NS}/instances/nope/{kind}"
        assert asyncio.run(_open(env, apiserver, path, elsewhere))[0] == 403
        assert asyncio.run(_open(env, apiserver, path, here))[0] == 404

    async def fetch(path: str, token: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as s, s.get(f"https://127.0.0.1:{env.agent.console_port}{path}",
                                                        headers={"Authorization": f"Bearer {token}"},
                                                        ssl=_ssl(apiserver)) as r:
            return r.status, await r.text()
    status, text = asyncio.run(fetch("/metrics", here))
    assert status == 403 and 'User "console-editor" cannot get resource "nodes/metrics"' in text, text
    status, text = asyncio.run(fetch("/metrics", scraper))
    assert status == 200 and "node_memory_working_set_bytes" in text
    # a volume's bytes (images made from disks and snapshots): the controllers' and admins', no editor's
    status, text = asyncio.run(fetch(f"/v1/namespaces/{NS}/volumes/nope/data", here))
    assert status == 403 and 'cannot get resource "internalvirtualdiskvolumes/data"' in text, text
    assert asyncio.run(fetch(f"/v1/namespaces/{NS}/volumes/nope/data", apiserver.token))[0] == 404


def test_unknown_instance_is_404_and_healthz_is_open(env: NodeEnv, apiserver: ApiServerProcess) -> None:
    status, _ = asyncio.run(_open(env, apiserver, f"/v1/namespaces/{NS}/instances/nope/console", apiserver.token))
    assert status == 404

    async def healthz() -> str:
        async with aiohttp.ClientSession() as s, s.get(f"https://127.0.0.1:{env.agent.console_port}/healthz",
                                                        ssl=_ssl(apiserver)) as r:
            return await r.text()
    assert asyncio.run(healthz()) == "ok"


def test_plain_http_is_refused(env: NodeEnv) -> None:
    async def plain() -> None:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{env.agent.console_port}/healthz") as r:
            await r.text()
    with pytest.raises(aiohttp.ClientError):
        asyncio.run(plain())


def test_user_data_from_a_secret_reaches_the_guest(env: NodeEnv, vm: str) -> None:
    wait_for(lambda: "SECRET-USER-DATA-21" in read_log_from(env.serial(vm_uid[vm]), 0), timeout=20,
             what="the user-data script from the Secret ran")
