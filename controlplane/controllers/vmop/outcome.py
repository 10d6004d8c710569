"""How the VMOP handlers that run a whole operation themselves (Restore, Clone) report it:
the Completed condition while they work, and the final phase with its event when they end."""

from __future__ import annotations

from controlplane.api import condition_builder as conditions
from controlplane.api.v1alpha2 import VMOPCondition as C
from controlplane.api.v1alpha2 import VMOPPhase as Phase
from controlplane.controllers.runtime.state import State

R = C.CompletedReason


def progress(state: State, ok: bool, reason: str, message: str) -> None:
    """Condition Completed with `reason`: how far the operation has come."""
    conditions.set_condition(state.status, C.Type.COMPLETED, ok, reason, message, generation=state.generation)


def finish(state: State, ok: bool, message: str) -> None:
    """Phase Completed or Failed, the condition and the event saying so; the chain ends here."""
    state.status["phase"] = Phase.COMPLETED if ok else Phase.FAILED
    progress(state, ok, R.OPERATION_COMPLETED if ok else R.OPERATION_FAILED, message)
    state.ctx.recorder.record(state.changed, type="Normal" if ok else "Warning",
                              reason="OperationCompleted" if ok else "OperationFailed", message=message[:1000])
    state.stop = True
