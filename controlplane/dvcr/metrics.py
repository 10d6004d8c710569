"""DVCR's metrics. Requests as distribution (the CNCF registry) counts them:
`registry_http_requests_total{code,handler,method}` and `registry_http_request_duration_seconds`,
with its handler names (base, catalog, tags, manifest, blob, blob_upload, blob_upload_chunk).
Storage under the names DVP's DVCR alerts read: in DVP the registry keeps its blobs on a
PersistentVolumeClaim and the kubelet reports that volume's space as
`kubelet_volume_stats_*{namespace="d8-virtualization",persistentvolumeclaim="dvcr"}`; here
the volume is DVCR's storage directory, measured with statvfs on every scrape.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from aiohttp import web

from controlplane.common.metrics import REGISTRY, Family
from controlplane.common.request_timing import Handler, timed

NAMESPACE, CLAIM = "d8-virtualization", "dvcr"


def collect(storage_dir: Path) -> Iterable[Family]:
    labels = ("namespace", "persistentvolumeclaim")
    avail = Family("kubelet_volume_stats_available_bytes", "gauge", "Number of available bytes in the volume.",
                   labels)
    capacity = Family("kubelet_volume_stats_capacity_bytes", "gauge", "Capacity in bytes of the volume.", labels)
    used = Family("kubelet_volume_stats_used_bytes", "gauge", "Number of used bytes in the volume.", labels)
    try:
        st = os.statvfs(storage_dir)
    except OSError:
        return [avail, capacity, used]
    total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    avail.add(float(free), NAMESPACE, CLAIM)
    capacity.add(float(total), NAMESPACE, CLAIM)
    used.add(float(total - st.f_bfree * st.f_frsize), NAMESPACE, CLAIM)
    return [avail, capacity, used]


def install(storage_dir: Path) -> None:
    REGISTRY.add_collector("dvcr", lambda: collect(storage_dir))


REQUESTS = REGISTRY.counter("registry_http_requests_total", "Total number of HTTP requests made.",
                            ("code", "handler", "method"))
DURATION = REGISTRY.histogram("registry_http_request_duration_seconds",
                              "The HTTP request latencies in seconds.", ("handler", "method"),
                              buckets=(0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0))
_ROUTES = [(re.compile(r"^/v2/?$"), "base"), (re.compile(r"^/v2/_catalog$"), "catalog"),
           (re.compile(r"/tags/list$"), "tags"), (re.compile(r"/manifests/[^/]+$"), "manifest"),
           (re.compile(r"/blobs/uploads/?$"), "blob_upload"), (re.compile(r"/blobs/uploads/[^/]+$"), "blob_upload_chunk"),
           (re.compile(r"/blobs/[^/]+$"), "blob")]


def handler_name(path: str) -> str:
    if not path.startswith("/v2"):
        return "other"
    for pattern, name in _ROUTES:
        if pattern.search(path):
            return name
    return "other"


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    name, method = handler_name(request.path), request.method

    def done(code: int, seconds: float) -> None:
        DURATION.observe(seconds, name, method)
        REQUESTS.inc(str(code), name, method)

    return await timed(request, handler, done)
