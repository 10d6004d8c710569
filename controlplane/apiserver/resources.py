"""What the server serves: one `ResourceInfo` per (group, version, resource), in a `Registry`.

Built-in kinds are registered at start (`builtins.py`); each served version of each
CustomResourceDefinition is added when the CRD is stored and removed when it is deleted.
Discovery, OpenAPI, routing, validation and tables all read from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.apiserver.schema import StructuralSchema

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class Column:
    """One column of `kubectl get`: a JSONPath into the object, or a function of it."""

    name: str
    type: str = "string"
    json_path: str = ""
    format: str = ""
    description: str = ""
    priority: int = 0
    compute: Callable[[dict[str, Any]], Any] | None = None


@dataclass
class ResourceInfo:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    schema: StructuralSchema | None = None
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    has_status: bool = False
    builtin: bool = False
    tracks_generation: bool = False
    columns: list[Column] = field(default_factory=list)
    field_labels: frozenset[str] = frozenset()
    merge_keys: dict[str, str] = field(default_factory=dict)
    raw_schema: dict[str, Any] | None = None
    storage_version: str = ""
    verbs: list[str] = field(default_factory=lambda: list(ALL_VERBS))
    crd_name: str = ""
    subresources: dict[str, Any] = field(default_factory=dict)
    deprecation_warning: str = ""  # a deprecated version: the `Warning` every answer for it carries

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_resource(self) -> str:
        """The storage bucket (version-independent): `<group>/<plural>`."""
        return f"{self.group}/{self.plural}"

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def is_storage_version(self) -> bool:
        return not self.storage_version or self.storage_version == self.version


class Registry:
    """Every served resource, with lookups by URL parts and by kind."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceInfo] = {}
        self.group_order: list[str] = []
        self.on_change: list[Callable[[], None]] = []

    def add(self, info: ResourceInfo) -> None:
        self._by_gvr[(info.group, info.version, info.plural)] = info
        if info.group not in self.group_order:
            self.group_order.append(info.group)
        self._changed()

    def remove_crd(self, crd_name: str) -> None:
        for key in [k for k, v in self._by_gvr.items() if v.crd_name == crd_name]:
            del self._by_gvr[key]
        groups = {g for g, _, _ in self._by_gvr}
        self.group_order = [g for g in self.group_order if g in groups]
        self._changed()

    def replace_crd(self, crd_name: str, infos: list[ResourceInfo]) -> None:
        for key in [k for k, v in self._by_gvr.items() if v.crd_name == crd_name]:
            del self._by_gvr[key]
        for info in infos:
            self._by_gvr[(info.group, info.version, info.plural)] = info
            if info.group not in self.group_order:
                self.group_order.append(info.group)
        groups = {g for g, _, _ in self._by_gvr}
        self.group_order = [g for g in self.group_order if g in groups]
        self._changed()

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, group: str, kind: str) -> ResourceInfo | None:
        """The storage version's info for a kind (used by owner references and the GC)."""
        found = [i for (g, _, _), i in self._by_gvr.items() if g == group and i.kind == kind]
        found.sort(key=lambda i: not i.is_storage_version)
        return found[0] if found else None

    def by_storage_resource(self, storage_resource: str) -> ResourceInfo | None:
        found = [i for i in self._by_gvr.values() if i.storage_resource == storage_resource]
        found.sort(key=lambda i: not i.is_storage_version)
        return found[0] if found else None

    def versions(self, group: str) -> list[str]:
        seen: list[str] = []
        for (g, v, _), _info in self._by_gvr.items():
            if g == group and v not in seen:
                seen.append(v)
        return sorted(seen, key=_version_priority)

    def resources(self, group: str, version: str) -> list[ResourceInfo]:
        return [i for (g, v, _), i in self._by_gvr.items() if g == group and v == version]

    def all(self) -> list[ResourceInfo]:
        return list(self._by_gvr.values())


def _version_priority(v: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first."""
    import re

    m = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", v)
    if not m:
        return (3, 0, 0)
    major = int(m.group(1))
    stage = {"beta": 1, "alpha": 2}.get(m.group(2) or "", 0)
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor)
