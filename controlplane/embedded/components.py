"""Adapters that give each part of the control plane the runner's Component shape."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

from controlplane.apiserver.server import APIServer, ServerConfig
from controlplane.common.kube.client import KubeClient
from controlplane.common.kubeconfig import read_kubeconfig, write_kubeconfig
from controlplane.controllers.manager import Manager
from controlplane.controllers.settings import PlatformSettings
from controlplane.dvcr.server import DvcrConfig, DvcrServer
from controlplane.embedded.dvcr_images import DvcrImageSource
from controlplane.nodehandler.agent import Agent
from controlplane.nodehandler.config import AgentConfig, load_config_file

DVCR_USER, DVCR_GROUPS = "system:dvcr", ["dvp:components"]


def component_kubeconfig(api: ApiServerComponent, path: Path, user: str, groups: list[str]) -> Path:
    """A kubeconfig for an in-process component: its token is reused across restarts while
    valid, and replaced (the old one revoked) when not."""
    server = api.server
    assert server.auth is not None and server.ca is not None
    token = ""
    if path.exists():
        token = read_kubeconfig(path)["token"]
        if server.auth.authenticate(f"Bearer {token}") is None:
            token = ""
    if not token:
        server.auth.revoke_user(user)
        token = server.issue_token(user, groups)
    return write_kubeconfig(path, server=server.url, ca_pem=server.ca.cert_pem(), token=token, user=user)


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
        self.config.dvcr_dir.mkdir(parents=True, exist_ok=True)
        self.config.kubeconfig = component_kubeconfig(self.api, self.config.dvcr_dir / "kubeconfig",
                                                      DVCR_USER, DVCR_GROUPS)

    async def start(self) -> None:
        self._kubeconfig()
        self.server = DvcrServer(self.config)
        await self.server.start()
        print(f"dvp server: DVCR ready at {self.server.url}; connection file {self.server.info_path}", flush=True)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()


class ControllersComponent:
    """The controller manager in-process, with its own token, kubeconfig and DVCR access."""

    name = "controllers"
    USER, GROUPS = "system:dvp-controllers", ["system:controllers"]

    def __init__(self, api: ApiServerComponent, dvcr: DvcrComponent, settings: PlatformSettings) -> None:
        self.api = api
        self.dvcr = dvcr
        self.settings = settings
        self.manager: Manager | None = None

    async def start(self) -> None:
        path = component_kubeconfig(self.api, self.api.server.config.data_dir / "controllers.kubeconfig",
                                    self.USER, self.GROUPS)
        assert self.dvcr.server is not None
        info = json.loads(self.dvcr.server.info_path.read_text())
        settings = dataclasses.replace(self.settings, dvcr_url=info["url"], dvcr_ca_file=info["ca"],
                                       dvcr_importer_auth=info["authfiles"]["importer"],
                                       dvcr_admin_auth=info["authfiles"]["admin"])
        self.manager = Manager(KubeClient.from_kubeconfig(path, user_agent="dvp-controllers"), settings)
        await asyncio.to_thread(self.manager.start)

    async def stop(self) -> None:
        if self.manager is not None:
            await asyncio.to_thread(self.manager.stop)


class AgentComponent:
    """The node handler in-process, for a one-host install (`dvp server` without `--no-agent`).

    It gets its own identity from the API server (user `system:node:<name>`, group
    `system:nodes`; the token is kept in `DATA_DIR/agent/kubeconfig` and reused while valid),
    issues its console certificate from the server's CA, and pulls images from the embedded
    DVCR with DVCR's `node` user. Settings come from `--agent-config` (the keys of
    `dvp agent --config`)."""

    name = "node handler"

    def __init__(self, api: ApiServerComponent, dvcr: DvcrComponent, *, config_file: Path | None = None,
                 vm_cidr: str | None = None) -> None:
        self.api = api
        self.dvcr = dvcr
        self.config_file = config_file
        self.vm_cidr = vm_cidr
        self.agent: Agent | None = None

    def _config(self) -> AgentConfig:
        pki_dir = self.api.server.config.pki_dir
        if self.config_file is not None:
            base = load_config_file(self.config_file, kubeconfig=Path("/dev/null"), pki_dir=pki_dir)
        else:
            base = AgentConfig(kubeconfig=Path("/dev/null"), pki_dir=pki_dir)
        if self.vm_cidr and self.config_file is None:
            base = dataclasses.replace(base, vm_cidr=self.vm_cidr)
        path = self.api.server.config.data_dir / "agent" / "kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        kubeconfig = component_kubeconfig(self.api, path, f"system:node:{base.node_name}", ["system:nodes"])
        return dataclasses.replace(base, kubeconfig=kubeconfig).validate()

    async def start(self) -> None:
        assert self.dvcr.server is not None
        self.agent = Agent(self._config(), image_sources=[DvcrImageSource(self.dvcr.server.info_path)])
        await self.agent.start()

    async def stop(self) -> None:
        if self.agent is not None:
            await self.agent.stop()
