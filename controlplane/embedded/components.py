"""Adapters that give each part of the control plane the runner's Component shape."""

from __future__ import annotations

from controlplane.apiserver.server import APIServer, ServerConfig
from controlplane.common.kubeconfig import read_kubeconfig, write_kubeconfig
from controlplane.dvcr.server import DvcrConfig, DvcrServer

DVCR_USER, DVCR_GROUPS = "system:dvcr", ["dvp:components"]


class ApiServerComponent:
    name = "API server"

    def __init__(self, config: ServerConfig) -> None:
        self.server = APIServer(config)

    async def start(self) -> None:
        await self.server.start()
        print(f"dvp server: API ready at {self.server.url}; kubeconfig {self.server.config.kubeconfig_path}",
              flush=True)

    async def stop(self) -> None:
        await self.server.stop()


class DvcrComponent:
    """DVCR inside `dvp server`: a certificate from the platform CA, and a kubeconfig of its
    own so it can check platform bearer tokens with TokenReview."""

    name = "DVCR"

    def __init__(self, api: ApiServerComponent, config: DvcrConfig) -> None:
        self.api = api
        self.config = config
        self.server: DvcrServer | None = None

    def _kubeconfig(self) -> None:
        api = self.api.server
        assert api.auth is not None and api.ca is not None
        path = self.config.dvcr_dir / "kubeconfig"
        token = ""
        if path.exists():
            token = read_kubeconfig(path)["token"]
            if api.auth.authenticate(f"Bearer {token}") is None:
                token = ""
        if not token:
            api.auth.revoke_user(DVCR_USER)
            token = api.issue_token(DVCR_USER, DVCR_GROUPS)
        self.config.dvcr_dir.mkdir(parents=True, exist_ok=True)
        write_kubeconfig(path, server=api.url, ca_pem=api.ca.cert_pem(), token=token, user=DVCR_USER)
        self.config.kubeconfig = path

    async def start(self) -> None:
        self._kubeconfig()
        self.server = DvcrServer(self.config)
        await self.server.start()
        print(f"dvp server: DVCR ready at {self.server.url}; connection file {self.server.info_path}", flush=True)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
