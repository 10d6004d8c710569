"""Conversion between the served versions of one kind, as DVP's conversion webhook does it.

kube-apiserver keeps one storage version per CRD and asks the CRD's conversion webhook for
every other served version; DVP registers one for VirtualMachineClass (v1alpha3 served, v1alpha2
stored). The embedded API server calls :func:`convert` instead: the same field mapping, in
process. Kinds without a converter differ between versions only by ``apiVersion`` (the
``None`` strategy of apiextensions).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from controlplane.api.crds import GROUP


class ConversionError(ValueError):
    """An object cannot be represented in the wanted version; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


Converter = Callable[[dict[str, Any], str, str], None]

_PERCENT = re.compile(r"^([1-9]|[1-9][0-9]|100)%$")
AUTO = "Auto"


def _percent_to_int(value: Any, field: str, *, auto: bool) -> int | str:
    if auto and value == AUTO:
        return AUTO
    if isinstance(value, str) and _PERCENT.match(value):
        return int(value[:-1])
    wanted = "a percentage between 1% and 100% (e.g. 5%, 10%, 50%)" + (f" or {AUTO!r}" if auto else "")
    raise ConversionError(field, f"value must be {wanted}, got {value!r}")


def _int_to_percent(value: Any, field: str, *, auto: bool) -> str:
    if auto and value == AUTO:
        return AUTO
    if isinstance(value, str) and value.isdigit():  # int-or-string: "50" is the number 50
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 100:
        return f"{value}%"
    raise ConversionError(field, f"value must be a number from 1 to 100{' or Auto' if auto else ''}, got {value!r}")


def _vmclass(obj: dict[str, Any], src: str, dst: str) -> None:
    """v1alpha2 ↔ v1alpha3: core fractions are integers in v1alpha2 and "N%" strings in v1alpha3."""
    if {src, dst} != {"v1alpha2", "v1alpha3"}:
        return
    fraction = _int_to_percent if dst == "v1alpha3" else _percent_to_int
    policies = (obj.get("spec") or {}).get("sizingPolicies")
    if not isinstance(policies, list):
        return
    for i, policy in enumerate(policies):
        if not isinstance(policy, dict):
            continue
        path = f"spec.sizingPolicies[{i}]"
        if isinstance(policy.get("coreFractions"), list):
            policy["coreFractions"] = [fraction(v, f"{path}.coreFractions[{j}]", auto=False)
                                       for j, v in enumerate(policy["coreFractions"])]
        if policy.get("defaultCoreFraction") is not None:
            policy["defaultCoreFraction"] = fraction(policy["defaultCoreFraction"],
                                                     f"{path}.defaultCoreFraction", auto=True)


CONVERTERS: dict[tuple[str, str], Converter] = {
    (GROUP, "VirtualMachineClass"): _vmclass,
}


def convert(obj: dict[str, Any], group: str, kind: str, version: str) -> dict[str, Any]:
    """Turn ``obj`` (changed in place and returned) into ``group/version``.

    Raises :class:`ConversionError` when a value has no representation in that version.
    """
    wanted = f"{group}/{version}" if group else version
    current = obj.get("apiVersion")
    if isinstance(current, str) and current != wanted:
        src = current.rsplit("/", 1)[-1]
        converter = CONVERTERS.get((group, kind))
        if converter is not None:
            converter(obj, src, version)
    obj["apiVersion"] = wanted
    return obj
