"""How the migration's watch reads the job's statistics: at its own pace, and not while QEMU is
about to switch over (a read then is a libvirt query job and a monitor command that libvirt's own
switch-over steps queue behind, lengthening the guest's downtime)."""

from __future__ import annotations

import time
from typing import Any

import libvirt
import pytest

from controlplane.nodehandler.migration import (
    LiveMigration,
    MigrationOptions,
    MigrationProgress,
    MigrationTarget,
    _completed_stats,
)

MIB = 1 << 20


class StatsDom:
    def __init__(self, remaining: int, bps: int) -> None:
        self.stats = {"data_total": 100 * MIB, "data_remaining": remaining, "memory_remaining": remaining,
                      "memory_bps": bps}
        self.reads = 0
        self.flags: list[int] = []

    def jobStats(self, flags: int) -> dict[str, Any]:
        self.reads += 1
        self.flags.append(flags)
        return self.stats


@pytest.mark.parametrize(("remaining", "bps", "expected"), [
    (0, 0, None),
    (50 * MIB, 0, None),  # nothing sent yet
    (0, 10 * MIB, None),  # nothing left
    (50 * MIB, 10 * MIB, 5.0),
], ids=["idle", "not-sending-yet", "nothing-left", "five-seconds"])
def test_seconds_to_send(remaining: int, bps: int, expected: float | None) -> None:
    assert MigrationProgress(memory_remaining=remaining, memory_bps=bps).seconds_to_send() == expected


@pytest.mark.parametrize(("remaining", "reads"), [
    (500 * MIB, range(2, 4)),  # 50 s left at 10 MiB/s: a read every 0.1 s over 0.25 s
    (5 * MIB, range(1, 2)),  # 0.5 s left: one read, then quiet until the switch-over is over
], ids=["far-from-switch-over", "switch-over-near"])
def test_statistics_are_read_at_their_pace_and_not_before_the_switch_over(remaining: int, reads: range) -> None:
    dom = StatsDom(remaining, 10 * MIB)
    migration = LiveMigration(None, "uid", MigrationTarget(node="n2", address="10.0.0.2"),  # type: ignore[arg-type]
                              MigrationOptions(stats_every=0.1, quiet_before_switch_over=2.0))
    until = time.monotonic() + 0.25

    def running() -> bool:
        time.sleep(0.01)
        return time.monotonic() < until

    migration._watch(dom, running, deadline=time.time() + 60)
    assert dom.reads in reads
    assert migration.progress.memory_remaining == remaining


class GoneDom:
    """The source's domain after the migration undefined it."""

    def jobStats(self, flags: int) -> dict[str, Any]:
        raise libvirt.libvirtError("Domain not found: no domain with matching uuid")


def test_completed_statistics_come_from_the_target_once_the_source_domain_is_gone() -> None:
    target = StatsDom(0, 30 * MIB)
    completed: dict[str, Any] = {**target.stats, "downtime": 41, "type": "completed-but-not-a-number"}
    target.stats = completed
    stats = _completed_stats(GoneDom()) or _completed_stats(target)
    assert stats["data_total"] == 100 * MIB and stats["downtime"] == 41.0
    assert "type" not in stats
    assert _completed_stats(None) == {}
    assert target.flags == [libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED | libvirt.VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED], \
        "read without consuming them: virsh domjobinfo --completed still shows them"
