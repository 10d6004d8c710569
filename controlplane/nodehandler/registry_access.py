"""Whether DVCR accepts this node's pull credentials, as the Node's `DVCRAccess` condition.

A node whose credentials DVCR refuses cannot start any VM from an image, and finding that out
at the first pull leaves a VM failing on a node the scheduler kept choosing. So the node handler
asks every image source that can tell (`check_access()`: DVCR's `/v2/` with the node's
credentials) at start and then every `node_status_every` seconds, and reports the answer:
`DVCRAccess=False` (DVCRCredentialsRefused, with what was refused and how to fix it) keeps new
VMs off the node; a source that cannot be reached says nothing (that is the network's or DVCR's
trouble, not the node's credentials)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from controlplane.api.internal import NodeCondition, NodeReason
from controlplane.nodehandler.node import NodeRegistrar

log = logging.getLogger(__name__)


@runtime_checkable
class AccessCheck(Protocol):
    def check_access(self) -> tuple[bool, str] | None:
        """(accepted, message), or None when the registry could not be asked."""


def probe(sources: Sequence[object], registrar: NodeRegistrar) -> None:
    for source in sources:
        if not isinstance(source, AccessCheck):
            continue
        try:
            answer = source.check_access()
        except Exception as exc:  # noqa: BLE001 - unreachable is not refused
            log.info("node handler: DVCR access check: %s", exc)
            continue
        if answer is None:
            continue
        ok, message = answer
        registrar.set_condition(str(NodeCondition.DVCR_ACCESS), ok,
                                str(NodeReason.DVCR_CREDENTIALS_ACCEPTED if ok else NodeReason.DVCR_CREDENTIALS_REFUSED),
                                message)


class AccessWatch:
    def __init__(self, sources: Sequence[object], registrar: NodeRegistrar, *, every: float) -> None:
        self.sources = sources
        self.registrar = registrar
        self.every = every
        self._stop = threading.Event()

    def start(self) -> None:
        if any(isinstance(s, AccessCheck) for s in self.sources):
            threading.Thread(target=self._run, name="dvcr-access", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            probe(self.sources, self.registrar)
