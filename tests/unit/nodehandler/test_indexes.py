"""The node handler finds the instances an event concerns through its cache's indexes: an
address clash names the other instance, a volume maps to the instances using it, a domain
event to its instance, and deleted or changed instances leave the indexes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from controlplane.api.instance import parse_instance
from controlplane.common.kube.informer import Informer
from controlplane.nodehandler import indexes
from controlplane.nodehandler.agent import Agent
from controlplane.nodehandler.context import INSTANCES, NodeContext
from controlplane.nodehandler.prepare import PrepareError, check_addresses


def inst(name: str, uid: str, ip: str, mac: str, volume: str = "root", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "1", **meta},
            "spec": {"nodeName": "n1", "cpu": {"cores": 1}, "memory": {"size": "64Mi"},
                     "disks": [{"name": "d", "volume": {"name": volume}}],
                     "nics": [{"name": "default", "mac": mac, "ip": ip}]}}


@pytest.fixture
def cache() -> Informer:
    informer = Informer(None, INSTANCES)  # type: ignore[arg-type]
    indexes.register(informer)
    for obj in (inst("a", "u-a", "10.66.0.5", "52:54:00:00:00:0A", volume="shared"),
                inst("b", "u-b", "10.66.0.6", "52:54:00:00:00:0b", volume="shared"),
                inst("gone", "u-g", "10.66.0.9", "52:54:00:00:00:09", deletionTimestamp="2026-01-01T00:00:00Z")):
        informer._apply({"type": "ADDED", "object": obj})
    return informer


def _ctx(cache: Informer) -> NodeContext:
    return SimpleNamespace(instances=cache, mine=lambda o: o["spec"]["nodeName"] == "n1")  # type: ignore[return-value]


@pytest.mark.parametrize("ip, mac, clash", [
    ("10.66.0.5", "52:54:00:00:00:99", r"spec\.nics\[0\]\.ip: 10\.66\.0\.5 is already used by instance ns/a"),
    ("10.66.0.7", "52:54:00:00:00:0a", r"spec\.nics\[0\]\.mac: 52:54:00:00:00:0a is already used by instance ns/a"),
    ("10.66.0.9", "52:54:00:00:00:09", None),  # held by an instance being deleted
    ("10.66.0.7", "52:54:00:00:00:77", None),
], ids=["ip", "mac-any-case", "deleting-instance", "free"])
def test_address_clash_names_the_other_instance(cache: Informer, ip: str, mac: str, clash: str | None) -> None:
    new = inst("new", "u-new", ip, mac)
    if clash is None:
        check_addresses(_ctx(cache), new, parse_instance(new))
    else:
        with pytest.raises(PrepareError, match=clash):
            check_addresses(_ctx(cache), new, parse_instance(new))


def test_the_instance_itself_is_no_clash(cache: Informer) -> None:
    a = inst("a", "u-a", "10.66.0.5", "52:54:00:00:00:0a")
    check_addresses(_ctx(cache), a, parse_instance(a))


def names(objs: list[dict[str, Any]]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objs)


def test_volume_and_uid_lookups_follow_changes(cache: Informer) -> None:
    assert names(cache.by_index(indexes.BY_VOLUME, "ns/shared")) == ["a", "b"]
    assert names(cache.by_index(indexes.BY_UID, "u-b")) == ["b"]
    cache._apply({"type": "MODIFIED", "object": inst("b", "u-b", "10.66.0.6", "52:54:00:00:00:0b", volume="own")})
    assert names(cache.by_index(indexes.BY_VOLUME, "ns/shared")) == ["a"]
    cache._apply({"type": "DELETED", "object": inst("a", "u-a", "10.66.0.5", "52:54:00:00:00:0a")})
    assert cache.by_index(indexes.BY_VOLUME, "ns/shared") == [] and cache.by_index(indexes.BY_UID, "u-a") == []


def vol(*, phase: str = "Ready", node: str = "n1", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "shared", "namespace": "ns", "uid": "v-1"}, "spec": {"nodeName": node},
            "status": {"phase": phase, "path": "/v/shared.v-1.qcow2", **status}}


@pytest.mark.parametrize("old, new, instances", [
    (vol(phase="Provisioning", progress="10%"), vol(phase="Provisioning", progress="40%"), []),
    (vol(), vol(reverted="op-1"), []),  # a revert done: the file's name and the phase stay
    (vol(), {**vol(), "spec": {"nodeName": "n1", "revert": {"volume": "snap", "id": "op-1"}}}, []),
    (vol(phase="Provisioning"), vol(), ["a", "b"]),
    (vol(), vol(node="n2"), ["a", "b"]),
    (vol(), {**vol(), "metadata": {**vol()["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}, ["a", "b"]),
], ids=["progress", "reverted", "revert-asked", "ready", "moved", "deleting"])
def test_a_volume_change_wakes_its_instances_only_when_they_read_it(
        cache: Informer, old: dict[str, Any], new: dict[str, Any], instances: list[str]) -> None:
    woken: dict[str, list[str]] = {"volumes": [], "instances": []}
    agent = Agent.__new__(Agent)
    agent.ctx = _ctx(cache)
    agent.volume_controller = SimpleNamespace(enqueue=lambda key: woken["volumes"].append(key[1]))  # type: ignore[assignment]
    agent.instance_controller = SimpleNamespace(enqueue=lambda key: woken["instances"].append(key[1]))  # type: ignore[assignment]
    agent._on_volume("MODIFIED", new, old)
    assert woken == {"volumes": ["shared"], "instances": instances}
    agent._on_volume("DELETED", new, None)
    assert woken["instances"] == [*instances, "a", "b"]
