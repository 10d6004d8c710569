"""The node handler's events where users look for them.

The node handler acts on internal objects (a VirtualMachine's instance, a VirtualDisk's
volume), but `kubectl describe vm NAME` and `kubectl events --for vm/NAME` list only events
whose involvedObject is the user's object. Every event the node handler records
(`Started`, `StartFailed`, `ShutdownRequested`, `Destroyed`, `Provisioned`, `Resized`,
`ProvisioningFailed`) is therefore recorded twice: on the internal object, and on the
user's object that owns it (its controller ownerReference of a user-facing kind).

The events are written by a thread of the recorder's own (`BackgroundEventRecorder`, as the
controllers' are): the two writes of `Started` no longer stand between a domain's start and the
instance's status that says Running.
"""

from __future__ import annotations

from typing import Any

from controlplane.common.kube.events import BackgroundEventRecorder

# the kinds whose internal objects the node handler works on
USER_KINDS = frozenset({"VirtualMachine", "VirtualDisk"})


def user_owner(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The user's object owning `obj`, as a minimal object the recorder can point at."""
    meta = obj.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") in USER_KINDS and ref.get("controller", True) and ref.get("name"):
            return {"apiVersion": ref.get("apiVersion"), "kind": ref["kind"],
                    "metadata": {"name": ref["name"], "namespace": meta.get("namespace"), "uid": ref.get("uid")}}
    return None


class UserEventRecorder(BackgroundEventRecorder):
    """An EventRecorder that also records each event on the user's object owning the subject."""

    def record(self, obj: dict[str, Any], *, type: str, reason: str, message: str) -> None:
        super().record(obj, type=type, reason=reason, message=message)
        owner = user_owner(obj)
        if owner is not None:
            super().record(owner, type=type, reason=reason, message=message)
