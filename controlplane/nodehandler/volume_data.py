"""A volume's bytes for the controllers, on the node's console endpoint:
`GET /v1/namespaces/{ns}/volumes/{name}/data` streams the qcow2 file of a Ready
InternalVirtualDiskVolume of this node — how a VirtualImage or ClusterVirtualImage is made
from a VirtualDisk or a VirtualDiskSnapshot (their volumes live on one node; the controllers'
importer reads it from here into DVCR).

Authorized as the console is (`consoleauth`: TokenReview, then a SubjectAccessReview): `get`
of `internalvirtualdiskvolumes/data` in the volume's namespace, which only the controllers'
identity holds. The file served is the one the volume's status names, and only when it lies
under this node's volume directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from controlplane.api.internal import VolumePhase
from controlplane.nodehandler.consoleauth import Denied, TokenReviewer
from controlplane.nodehandler.context import VOLUMES, NodeContext

PATH = "/v1/namespaces/{namespace}/volumes/{name}/data"


def access(namespace: str, name: str) -> dict[str, str]:
    return {"group": VOLUMES.group, "resource": VOLUMES.plural, "subresource": "data", "verb": "get",
            "namespace": namespace, "name": name}


def handler(ctx: NodeContext, reviewer: TokenReviewer) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def data(request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, reviewer.authorize, request.headers.get("Authorization"),
                                       access(ns, name))
        except Denied as exc:
            raise (web.HTTPUnauthorized if exc.status == 401 else web.HTTPForbidden)(text=str(exc)) from exc
        obj = ctx.volumes.get(ns, name)
        if obj is None or not ctx.mine(obj):
            raise web.HTTPNotFound(text=f"volume {ns}/{name} is not on node {ctx.node}")
        status = obj.get("status") or {}
        if status.get("phase") != VolumePhase.READY or not status.get("path"):
            raise web.HTTPConflict(text=f"volume {ns}/{name} is {status.get('phase') or 'Pending'}, not Ready")
        path = Path(str(status["path"]))
        root = ctx.layout.volumes.resolve()
        if not path.resolve().is_relative_to(root) or not path.is_file():
            raise web.HTTPNotFound(text=f"volume {ns}/{name} has no file under {root}")
        return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})

    return data
