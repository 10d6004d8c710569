"""Reusable pool disks (reclaim Retain): which are free, which a new member gets, which are
collected past their ttl beyond the warm ones, and Go-style durations."""

from __future__ import annotations

import datetime as dt

import pytest

from controlplane.controllers.vmpool import plan as P
from controlplane.controllers.vmpool import retain as R

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
CACHE = {"name": "cache", "reclaim": {"onScaleDown": "Retain", "keep": 1, "ttl": "30m"},
         "spec": {"persistentVolumeClaim": {"size": "1Gi"}}}
POOL = {"metadata": {"name": "runners", "namespace": "ci", "uid": "u-1"}, "spec": {
    "virtualDiskTemplates": [{"name": "root", "spec": {}}, CACHE],
    "virtualMachineTemplate": {"spec": {"blockDeviceRefs": [{"kind": "VirtualDisk", "name": "root"},
                                                            {"kind": "VirtualDisk", "name": "cache"}]}}}}


def at(minutes_ago: int) -> str:
    return (NOW - dt.timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800.0), ("1h30m", 5400.0), ("90s", 90.0), ("", None),
                                               ("soon", None), ("5", None)])
def test_durations(text: str, seconds: float | None) -> None:
    assert R.parse_duration(text) == seconds


def test_free_disks_newest_first_and_the_expired_beyond_keep() -> None:
    disks = [R.Disk("c-old", "cache", at(90)), R.Disk("c-mid", "cache", at(40)), R.Disk("c-new", "cache", at(5)),
             R.Disk("c-used", "cache", at(100)), R.Disk("c-going", "cache", at(100), terminating=True)]
    used = R.in_use([{"spec": {"blockDeviceRefs": [{"kind": "VirtualDisk", "name": "c-used"}]}}])
    assert [d.name for d in R.free(disks, used, "cache")] == ["c-new", "c-mid", "c-old"]
    assert R.expired(disks, used, CACHE, NOW) == ["c-mid", "c-old"]  # c-new is the one kept warm
    assert R.expired(disks, used, {**CACHE, "reclaim": {"onScaleDown": "Retain"}}, NOW) == []  # no ttl: kept


def test_a_member_gets_the_retained_disk_and_only_its_own_delete_disks() -> None:
    assert list(R.retain_templates(POOL)) == ["cache"]
    vm = P.member(POOL, "runners-abcde", {"cache": "runners-cache-x1y2z"})
    assert vm["spec"]["blockDeviceRefs"] == [{"kind": "VirtualDisk", "name": "runners-abcde-root"},
                                             {"kind": "VirtualDisk", "name": "runners-cache-x1y2z"}]
    vm["metadata"]["uid"] = "vm-1"
    assert [d["metadata"]["name"] for d in P.member_disks(POOL, vm)] == ["runners-abcde-root"]
    disk = P.pool_disk(POOL, CACHE, "runners-cache-x1y2z")
    assert [(r["kind"], r["uid"]) for r in disk["metadata"]["ownerReferences"]] == [("VirtualMachinePool", "u-1")]
    assert R.new_disk_name("runners", "cache").startswith("runners-cache-")
