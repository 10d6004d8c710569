"""A VM on a lost node says so. When the node lifecycle controller marks the VM's node
Ready=Unknown (its node handler stopped renewing its Lease), or the Node is gone, nothing
reports the machine any more: its last instance status would go on saying Running. This
handler, after `status`, turns the Running condition Unknown with the node's name and what the
node's own condition says; once the node is back, `status` reports from the instance again."""

from __future__ import annotations

from controlplane.api import condition_builder as conditions
from controlplane.api.internal import NodeCondition, NodeReason
from controlplane.api.v1alpha2 import VMCondition as C
from controlplane.common.kube.client import NODES
from controlplane.controllers.runtime.state import State


class NodeHealthHandler:
    name = "nodehealth"

    def handle(self, state: State) -> None:
        node_name = state.status.get("nodeName")
        if not node_name or state.deleting:
            return
        node = state.get(NODES, str(node_name))
        if node is None:
            message = f"node {node_name} is gone: the machine's state there is unknown"
        else:
            ready = next((c for c in (node.get("status") or {}).get("conditions") or []
                          if c.get("type") == NodeCondition.READY), None)
            if ready is None or ready.get("reason") != NodeReason.NODE_STATUS_UNKNOWN:
                self._back(state, str(node_name))
                return
            message = (f"node {node_name} is lost ({ready.get('message', 'its node handler stopped answering')}); "
                       "the machine's state there is unknown until the node is back")
        before = conditions.get(state.current.get("status") or {}, C.Type.RUNNING)
        if before is not None and (before.get("status"), before.get("reason"), before.get("message")) == (
                conditions.UNKNOWN, C.RunningReason.NODE_UNRESPONSIVE, message):
            # said already: keep it as written (`status` has just replaced it with the instance's
            # view, and a new transition time each cycle would be a write, an event, a cycle, ...)
            state.status["conditions"] = [dict(before) if c.get("type") == C.Type.RUNNING else c
                                          for c in state.status.get("conditions") or []]
            return
        conditions.set_condition(state.status, C.Type.RUNNING, conditions.UNKNOWN, C.RunningReason.NODE_UNRESPONSIVE,
                                 message, generation=state.generation)

    @staticmethod
    def _back(state: State, node_name: str) -> None:
        """The node answers again: a lost-node report `status` did not replace (no instance yet) goes."""
        running = conditions.get(state.status, C.Type.RUNNING) or {}
        if running.get("reason") == C.RunningReason.NODE_UNRESPONSIVE:
            conditions.set_condition(state.status, C.Type.RUNNING, False, C.RunningReason.VIRTUAL_MACHINE_NOT_RUNNING,
                                     f"node {node_name} is back; waiting for the machine's prerequisites",
                                     generation=state.generation)
