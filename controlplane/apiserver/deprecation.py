"""Deprecated API versions warn as kube-apiserver makes them: every answer for a version a
CRD marks `deprecated: true` (VirtualMachineClass v1alpha2) carries
`Warning: 299 - "<deprecationWarning>"`, errors and watch streams included, which kubectl
prints on stderr as `Warning: ...`. The header is added when the response is prepared, so
answers written by any handler, streamed or not, get it once."""

from __future__ import annotations

from aiohttp import web

from controlplane.apiserver.resources import ResourceInfo

_KEY = "dvp.deprecation_warning"


def mark(request: web.Request, info: ResourceInfo) -> None:
    """Note that the request is for `info`'s version (a no-op when it is not deprecated)."""
    if info.deprecation_warning:
        request[_KEY] = info.deprecation_warning


def header(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp's `on_response_prepare` signal: add the warning of a marked request."""
    text = request.get(_KEY)
    if text:
        value = header(text)
        if value not in response.headers.getall("Warning", ()):
            response.headers.add("Warning", value)
