"""Adapters that give each part of the control plane the runner's Component shape."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from controlplane.apiserver.server import APIServer, ServerConfig
from controlplane.common.kubeconfig import read_kubeconfig, write_kubeconfig
from controlplane.nodehandler.agent import Agent
from controlplane.nodehandler.config import AgentConfig, load_config_file


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


class AgentComponent:
    """The node handler in-process, for a one-host install (`dvp server` without `--no-agent`).

    It gets its own identity from the API server (user `system:node:<name>`, group
    `system:nodes`; the token is kept in `DATA_DIR/agent/kubeconfig` and reused while valid),
    and issues its console certificate from the server's CA. Settings come from
    `--agent-config` (the same keys as `dvp agent --config`)."""

    name = "node handler"

    def __init__(self, api: ApiServerComponent, *, config_file: Path | None = None) -> None:
        self.api = api
        self.config_file = config_file
        self.agent: Agent | None = None

    def _kubeconfig(self, node: str) -> Path:
        server = self.api.server
        assert server.auth is not None and server.ca is not None
        path = server.config.data_dir / "agent" / "kubeconfig"
        user = f"system:node:{node}"
        if path.exists():
            token = read_kubeconfig(path)["token"]
            found = server.auth.authenticate(f"Bearer {token}")
            if found is not None and found.name == user:
                write_kubeconfig(path, server=server.url, ca_pem=server.ca.cert_pem(), token=token, user=user)
                return path
        server.auth.revoke_user(user)
        token = server.issue_token(user, ["system:nodes"])
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_kubeconfig(path, server=server.url, ca_pem=server.ca.cert_pem(), token=token, user=user)

    def _config(self) -> AgentConfig:
        pki_dir = self.api.server.config.pki_dir
        if self.config_file is not None:
            base = load_config_file(self.config_file, kubeconfig=Path("/dev/null"), pki_dir=pki_dir)
        else:
            base = AgentConfig(kubeconfig=Path("/dev/null"), pki_dir=pki_dir)
        return replace(base, kubeconfig=self._kubeconfig(base.node_name)).validate()

    async def start(self) -> None:
        self.agent = Agent(self._config())
        await self.agent.start()

    async def stop(self) -> None:
        if self.agent is not None:
            await self.agent.stop()
