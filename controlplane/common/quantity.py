"""Kubernetes resource quantities ("1Gi", "512Mi", "2", "500m") to numbers and back."""

from __future__ import annotations

import re
from decimal import Decimal

_SUFFIX: dict[str, int | Decimal] = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}
_RE = re.compile(r"^([+-]?[0-9.]+)(e[+-]?[0-9]+|[KMGTPE]i|[numkKMGTPE])?$")


class QuantityError(ValueError):
    pass


def parse(value: str | int | float) -> Decimal:
    """A quantity as a number (bytes for memory, cores for CPU)."""
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    m = _RE.match(str(value).strip())
    if not m:
        raise QuantityError(f"{value!r} is not a quantity (e.g. 1Gi, 512Mi, 2, 500m)")
    number, suffix = Decimal(m.group(1)), m.group(2) or ""
    if suffix.startswith("e"):
        return number * (Decimal(10) ** int(suffix[1:]))
    return number * Decimal(_SUFFIX[suffix])


def to_bytes(value: str | int | float) -> int:
    return int(parse(value))


def format_bytes(n: int) -> str:
    """Bytes as the largest exact binary quantity ("10Gi", "1536Mi")."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = int(_SUFFIX[suffix])
        if n >= unit and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)
