"""The platform the VM benchmarks measure: `dvp server` with its node handler on this host's
test libvirtd, and the guest image imported as the VirtualImage `bench-guest` (Ready)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nodeimage.guest import ensure_image
from tests.integration.quickstart.manifests import vi_http
from tests.integration.quickstart.platform import Platform, start_platform
from tests.services.libvirtd import LibvirtDaemons


@contextmanager
def guest_platform(prefix: str) -> Iterator[tuple[Platform, Path]]:
    """(the platform, its work directory); everything stopped and released, and the work directory
    (the volumes: a GiB or more) deleted, on leaving."""
    daemons = LibvirtDaemons()
    service = daemons.acquire()
    conn = service.connect()
    image = ensure_image("cloud")
    work = Path(tempfile.mkdtemp(prefix=prefix))
    platform_gen = start_platform(work, conn, image.directory)
    platform = next(platform_gen)
    try:
        platform.apply(vi_http("bench-guest", platform.images.url(image.qcow2.name)))
        platform.phase("vi", "bench-guest", "Ready", timeout=180)
        yield platform, work
    finally:
        for _ in platform_gen:
            pass
        conn.close()
        daemons.release()
        shutil.rmtree(work, ignore_errors=True)
