"""Kubernetes REST paths to (group, version, namespace, resource, name, subresource).

    /api/v1/{resource}[/{name}[/{sub}]]
    /api/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]]
    /apis/{group}/{version}/...same...
"""

from __future__ import annotations

from dataclasses import dataclass

_NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass(frozen=True)
class Target:
    group: str
    version: str
    plural: str
    namespace: str = ""
    name: str = ""
    subresource: str = ""


def parse(path: str) -> Target | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (group == "" and len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES):
        ns, rest = rest[1], rest[2:]
        if len(rest) > 3:
            return None
        return Target(group, version, rest[0], ns, *(rest[1:] + ["", ""])[:2])
    if len(rest) > 3:
        return None
    return Target(group, version, rest[0], "", *(rest[1:] + ["", ""])[:2])
