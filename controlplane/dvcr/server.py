"""DVCR as one component: `DvcrServer(config).start()` runs named steps (storage, users,
certificate, HTTPS listener, connection file) and sets `ready` once it serves.

`dvp server` starts it after the API server (`controlplane.embedded`), with a certificate
from the platform CA and a kubeconfig for TokenReview; `dvp dvcr serve` runs it alone
(the `dkp` target), creating its own CA when given none. Data lives under
`DATA_DIR/dvcr/` (see `layout` for the storage tree).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from controlplane.common import filemodes, pki
from controlplane.common.listener import app_runner
from controlplane.dvcr import credentials, metrics
from controlplane.dvcr.adminapi import AdminApi
from controlplane.dvcr.app import RegistryApp
from controlplane.dvcr.auth import Authenticator
from controlplane.dvcr.fsdriver import FilesystemDriver
from controlplane.dvcr.gc import GcSettings
from controlplane.dvcr.store import RegistryStore
from controlplane.dvcr.uploadapi import UploadService

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """A start-up step failed; the message names the step."""


@dataclass
class DvcrConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 5443
    advertise_host: str = ""
    extra_sans: list[str] = field(default_factory=list)
    ca_dir: Path | None = None           # the platform CA (DATA_DIR/pki); created when missing
    tls_cert: Path | None = None         # or an explicit serving certificate and key
    tls_key: Path | None = None
    htpasswd: Path | None = None         # extra users besides the built-in ones
    kubeconfig: Path | None = None       # for TokenReview of platform bearer tokens
    gc: GcSettings = field(default_factory=GcSettings)
    upload_ttl: float = 24 * 3600

    @property
    def dvcr_dir(self) -> Path:
        return self.data_dir / "dvcr"

    @property
    def storage_dir(self) -> Path:
        return self.dvcr_dir / "storage"

    @property
    def pki_dir(self) -> Path:
        return self.ca_dir or self.data_dir / "pki"


class DvcrServer:
    name = "DVCR"

    def __init__(self, config: DvcrConfig) -> None:
        self.config = config
        self.ready = asyncio.Event()
        self.port = config.port
        self.store: RegistryStore | None = None
        self.uploads: UploadService | None = None
        self._runner: web.AppRunner | None = None
        self.ca_path: Path | None = None
        self.info_path = credentials.info_path(config.data_dir)

    @property
    def host(self) -> str:
        h = self.config.advertise_host or self.config.host
        return "127.0.0.1" if h in ("0.0.0.0", "::", "") else h

    @property
    def registry(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.registry}"

    async def _step(self, name: str, fn: object) -> None:
        log.info("dvcr: %s", name)
        try:
            result = fn()  # type: ignore[operator]
            if asyncio.iscoroutine(result):
                await result
        except Exception as exc:
            raise StartupError(f"{name}: {exc}") from exc

    async def start(self) -> None:
        await self._step("opening storage", self._open_storage)
        await self._step("preparing the serving certificate", self._tls)
        await self._step(f"listening on {self.config.host}:{self.config.port}", self._listen)
        await self._step("writing users and the connection file", self._write_info)
        self.ready.set()
        log.info("dvcr ready at %s (storage %s)", self.url, self.config.storage_dir)

    def _open_storage(self) -> None:
        self.config.dvcr_dir.mkdir(parents=True, exist_ok=True)
        self.config.dvcr_dir.chmod(0o700)
        filemodes.secure_tree(self.config.dvcr_dir, what="DVCR directory")
        self.store = RegistryStore(FilesystemDriver(self.config.storage_dir))
        metrics.install(self.config.storage_dir)

    def _tls(self) -> None:
        if self.config.tls_cert and self.config.tls_key:
            self.serving = pki.KeyPair(self.config.tls_cert, self.config.tls_key)
            self.ca_path = self.config.tls_cert
            return
        ca = pki.ensure_ca(self.config.pki_dir)
        sans = ["localhost", "127.0.0.1", socket.gethostname(), *self.config.extra_sans]
        sans += [h for h in (self.config.host, self.config.advertise_host) if h and h not in ("0.0.0.0", "::")]
        self.serving = pki.ensure_serving_cert(ca, self.config.pki_dir, "dvcr", sans=sans)
        self.ca_path = ca.cert_path

    async def _listen(self) -> None:
        assert self.store is not None
        htpasswd, roles = self.config.dvcr_dir / "htpasswd", self.config.dvcr_dir / "users.json"
        auth = Authenticator(htpasswd=htpasswd, roles=roles, kubeconfig=self.config.kubeconfig,
                             extra_htpasswd=self.config.htpasswd)
        registry = RegistryApp(self.store, auth)
        spool = self.config.dvcr_dir / "tmp"  # compressed uploads unpack here, on DVCR's own disk
        filemodes.make_private_dirs(spool)
        for leftover in spool.iterdir():  # from a process that was killed mid-import
            leftover.unlink(missing_ok=True)
        self.uploads = UploadService(self.store, registry, base_url=lambda: self.url, ttl=self.config.upload_ttl,
                                     spool_dir=spool)
        admin = AdminApi(self.store, registry, self.config.gc)
        uploads = self.uploads

        def extra_routes(app: web.Application) -> None:
            uploads.routes(app)
            admin.routes(app)

        app = registry.make(extra_routes=extra_routes)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.serving.cert_path, self.serving.key_path)
        self._runner = app_runner(app, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, ssl_context=ctx, backlog=512,
                           reuse_address=True)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        await self.uploads.start()

    def _write_info(self) -> None:
        assert self.ca_path is not None
        credentials.ensure_users(self.config.data_dir, self.registry)
        credentials.write_info(self.config.data_dir, url=self.url, registry=self.registry, ca=self.ca_path)

    async def stop(self) -> None:
        if self.uploads is not None:
            await self.uploads.stop()
        if self._runner is not None:
            await self._runner.cleanup()
