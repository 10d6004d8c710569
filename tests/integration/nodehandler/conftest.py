"""One `dvp agent` (a real subprocess) for all node handler tests, against the shared `dvp server`
and libvirtd; tests that kill it start it again, so the next test finds it running."""

from __future__ import annotations

from collections.abc import Iterator

import libvirt
import pytest

from controlplane.common.kube.client import KubeClient
from nodeimage.guest import GuestImage
from tests.integration.nodehandler.support import NodeEnv
from tests.services.apiserver import ApiServerProcess
from tests.services.libvirtd import LibvirtService
from tests.services.nodeagent import NodeAgentProcess


@pytest.fixture(scope="session")
def node_env(apiserver: ApiServerProcess, libvirt_service: LibvirtService, libvirt_conn: libvirt.virConnect,
             guest_image: GuestImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeEnv]:
    agent = NodeAgentProcess(apiserver, tmp_path_factory.mktemp("agent"))
    try:
        agent.start()
        yield NodeEnv(kube=KubeClient.from_kubeconfig(apiserver.kubeconfig), agent=agent, image=guest_image.qcow2)
    finally:
        agent.teardown(libvirt_conn)


@pytest.fixture
def env(node_env: NodeEnv) -> NodeEnv:
    """The shared agent, started again if a previous test killed it."""
    if not node_env.agent.alive():
        node_env.agent.start()
    return node_env
