"""Class sizing policies, node matching and IPAM address arithmetic."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from controlplane.controllers import scheduling
from controlplane.controllers.ipam import allocator
from controlplane.controllers.vmclass.sizing import violations

POLICIES = [
    {"cores": {"min": 1, "max": 4}, "coreFractions": [5, 10, 20, 50, 100],
     "memory": {"min": "256Mi", "max": "8Gi", "perCore": {"min": "128Mi", "max": "2Gi"}}},
    {"cores": {"min": 6, "max": 16, "step": 2}, "coreFractions": [50, 100]},
]


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        ({"cores": 2, "coreFraction": "10%"}, "1Gi", []),
        ({"cores": 5}, "1Gi", ["outside every sizing policy"]),
        ({"cores": 7, "coreFraction": "50%"}, "1Gi", ["not a multiple of step 2"]),
        ({"cores": 2, "coreFraction": "30%"}, "1Gi", ["coreFraction 30% is not allowed"]),
        ({"cores": 1}, "128Mi", ["below the minimum 256Mi"]),
        ({"cores": 1}, "3Gi", ["above 2Gi per core"]),
        ({"cores": 4, "coreFraction": "5%"}, "8Gi", []),
    ],
    ids=["fits", "no-policy", "step", "fraction", "mem-min", "per-core-max", "edges"],
)
def test_sizing_policy_verdicts(cpu: dict[str, Any], memory: str, expected: list[str]) -> None:
    got = violations("generic", {"cpu": cpu, "memory": {"size": memory}}, POLICIES)
    assert len(got) == len(expected)
    for want, msg in zip(expected, got, strict=True):
        assert want in msg and "generic" in msg


def test_class_without_policies_accepts_anything() -> None:
    assert violations("free", {"cpu": {"cores": 999}}, []) == []


NET = [ipaddress.ip_network("10.66.0.0/29")]


def test_network_broadcast_and_gateway_are_never_handed_out() -> None:
    assert allocator.usable("10.66.0.0", NET) is None
    assert allocator.usable("10.66.0.7", NET) is None
    assert allocator.usable("10.66.0.1", NET) is None, "the VM bridge's gateway address"
    assert allocator.usable("10.66.0.2", NET) is not None
    assert allocator.usable("10.67.0.2", NET) is None
    assert allocator.usable("not-an-ip", NET) is None
    assert list(allocator.candidates(NET)) == [f"10.66.0.{i}" for i in range(2, 7)]
    assert allocator.pick(NET, lambda a: a == "10.66.0.2") == "10.66.0.3"
    assert allocator.pick(NET, lambda a: True) is None


def test_lease_names_round_trip() -> None:
    assert allocator.lease_name("10.66.0.5") == "ip-10-66-0-5"
    assert allocator.address_of_lease("ip-10-66-0-5") == "10.66.0.5"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, True),
        ({"zone": "a"}, True),
        ({"matchLabels": {"zone": "b"}}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "c"]}]}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, False),
        ({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, False),
    ],
    ids=str,
)
def test_node_selectors(selector: dict[str, Any] | None, expected: bool) -> None:
    assert scheduling.matches_selector({"zone": "a"}, selector) is expected


def test_taints_need_tolerations() -> None:
    taints = [{"key": "dedicated", "value": "vm", "effect": "NoSchedule"}]
    assert not scheduling.tolerates(taints, [])
    assert scheduling.tolerates(taints, [{"key": "dedicated", "operator": "Equal", "value": "vm"}])
    assert scheduling.tolerates(taints, [{"operator": "Exists"}])
    assert scheduling.tolerates([{"key": "x", "effect": "PreferNoSchedule"}], [])


def test_the_lowest_free_search_starts_where_the_last_one_ended_until_a_lease_goes() -> None:
    nets = [ipaddress.ip_network("10.66.0.0/29"), ipaddress.ip_network("10.67.0.0/29")]
    assert list(allocator.candidates(nets, 6)) == [f"10.67.0.{i}" for i in range(3, 7)]
    assert list(allocator.candidates(nets, 10)) == []
    leased: set[str] = set()
    looked: list[str] = []

    def taken(a: str) -> bool:
        looked.append(a)
        return a in leased

    free = allocator.LowestFree()
    for want in ("10.66.0.2", "10.66.0.3", "10.66.0.4", "10.66.0.5", "10.66.0.6", "10.67.0.2"):
        looked.clear()
        got = free.pick(nets, taken)
        assert got == want
        leased.add(got)
        assert len(looked) == 1, "no scan of the addresses already handed out"
    leased.discard("10.66.0.3")
    free.forget()  # a lease was deleted: the lowest free address is found again
    assert free.pick(nets, taken) == "10.66.0.3"
    leased.add("10.66.0.3")
    leased.discard("10.66.0.2")  # deleted while nothing told the search: found once the end is reached
    assert free.pick(nets, taken) == "10.67.0.3"
    leased.update(f"10.67.0.{i}" for i in range(3, 7))
    assert free.pick(nets, taken) == "10.66.0.2"
    leased.add("10.66.0.2")
    assert free.pick(nets, taken) is None
