"""The node handler's DVCR image source: `pull_disk` behind the handler's `ImageSource`
interface. It lives here, in the layer that composes components, because the node handler
and DVCR never import each other."""

from __future__ import annotations

import asyncio
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from controlplane.dvcr.credentials import DvcrConnection
from controlplane.dvcr.pull import pull_disk
from controlplane.nodehandler.images import ImageError


class DvcrImageSource:
    """Pulls `<registry>/<repo>:<tag>` references with DVCR's `node` (pull) user, or a worker's own token."""

    def __init__(self, info_path: Path | None, *, user: str = "node", connection: DvcrConnection | None = None) -> None:
        if connection is None:
            assert info_path is not None
            connection = DvcrConnection.from_info(info_path, user=user)
        self.connection = connection

    @classmethod
    def for_node(cls, url: str, *, ca_file: Path | None, kubeconfig: Path) -> DvcrImageSource:
        """A worker's source: DVCR at `url`, logged in with the node's own token (from its kubeconfig)."""
        from controlplane.common.kubeconfig import read_kubeconfig

        token = str(read_kubeconfig(kubeconfig).get("token", ""))
        return cls(None, connection=DvcrConnection(url=url.rstrip("/"), ca_file=ca_file, token=token))

    def check_access(self) -> tuple[bool, str] | None:
        """Whether DVCR accepts the node's credentials (`GET /v2/`); None when it cannot be asked."""
        auth = self.connection.authorization()
        req = urllib.request.Request(self.connection.url.rstrip("/") + "/v2/", headers={"Authorization": auth}
                                     if auth else {})
        context = self.connection.ssl_context()
        try:
            with urllib.request.urlopen(req, context=context if isinstance(context, ssl.SSLContext) else None,
                                        timeout=10):
                return True, f"DVCR at {self.connection.registry} accepts this node's pull credentials"
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                return False, (f"DVCR at {self.connection.registry} refused this node's pull credentials "
                               f"({exc.code}): no VM image can be pulled here; re-issue the node's DVCR credentials "
                               "(run `dvp install` again for this host)")
            return None
        except OSError:
            return None

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
