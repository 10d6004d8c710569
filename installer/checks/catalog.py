"""The ordered list of every preflight check. Order matters twice: dependencies must come
before their dependents (checked by `validate_catalog`), and reports list checks in this order.

connection first (everything else needs the facts it gathers), then system (kernel modules,
which the virtualization device checks depend on), virtualization, resources, network and
leftovers.
"""

from __future__ import annotations

from installer.checks.groups import connection, leftovers, network, resources, system, virtualization
from installer.checks.registry import CheckSpec, validate_catalog

CATALOG: list[CheckSpec] = [
    *connection.CHECKS,
    *system.CHECKS,
    *virtualization.CHECKS,
    *resources.CHECKS,
    *network.CHECKS,
    *leftovers.CHECKS,
]
validate_catalog(CATALOG)


def check_names() -> list[str]:
    return [spec.name for spec in CATALOG]


def by_name(name: str) -> CheckSpec:
    for spec in CATALOG:
        if spec.name == name:
            return spec
    raise KeyError(name)
