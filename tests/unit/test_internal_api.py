"""The typed names of the internal contract (controlplane.api.internal) agree with its CRDs."""

from __future__ import annotations

from enum import StrEnum

import pytest

from controlplane.api import instance, internal
from controlplane.api.crds import INTERNAL_GROUP, crds_by_kind, served_schema
from tests.unit.crd_support import schema_at

MIRRORS: list[tuple[type[StrEnum], str, str]] = [
    (internal.InstancePhase, internal.INSTANCE_KIND, "status.phase"),
    (internal.RunState, internal.INSTANCE_KIND, "spec.runState"),
    (internal.PowerAction, internal.INSTANCE_KIND, "spec.powerRequest.action"),
    (internal.StopReason, internal.INSTANCE_KIND, "status.stopReason"),
    (internal.DomainType, internal.INSTANCE_KIND, "status.emulation.domainType"),
    (internal.VolumePhase, internal.VOLUME_KIND, "status.phase"),
    (instance.Firmware, internal.INSTANCE_KIND, "spec.firmware"),
    (instance.DiskBus, internal.INSTANCE_KIND, "spec.disks[].bus"),
    (instance.NicModel, internal.INSTANCE_KIND, "spec.nics[].model"),
]


@pytest.mark.parametrize(("enum", "kind", "path"), MIRRORS, ids=[f"{e.__name__}:{p}" for e, _, p in MIRRORS])
def test_enum_lists_exactly_the_schema_values(enum: type[StrEnum], kind: str, path: str) -> None:
    node = schema_at(served_schema(crds_by_kind(INTERNAL_GROUP)[kind], internal.VERSION), path)
    assert sorted(node["enum"]) == sorted(m.value for m in enum)


def test_kinds_and_plurals_match_the_crds() -> None:
    crds = crds_by_kind(INTERNAL_GROUP)
    assert crds[internal.INSTANCE_KIND]["spec"]["names"]["plural"] == internal.INSTANCE_PLURAL
    assert crds[internal.VOLUME_KIND]["spec"]["names"]["plural"] == internal.VOLUME_PLURAL
    assert internal.GROUP == INTERNAL_GROUP
