"""Which processes `dvp server` runs, in which order, and what the supervisor does around
each: write the component's kubeconfig before it starts, print where it serves once ready, and
pin a port chosen at random (`:0`) so a restarted component comes back where clients expect it.

Order: API server (everything talks to it), DVCR (the controllers and the node handler read
its connection file), then the controllers (unless --no-controllers) and the node handler
(unless --no-agent) together: neither needs the other to start, and a restart of the whole
server (an upgrade, a crash) is back a node handler's start-up sooner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from controlplane.common.announce import announce
from controlplane.embedded.child import API, CONTROLLERS, DVCR, NODE_HANDLER
from controlplane.embedded.config import ServerFlags, agent_config
from controlplane.embedded.identities import (
    CONTROLLERS_GROUPS,
    CONTROLLERS_USER,
    DVCR_GROUPS,
    DVCR_USER,
    component_kubeconfig,
)
from controlplane.embedded.supervisor import ChildSpec

if TYPE_CHECKING:
    from controlplane.embedded.supervisor import Supervisor


def _port(url: str) -> int:
    return urlsplit(url).port or 0


def component_specs(flags: ServerFlags, supervisor: Callable[[], Supervisor]) -> list[ChildSpec]:
    def api_ready(url: str) -> None:
        sup = supervisor()
        if sup.flags.port == 0:
            sup.flags = dataclasses.replace(sup.flags, port=_port(url))
        announce(f"dvp server: API ready at {url}; kubeconfig {flags.data_dir / 'kubeconfig'}")

    def dvcr_ready(url: str) -> None:
        sup = supervisor()
        if sup.flags.dvcr_port == 0:
            sup.flags = dataclasses.replace(sup.flags, dvcr_port=_port(url))
        announce(f"dvp server: DVCR ready at {url}; connection file {flags.dvcr_info}")

    def dvcr_kubeconfig() -> None:
        component_kubeconfig(flags.data_dir, flags.dvcr_kubeconfig, DVCR_USER, DVCR_GROUPS)

    def controllers_kubeconfig() -> None:
        component_kubeconfig(flags.data_dir, flags.controllers_kubeconfig, CONTROLLERS_USER, CONTROLLERS_GROUPS)

    def agent_kubeconfig() -> None:
        node = agent_config(flags).node_name
        component_kubeconfig(flags.data_dir, flags.agent_kubeconfig, f"system:node:{node}", ["system:nodes"])

    specs = [ChildSpec(API, "API server", on_ready=api_ready),
             ChildSpec(DVCR, "DVCR", prepare=dvcr_kubeconfig, on_ready=dvcr_ready)]
    if not flags.no_controllers:
        specs.append(ChildSpec(CONTROLLERS, "controllers", prepare=controllers_kubeconfig))
    if not flags.no_agent:
        specs.append(ChildSpec(NODE_HANDLER, "node handler", prepare=agent_kubeconfig,
                               with_previous=not flags.no_controllers))
    return specs
