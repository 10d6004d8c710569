"""Adapters that give each part of the control plane the runner's Component shape."""

from __future__ import annotations

import asyncio

from controlplane.apiserver.server import APIServer, ServerConfig
from controlplane.common.kube.client import KubeClient
from controlplane.common.kubeconfig import write_kubeconfig
from controlplane.controllers.manager import Manager
from controlplane.controllers.settings import PlatformSettings


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


class ControllersComponent:
    """The controller manager in-process, with its own token and kubeconfig."""

    name = "controllers"

    def __init__(self, api: ApiServerComponent, settings: PlatformSettings) -> None:
        self.api = api
        self.settings = settings
        self.manager: Manager | None = None

    async def start(self) -> None:
        server = self.api.server
        token = server.issue_token("system:dvp-controllers", ["system:controllers"])
        assert server.ca is not None
        path = write_kubeconfig(server.config.data_dir / "controllers.kubeconfig", server=server.url,
                                ca_pem=server.ca.cert_pem(), token=token, user="dvp-controllers")
        self.manager = Manager(KubeClient.from_kubeconfig(path, user_agent="dvp-controllers"), self.settings)
        await asyncio.to_thread(self.manager.start)

    async def stop(self) -> None:
        if self.manager is not None:
            await asyncio.to_thread(self.manager.stop)
