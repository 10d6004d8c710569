"""Adapters that give each part of the control plane the runner's Component shape."""

from __future__ import annotations

from controlplane.apiserver.server import APIServer, ServerConfig


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
