"""Informer indexes: an event maps to the keys it affects by lookup, not by scanning the cache,
and the index follows adds, changes, deletes and relists."""

from __future__ import annotations

from typing import Any

from controlplane.api.resources import VIRTUAL_MACHINES
from controlplane.common.kube.informer import Informer


class ListingKube:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.lists = 0

    def list(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.lists += 1
        return {"items": self.items, "metadata": {"resourceVersion": "5"}}


def vm(name: str, cls: str, ns: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": "1"},
            "spec": {"virtualMachineClassName": cls}}


def by_class(o: dict[str, Any]) -> list[str]:
    return [o["spec"]["virtualMachineClassName"]]


def names(objs: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def test_index_follows_the_cache() -> None:
    kube = ListingKube([vm("a", "small"), vm("b", "large")])
    inf = Informer(kube, VIRTUAL_MACHINES)  # type: ignore[arg-type]
    inf._relist()
    inf.add_index("class", by_class)
    inf.add_index("class", lambda o: ["ignored"])  # idempotent by name
    assert names(inf.by_index("class", "small")) == ["a"]
    inf._apply({"type": "ADDED", "object": vm("c", "small")})
    inf._apply({"type": "MODIFIED", "object": vm("a", "large")})
    assert names(inf.by_index("class", "small")) == ["c"]
    assert names(inf.by_index("class", "large")) == ["a", "b"]
    inf._apply({"type": "DELETED", "object": vm("b", "large")})
    assert names(inf.by_index("class", "large")) == ["a"]
    assert inf.by_index("class", "nothing") == []
    assert "ignored" not in inf._indices["class"]


def test_relist_rebuilds_the_index() -> None:
    kube = ListingKube([vm("a", "small")])
    inf = Informer(kube, VIRTUAL_MACHINES)  # type: ignore[arg-type]
    inf.add_index("class", by_class)
    inf._relist()
    assert names(inf.by_index("class", "small")) == ["a"]
    kube.items = [vm("a", "large"), vm("z", "small", ns="other")]
    inf._relist()
    assert names(inf.by_index("class", "small")) == ["z"]
    assert names(inf.by_index("class", "large")) == ["a"]


def test_one_event_costs_no_scan_of_the_other_objects() -> None:
    """With 20,000 VMs cached, a lookup touches only the matching ones (index sizes show it)."""
    kube = ListingKube([vm(f"vm{i}", f"class{i % 1000}") for i in range(20_000)])
    inf = Informer(kube, VIRTUAL_MACHINES)  # type: ignore[arg-type]
    inf.add_index("class", by_class)
    inf._relist()
    assert len(inf._indices["class"]["class7"]) == 20
    assert len(inf.by_index("class", "class7")) == 20
    assert kube.lists == 1, "lookups never call the API"
