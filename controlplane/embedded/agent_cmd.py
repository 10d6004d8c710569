"""`dvp agent` as the `dvp` executable runs it on a worker: the node handler's command with the
DVCR image source plugged in (this layer composes components; the node handler never imports
DVCR). With `dvcr-url` set (the install writes it into the worker's agent.yaml), images are
pulled from the master's DVCR with the node's own token — its DVCR pull credential, accepted
by DVCR through a TokenReview as a pull-only identity."""

from __future__ import annotations

from collections.abc import Sequence

from controlplane.embedded.dvcr_images import DvcrImageSource
from controlplane.nodehandler.cmd import agent_command
from controlplane.nodehandler.config import AgentConfig
from controlplane.nodehandler.images import ImageSource


def _sources(config: AgentConfig) -> Sequence[ImageSource]:
    if not config.dvcr_url:
        return []
    return [DvcrImageSource.for_node(config.dvcr_url, ca_file=config.dvcr_ca_file, kubeconfig=config.kubeconfig)]


agent = agent_command(_sources)
