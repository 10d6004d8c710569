"""DVP's subresource API group, `subresources.virtualization.deckhouse.io/v1alpha2`:
`virtualmachines/{name}/console` and `/vnc` as websockets, proxied to the node handler of
the node the VM runs on (the Node's InternalIP and `daemonEndpoints.kubeletEndpoint.Port`),
as DVP's virtualization API proxies to virt-handler. The API server authenticates to the
node handler with a token of its own (checked there with a TokenReview) and verifies the
handler's certificate against the platform CA. Binary frames carry raw bytes both ways
(KubeVirt's `plain.kubevirt.io`). `virtualmachinepools/{name}/scaledownwith` (POST) removes the
replicas it names (`pool_scaledown.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from controlplane.api.internal import console_endpoint
from controlplane.apiserver import errors, pool_scaledown
from controlplane.apiserver.auth import User
from controlplane.apiserver.routing import Target
from controlplane.apiserver.service import ApiService

log = logging.getLogger(__name__)

GROUP, VERSION = "subresources.virtualization.deckhouse.io", "v1alpha2"
STREAMS = ("console", "vnc")
RESOURCES: list[dict[str, Any]] = [
    {"name": "virtualmachines", "singularName": "", "namespaced": True, "kind": "VirtualMachine", "verbs": []},
    *({"name": f"virtualmachines/{s}", "singularName": "", "namespaced": True, "kind": "VirtualMachine",
       "verbs": ["get"]} for s in STREAMS),
    {"name": "virtualmachinepools", "singularName": "", "namespaced": True, "kind": "VirtualMachinePool", "verbs": []},
    {"name": "virtualmachinepools/scaledownwith", "singularName": "", "namespaced": True,
     "kind": "VirtualMachinePool", "verbs": ["create"]},
]
SUBPROTOCOL = "plain.kubevirt.io"


class StreamProxy:
    def __init__(self, service: ApiService, *, ca_file: Path, token: str) -> None:
        self.service = service
        self.token = token
        self.ssl = ssl.create_default_context(cafile=str(ca_file))
        self.ssl.check_hostname = False  # node handlers are reached by IP; the chain is still verified

    def _endpoint(self, namespace: str, name: str, stream: str) -> str:
        vm_info = self.service.registry.get("virtualization.deckhouse.io", "v1alpha2", "virtualmachines")
        node_info = self.service.registry.get("", "v1", "nodes")
        assert vm_info is not None and node_info is not None
        vm = self.service.get(vm_info, namespace, name).obj
        status = vm.get("status") or {}
        node_name = status.get("nodeName")
        if not node_name or status.get("phase") not in ("Running", "Starting", "Stopping", "Migrating"):
            raise errors.ApiError(409, "Conflict", f'VirtualMachine "{name}" is {status.get("phase") or "Pending"}; '
                                                   f"its {stream} is available while it runs")
        endpoint = console_endpoint(self.service.get(node_info, "", node_name).obj)
        if not endpoint:
            raise errors.ApiError(503, "ServiceUnavailable", f"node {node_name} publishes no console endpoint")
        return f"wss://{endpoint}/v1/namespaces/{namespace}/instances/{name}/{stream}"

    async def handle(self, request: web.Request, target: Target, user: User) -> web.StreamResponse:
        if (target.plural, target.subresource) == ("virtualmachinepools", "scaledownwith") and target.namespace:
            if request.method != "POST":
                raise errors.method_not_allowed(request.method, "virtualmachinepools/scaledownwith")
            return await pool_scaledown.scale_down_with(self.service, request, target.namespace, target.name)
        if target.plural != "virtualmachines" or target.subresource not in STREAMS or not target.namespace:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        url = self._endpoint(target.namespace, target.name, target.subresource)
        log.info("%s opens the %s of %s/%s", user.name, target.subresource, target.namespace, target.name)
        async with aiohttp.ClientSession() as session:
            try:
                upstream = await session.ws_connect(url, ssl=self.ssl, protocols=(SUBPROTOCOL,), heartbeat=30,
                                                    headers={"Authorization": f"Bearer {self.token}"})
            except (aiohttp.ClientError, OSError) as exc:
                raise errors.ApiError(502, "BadGateway", f"cannot reach the node handler at {url}: {exc}") from exc
            ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), heartbeat=30)
            await ws.prepare(request)
            await _pipe(ws, upstream)
            return ws


async def _pipe(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    async def forward(src: Any, dst: Any) -> None:
        async for msg in src:
            if msg.type == WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await dst.send_bytes(msg.data.encode())
            else:
                break

    tasks = [asyncio.ensure_future(forward(client, upstream)), asyncio.ensure_future(forward(upstream, client))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await upstream.close()
        await client.close()
