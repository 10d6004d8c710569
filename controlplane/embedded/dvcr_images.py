"""The node handler's DVCR image source: `pull_disk` behind the handler's `ImageSource`
interface. It lives here, in the layer that composes components, because the node handler
and DVCR never import each other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from controlplane.dvcr.credentials import DvcrConnection
from controlplane.dvcr.pull import pull_disk
from controlplane.nodehandler.images import ImageError


class DvcrImageSource:
    """Pulls `<registry>/<repo>:<tag>` references with DVCR's `node` (pull) user."""

    def __init__(self, info_path: Path, *, user: str = "node") -> None:
        self.connection = DvcrConnection.from_info(info_path, user=user)

    def handles(self, ref: str) -> bool:
        return ref.startswith(self.connection.registry + "/")

    def pull(self, ref: str, dest: Path, *, digest: str | None,
             progress: Callable[[int, int], None] | None) -> None:
        def report(p: object) -> None:
            if progress is not None:
                progress(int(getattr(p, "done", 0)), int(getattr(p, "total", 0) or 0))

        try:
            asyncio.run(pull_disk(ref, dest, connection=self.connection, progress=report))
        except Exception as exc:  # the handler shows the message on the volume/instance
            raise ImageError(f"image {ref}: pulling from DVCR failed: {exc}") from exc
