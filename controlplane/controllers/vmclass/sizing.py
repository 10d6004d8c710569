"""VirtualMachineClass sizing policies: does a VM's CPU and memory fit one of them, and if
not, which rule fails (the VM controller reports it in SizingPolicyMatched)."""

from __future__ import annotations

from typing import Any

from controlplane.common import quantity


def core_fraction(value: Any) -> int | None:
    if value in (None, "", "Auto"):
        return None
    return int(str(value).rstrip("%"))


def violations(class_name: str, spec: dict[str, Any], policies: list[dict[str, Any]]) -> list[str]:
    """Messages naming each rule the VM breaks; empty when it fits (or the class has none)."""
    if not policies:
        return []
    cpu = spec.get("cpu") or {}
    cores = int(cpu.get("cores") or 1)
    policy = next((p for p in policies if p.get("cores") and
                   int(p["cores"]["min"]) <= cores <= int(p["cores"]["max"])), None)
    if policy is None:
        ranges = ", ".join(f"{p['cores']['min']}-{p['cores']['max']}" for p in policies if p.get("cores"))
        return [f"spec.cpu.cores {cores} is outside every sizing policy of class {class_name!r} (cores {ranges})"]
    out: list[str] = []
    step = policy["cores"].get("step")
    if step and (cores - int(policy["cores"]["min"])) % int(step):
        out.append(f"spec.cpu.cores {cores} is not a multiple of step {step} from {policy['cores']['min']} "
                   f"(class {class_name!r})")
    fraction = core_fraction(cpu.get("coreFraction"))
    allowed = policy.get("coreFractions") or []
    if fraction is not None and allowed and fraction not in [int(a) for a in allowed]:
        out.append(f"spec.cpu.coreFraction {fraction}% is not allowed for {cores} cores in class {class_name!r} "
                   f"(allowed: {', '.join(f'{a}%' for a in allowed)})")
    mem_policy = policy.get("memory") or {}
    size = (spec.get("memory") or {}).get("size")
    if size is not None and mem_policy:
        mem = quantity.to_bytes(size)
        lo, hi, mstep = mem_policy.get("min"), mem_policy.get("max"), mem_policy.get("step")
        if lo is not None and mem < quantity.to_bytes(lo):
            out.append(f"spec.memory.size {size} is below the minimum {lo} of class {class_name!r}")
        if hi is not None and mem > quantity.to_bytes(hi):
            out.append(f"spec.memory.size {size} is above the maximum {hi} of class {class_name!r}")
        if mstep and lo is not None and (mem - quantity.to_bytes(lo)) % quantity.to_bytes(mstep):
            out.append(f"spec.memory.size {size} is not a multiple of step {mstep} from {lo} (class {class_name!r})")
        per_core = mem_policy.get("perCore") or {}
        if per_core.get("min") is not None and mem < quantity.to_bytes(per_core["min"]) * cores:
            out.append(f"spec.memory.size {size} is below {per_core['min']} per core x {cores} cores "
                       f"(class {class_name!r})")
        if per_core.get("max") is not None and mem > quantity.to_bytes(per_core["max"]) * cores:
            out.append(f"spec.memory.size {size} is above {per_core['max']} per core x {cores} cores "
                       f"(class {class_name!r})")
    return out
