"""A volume's bytes for the controllers, on the node's console endpoint:
`GET /v1/namespaces/{ns}/volumes/{name}/data` streams the qcow2 file of a Ready
InternalVirtualDiskVolume of this node — how a VirtualImage or ClusterVirtualImage is made
from a VirtualDisk or a VirtualDiskSnapshot (their volumes live on one node; the controllers'
importer reads it from here into DVCR).

Authorized as the console is (`consoleauth`: TokenReview, then a SubjectAccessReview): `get`
of `internalvirtualdiskvolumes/data` in the volume's namespace, which only the controllers'
identity holds. The file served is the one the volume's status names, and only when it lies
under this node's volume directory. A file with a backing file (an overlay of a snapshot's file,
`volume_chain`) is flattened first (`qemu-img convert` into a temporary file next to it,
unlinked once open): the importer refuses a qcow2 that names a backing file.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

from aiohttp import web

from controlplane.api.internal import VolumePhase
from controlplane.nodehandler import volume_chain
from controlplane.nodehandler.consoleauth import Denied, TokenReviewer
from controlplane.nodehandler.context import VOLUMES, NodeContext

CHUNK = 1 << 20

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
        if volume_chain.backing(path) is None:
            return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})
        flat = await loop.run_in_executor(None, flatten, path)
        try:
            size = os.fstat(flat.fileno()).st_size
            resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream",
                                               "Content-Length": str(size)})
            await resp.prepare(request)
            while chunk := await loop.run_in_executor(None, flat.read, CHUNK):
                await resp.write(chunk)
            await resp.write_eof()
            return resp
        finally:
            flat.close()

    return data


def flatten(path: Path) -> BinaryIO:
    """A standalone qcow2 copy of `path`'s whole chain, open for reading; its file is already unlinked."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".export", dir=path.parent)
    os.close(fd)
    try:
        done = subprocess.run(["qemu-img", "convert", "-q", "-U", "-f", "qcow2", "-O", "qcow2", str(path), tmp],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise web.HTTPInternalServerError(text=f"flattening {path.name} for export: {done.stderr.strip()}")
        return open(tmp, "rb")  # noqa: SIM115 - the caller streams and closes it
    finally:
        os.unlink(tmp)
