"""The steps the VirtualMachineIPAddress and VirtualMachineMACAddress reconcilers share: turning
the outcome of a lease claim into the Bound condition, the attachment handler (which
VirtualMachine uses the address) and the phase (Pending -> Bound -> Attached). Both kinds name
their condition types, the Bound reason and the attachment reasons with the same strings; only
the lease-conflict reason and the wording differ, and those are passed in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.v1alpha2 import VMIPCondition as C
from controlplane.controllers.runtime.state import State


def record_claim(state: State, address: str, why: str | None, *, lease_name: str, conflict_reason: str,
                 keep_address: bool) -> None:
    """Bound=True with the lease that holds `address` when the claim succeeded (`why` is None);
    else Bound=False with `why` and a quick retry, the drawn address dropped unless `keep_address`."""
    if why is not None:
        conditions.set_condition(state.status, C.Type.BOUND, False, conflict_reason, why, generation=state.generation)
        if not keep_address:
            state.status.pop("address", None)  # an automatic one draws again
        state.requeue(state.ctx.runtime.requeue_progress)
        return
    state.status["address"] = address
    conditions.set_condition(state.status, C.Type.BOUND, True, C.BoundReason.BOUND,
                             f"lease {lease_name} holds {address}", generation=state.generation)


class AttachmentHandler:
    """Which VirtualMachine uses the address, as found by `user_of`; `what` names the address
    in the message when none does."""

    name = "attachment"

    def __init__(self, user_of: Callable[[State], dict[str, Any] | None], *, what: str) -> None:
        self._user_of = user_of
        self._what = what

    def handle(self, state: State) -> None:
        vm = self._user_of(state)
        if vm is None:
            state.status.pop("virtualMachineName", None)
            conditions.set_condition(state.status, C.Type.ATTACHED, False, C.AttachedReason.VIRTUAL_MACHINE_NOT_FOUND,
                                     f"no virtual machine uses this {self._what}", generation=state.generation)
            return
        state.status["virtualMachineName"] = vm["metadata"]["name"]
        conditions.set_condition(state.status, C.Type.ATTACHED, True, C.AttachedReason.ATTACHED,
                                 f"used by virtual machine {vm['metadata']['name']}", generation=state.generation)


def phase_of(status: dict[str, Any]) -> str:
    """Pending until Bound, Attached once a machine uses it, else Bound."""
    if not conditions.is_true(status, C.Type.BOUND):
        return "Pending"
    return "Attached" if conditions.is_true(status, C.Type.ATTACHED) else "Bound"


class PhaseHandler:
    name = "phase"

    def handle(self, state: State) -> None:
        state.status["phase"] = phase_of(state.status)
        state.status["observedGeneration"] = state.generation
