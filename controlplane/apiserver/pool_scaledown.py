"""`POST .../virtualmachinepools/{name}/scaledownwith` in `subresources.virtualization.deckhouse.io`:
remove exactly the replicas named (`{"targets": [...]}`) and scale the pool down by that
number, as DVP's user guide documents. One write of the pool: `spec.replicas` lowered and
the targets recorded in its `scale-down-targets` annotation, which the pool controller
deletes first (and which lets an Explicit pool's scale-down through admission). Each target
must be a replica of this pool that is not being deleted already; otherwise 422 naming it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web

from controlplane.api.vmpool import SCALE_DOWN_TARGETS, scale_down_targets
from controlplane.apiserver import bodies, errors
from controlplane.apiserver.datastore import Conflict
from controlplane.apiserver.errors import Cause
from controlplane.apiserver.service import ApiService

GROUP, VERSION = "virtualization.deckhouse.io", "v1alpha2"
ATTEMPTS = 5


def _targets(body: Any) -> list[str]:
    targets = body.get("targets") if isinstance(body, dict) else None
    if not isinstance(targets, list) or not targets:
        raise errors.invalid("VirtualMachinePool", GROUP, "", [Cause("targets", "Required value: a non-empty list "
                                                                      "of the replicas (VirtualMachine names) to remove",
                                                                      "FieldValueRequired")])
    bad = [i for i, t in enumerate(targets) if not isinstance(t, str) or not t]
    if bad:
        raise errors.invalid("VirtualMachinePool", GROUP, "", [Cause(f"targets[{bad[0]}]", "Invalid value: "
                                                                      "must be a VirtualMachine name")])
    return list(dict.fromkeys(targets))


async def scale_down_with(service: ApiService, request: web.Request, namespace: str, name: str) -> web.Response:
    pools = service.registry.get(GROUP, VERSION, "virtualmachinepools")
    vms = service.registry.get(GROUP, VERSION, "virtualmachines")
    assert pools is not None and vms is not None
    targets = _targets(await bodies.decode(await bodies.read_limited(request), "application/json"))
    for _ in range(ATTEMPTS):
        pool = service.get(pools, namespace, name).copy()
        uid = pool["metadata"]["uid"]
        causes = []
        for i, target in enumerate(targets):
            found = service.store.get(vms.storage_resource, f"{namespace}/{target}")
            refs = ((found.obj.get("metadata") or {}).get("ownerReferences") or []) if found is not None else []
            if found is None or not any(r.get("controller") and r.get("uid") == uid for r in refs):
                causes.append(Cause(f"targets[{i}]", f'Invalid value: "{target}": not a replica of '
                                    f"VirtualMachinePool {namespace}/{name}", "FieldValueNotFound"))
            elif (found.obj.get("metadata") or {}).get("deletionTimestamp"):
                causes.append(Cause(f"targets[{i}]", f'Invalid value: "{target}": the replica is being deleted '
                                    "already", "FieldValueForbidden"))
        if causes:
            raise errors.invalid("VirtualMachinePool", GROUP, name, causes)
        pending = scale_down_targets(pool)
        fresh = [t for t in targets if t not in pending]
        annotations = pool["metadata"].setdefault("annotations", {})
        annotations[SCALE_DOWN_TARGETS] = json.dumps(pending + fresh)
        pool["spec"]["replicas"] = max(0, int(pool["spec"].get("replicas") or 0) - len(fresh))
        try:
            stored = await service.update(pools, namespace, name, pool)
        except errors.ApiError as exc:
            if exc.code == 409:
                continue
            raise
        except Conflict:
            continue
        return web.Response(body=orjson.dumps(stored.obj), content_type="application/json")
    raise errors.ApiError(409, "Conflict", f"VirtualMachinePool {namespace}/{name} kept changing; try again")
