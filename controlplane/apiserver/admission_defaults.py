"""DVP's mutating admission for VirtualMachines, done in the API server before validation.

DVP's virtualization-controller runs a mutating webhook whose defaulters, in order, are:

1. class name: an empty `spec.virtualMachineClassName` gets the default VirtualMachineClass,
   the one annotated `virtualmachineclass.virtualization.deckhouse.io/is-default-class: "true"`;
   several default classes refuse the machine. (DVP leaves "no default" to validation; here
   that refusal says how to fix it.)
2. core fraction: an empty `spec.cpu.coreFraction` gets the `defaultCoreFraction` of the class's
   sizing policy that covers `spec.cpu.cores`, else 100%.
3. network interface IDs: every `spec.networks[]` entry without an `id` takes the lowest free
   ID, in list order, from 1.

Here they run at the same point of a write (after schema defaulting, before validation), on
create and update, so a manifest written for DVP stores the same object.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.datastore import Datastore
from controlplane.apiserver.errors import Cause
from controlplane.apiserver.resources import ResourceInfo

GROUP = "virtualization.deckhouse.io"
CLASSES = f"{GROUP}/virtualmachineclasses"
DEFAULT_CLASS_ANNOTATION = "virtualmachineclass.virtualization.deckhouse.io/is-default-class"
MAX_INTERFACE_ID = 16 * 1024 - 1


def default_classes(store: Datastore) -> list[str]:
    return sorted(stored.obj["metadata"]["name"] for _key, stored in store.items(CLASSES)
                  if ((stored.obj.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION)
                  == "true")


def _class_name(store: Datastore, spec: dict[str, Any]) -> list[Cause]:
    if spec.get("virtualMachineClassName"):
        return []
    found = default_classes(store)
    if len(found) == 1:
        spec["virtualMachineClassName"] = found[0]
        return []
    if not found:
        return [Cause("spec.virtualMachineClassName", "Required value: no VirtualMachineClass is the default "
                      f'(annotated {DEFAULT_CLASS_ANNOTATION}: "true"): set spec.virtualMachineClassName or '
                      "annotate one class as the default", "FieldValueRequired")]
    return [Cause("spec.virtualMachineClassName", f'Invalid value: "": multiple default VirtualMachineClasses are '
                  f"found ({', '.join(found)}): set spec.virtualMachineClassName, or keep the {DEFAULT_CLASS_ANNOTATION}"
                  " annotation on one class only")]


def _fraction(value: Any) -> str:
    return f"{value}%" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _core_fraction(store: Datastore, spec: dict[str, Any]) -> None:
    cpu = spec.get("cpu")
    if not isinstance(cpu, dict) or cpu.get("coreFraction") or not spec.get("virtualMachineClassName"):
        return
    found = store.get(CLASSES, f"/{spec['virtualMachineClassName']}")
    if found is None:  # a class created later: the VM controller reports it; nothing to default from
        return
    cores = cpu.get("cores")
    fraction = "100%"
    for policy in (found.obj.get("spec") or {}).get("sizingPolicies") or []:
        bounds = policy.get("cores") if isinstance(policy, dict) else None
        if not isinstance(bounds, dict) or not isinstance(cores, int):
            continue
        if int(bounds.get("min", 0)) <= cores <= int(bounds.get("max", 0)):
            if policy.get("defaultCoreFraction") is not None:
                fraction = _fraction(policy["defaultCoreFraction"])
            break
    cpu["coreFraction"] = fraction


def _interface_ids(spec: dict[str, Any]) -> None:
    networks = spec.get("networks")
    if not isinstance(networks, list):
        return
    used = {n["id"] for n in networks if isinstance(n, dict) and isinstance(n.get("id"), int) and n["id"] > 0}
    next_id = 1
    for net in networks:
        if not isinstance(net, dict) or net.get("id") is not None:
            continue
        while next_id in used and next_id <= MAX_INTERFACE_ID:
            next_id += 1
        if next_id > MAX_INTERFACE_ID:
            return
        net["id"] = next_id
        used.add(next_id)
        next_id += 1


def default(store: Datastore, info: ResourceInfo, obj: dict[str, Any]) -> list[Cause]:
    """Apply DVP's admission defaults to `obj` in place; return why it is refused, if it is."""
    if info.group != GROUP or info.kind != "VirtualMachine":
        return []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    causes = _class_name(store, spec)
    _core_fraction(store, spec)
    _interface_ids(spec)
    return causes
