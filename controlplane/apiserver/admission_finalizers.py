"""Finalizers set on create, for the kinds whose controllers run with this API server.

kube-apiserver's StorageObjectInUseProtection admission plugin adds `kubernetes.io/pvc-protection`
to every PVC it creates, so the PVC protection controller never patches one in. This does the
same for DVP's kinds (`controlplane.api.finalizers.ON_CREATE`: the finalizer each controller adds
to every live object of its kind): the create response already carries it, and the controller's
own add finds nothing to write. Like kube's, it runs after managed fields are recorded, so the
finalizer belongs to no field manager (an apply without it does not remove it).

Only when the controllers run (`dvp server` without `--no-controllers`): an API server whose
objects no controller finalizes would leave every deleted one Terminating.
"""

from __future__ import annotations

from typing import Any

from controlplane.api.finalizers import GROUP, ON_CREATE
from controlplane.apiserver.resources import ResourceInfo


def add(info: ResourceInfo, obj: dict[str, Any]) -> None:
    """Add the finalizer of `obj`'s kind (if it has one) to the object being created, in place."""
    if info.group != GROUP:
        return
    finalizer = ON_CREATE.get(info.kind)
    if finalizer is None:
        return
    meta = obj["metadata"]
    present = meta.get("finalizers")
    if not isinstance(present, list):
        meta["finalizers"] = [finalizer]
    elif finalizer not in present:
        present.append(finalizer)
