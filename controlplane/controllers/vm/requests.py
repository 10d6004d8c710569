"""Power requests from VirtualMachineOperations to the VM controller.

The VM controller is the only writer of a VM's instance; a VirtualMachineOperation asks it
through an annotation on the VirtualMachine holding {id, action, force}. The VM controller
applies the request to the instance (with any changes awaiting a restart), and the
operation watches the instance's `status.handledPowerRequest` for its id."""

from __future__ import annotations

import json
from typing import Any

ANNOTATION = "virtualization.deckhouse.io/power-request"


def read(vm: dict[str, Any]) -> dict[str, Any] | None:
    raw = ((vm.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    if not raw:
        return None
    try:
        req = json.loads(raw)
    except ValueError:
        return None
    return req if isinstance(req, dict) and req.get("id") and req.get("action") else None


def encode(*, id: str, action: str, force: bool) -> str:
    return json.dumps({"id": id, "action": action, "force": force}, sort_keys=True)
