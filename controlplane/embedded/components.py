"""The parts of `dvp server`, each run in a process of its own by `child.py` under the
supervisor: the API server, DVCR, the controller manager and the node handler.

Each has `start()` (returns once it serves, or raises with context), `stop()`, and `url` (what
the supervisor prints and pins for restarts). Their kubeconfigs are written beforehand by the
supervisor (`identities.component_kubeconfig`), which owns the tokens; a component only reads its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

from controlplane.apiserver.server import APIServer, ServerConfig
from controlplane.common.kube.client import KubeClient
from controlplane.controllers.manager import Manager
from controlplane.controllers.settings import PlatformSettings
from controlplane.dvcr.server import DvcrConfig, DvcrServer
from controlplane.embedded.dvcr_images import DvcrImageSource
from controlplane.nodehandler.agent import Agent
from controlplane.nodehandler.config import AgentConfig


class ApiServerComponent:
    name = "API server"

    def __init__(self, config: ServerConfig) -> None:
        self.server = APIServer(config)

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()


class DvcrComponent:
    """DVCR: a certificate from the platform CA, and a kubeconfig of its own so it can check
    platform bearer tokens with TokenReview."""

    name = "DVCR"

    def __init__(self, config: DvcrConfig) -> None:
        self.server = DvcrServer(config)

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()


class ControllersComponent:
    """The controller manager with its own token and DVCR access (from DATA_DIR/dvcr.json);
    with `local_socket` it talks to the API server over its Unix socket, without TLS."""

    name = "controllers"

    def __init__(self, kubeconfig: Path, dvcr_info: Path, settings: PlatformSettings, *,
                 local_socket: Path | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.local_socket = local_socket
        self.dvcr_info = dvcr_info
        self.settings = settings
        self.manager: Manager | None = None
        self.url = ""

    async def start(self) -> None:
        info = json.loads(self.dvcr_info.read_text())
        settings = dataclasses.replace(self.settings, dvcr_url=info["url"], dvcr_ca_file=info["ca"],
                                       dvcr_importer_auth=info["authfiles"]["importer"],
                                       dvcr_admin_auth=info["authfiles"]["admin"])
        kube = KubeClient.from_kubeconfig(self.kubeconfig, user_agent="dvp-controllers", local_socket=self.local_socket)
        self.manager = Manager(kube, settings)
        await asyncio.to_thread(self.manager.start)

    async def stop(self) -> None:
        if self.manager is not None:
            await asyncio.to_thread(self.manager.stop)


class AgentComponent:
    """The node handler for a one-host install (`dvp server` without `--no-agent`): identity
    `system:node:<name>` in `system:nodes` (kubeconfig in DATA_DIR/agent), its console
    certificate from the server's CA, images from the embedded DVCR with DVCR's `node` user."""

    name = "node handler"

    def __init__(self, config: AgentConfig, dvcr_info: Path) -> None:
        self.config = config
        self.dvcr_info = dvcr_info
        self.agent: Agent | None = None
        self.url = ""

    async def start(self) -> None:
        self.agent = Agent(self.config.validate(), image_sources=[DvcrImageSource(self.dvcr_info)])
        await self.agent.start()

    async def stop(self) -> None:
        if self.agent is not None:
            await self.agent.stop()
