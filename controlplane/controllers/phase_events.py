"""An event on every phase change a user should see in `kubectl describe` / `kubectl events`:
the last handler of a kind's chain compares the phase the cycle read with the one it will
write and records `PhaseChanged` ("Pending -> Running"), a Warning for the phases that need
attention, with the message of the condition that explains them. It runs in a reconciler's
`after` list, so a cycle a handler stopped early (deletion, a finished operation) still records.
Kinds: VirtualMachine, VirtualDisk, VirtualImage, ClusterVirtualImage, VirtualMachineIPAddress
(leaving Bound/Attached for Pending is a Warning: the lease was lost), VirtualMachineOperation.

Recorded before the write: when the write loses a race the next cycle records the same
transition again, and the recorder folds repeats into one event with a count.
"""

from __future__ import annotations

from controlplane.controllers.runtime.state import State


class PhaseEvents:
    name = "phase-events"

    def __init__(self, *, warning: frozenset[str], lost: frozenset[str] = frozenset()) -> None:
        self.warning = warning
        self.lost = lost
        """Phases whose leaving for an earlier phase is a Warning (an address's lease lost)."""

    def handle(self, state: State) -> None:
        old = (state.current.get("status") or {}).get("phase") or ""
        new = (state.changed.get("status") or {}).get("phase") or ""
        if not new or new == old:
            return
        message = f"phase {old or '(none)'} -> {new}"
        warn = new in self.warning or (old in self.lost and new not in self.lost)
        if warn:
            why = [c.get("message") for c in state.changed["status"].get("conditions") or []
                   if c.get("status") == "False" and c.get("message")]
            if why:
                message += f": {why[0]}"
        state.ctx.recorder.record(state.changed, type="Warning" if warn else "Normal",
                                  reason="PhaseChanged", message=message[:1000])
