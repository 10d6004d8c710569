"""The typed names in controlplane.api.v1alpha2 agree with the CRDs and with DVP.

Every enum that mirrors a schema enum (phases, spec choices) must list exactly the values
the CRD allows, so a controller cannot write a phase the API server would refuse; kinds and
plurals must match the CRD names; condition types and reasons keep DVP's published values.
"""

from __future__ import annotations

from enum import StrEnum

import pytest

from controlplane.api import v1alpha2 as api
from controlplane.api.crds import crds_by_kind, served_schema
from tests.unit.crd_support import schema_at

# (enum, kind, schema path of the enum in the CRD)
MIRRORS: list[tuple[type[StrEnum], str, str]] = [
    (api.MachinePhase, "VirtualMachine", "status.phase"),
    (api.MachinePhase, "VirtualMachine", "status.stats.phasesTransitions[].phase"),
    (api.DiskPhase, "VirtualDisk", "status.phase"),
    (api.ImagePhase, "VirtualImage", "status.phase"),
    (api.VirtualMachineClassPhase, "VirtualMachineClass", "status.phase"),
    (api.VirtualMachineIPAddressPhase, "VirtualMachineIPAddress", "status.phase"),
    (api.VirtualMachineIPAddressLeasePhase, "VirtualMachineIPAddressLease", "status.phase"),
    (api.BlockDeviceAttachmentPhase, "VirtualMachineBlockDeviceAttachment", "status.phase"),
    (api.VMOPPhase, "VirtualMachineOperation", "status.phase"),
    (api.RunPolicy, "VirtualMachine", "spec.runPolicy"),
    (api.OsType, "VirtualMachine", "spec.osType"),
    (api.Bootloader, "VirtualMachine", "spec.bootloader"),
    (api.LiveMigrationPolicy, "VirtualMachine", "spec.liveMigrationPolicy"),
    (api.RestartApprovalMode, "VirtualMachine", "spec.disruptions.restartApprovalMode"),
    (api.ProvisioningType, "VirtualMachine", "spec.provisioning.type"),
    (api.BlockDeviceKind, "VirtualMachine", "spec.blockDeviceRefs[].kind"),
    (api.BlockDeviceKind, "VirtualMachine", "status.blockDeviceRefs[].kind"),
    (api.BlockDeviceKind, "VirtualMachineBlockDeviceAttachment", "spec.blockDeviceRef.kind"),
    (api.NetworkType, "VirtualMachine", "spec.networks[].type"),
    (api.DataSourceType, "VirtualDisk", "spec.dataSource.type"),
    (api.DataSourceType, "VirtualImage", "spec.dataSource.type"),
    (api.DataSourceType, "ClusterVirtualImage", "spec.dataSource.type"),
    (api.StorageType, "VirtualImage", "spec.storage"),
    (api.CPUType, "VirtualMachineClass", "spec.cpu.type"),
    (api.VirtualMachineIPAddressType, "VirtualMachineIPAddress", "spec.type"),
    (api.VMOPType, "VirtualMachineOperation", "spec.type"),
    (api.SnapshotOperationMode, "VirtualMachineOperation", "spec.restore.mode"),
    (api.SnapshotOperationMode, "VirtualMachineOperation", "spec.clone.mode"),
    (api.ConditionStatus, "VirtualDisk", "status.conditions[].status"),
]


@pytest.mark.parametrize(("enum", "kind", "path"), MIRRORS, ids=[f"{e.__name__}@{k}:{p}" for e, k, p in MIRRORS])
def test_enum_lists_exactly_the_schema_values(enum: type[StrEnum], kind: str, path: str) -> None:
    node = schema_at(served_schema(crds_by_kind()[kind]), path)
    assert sorted(node["enum"]) == sorted(m.value for m in enum)


def test_cluster_virtual_image_phases_are_image_phases_without_pvc_lost() -> None:
    node = schema_at(served_schema(crds_by_kind()["ClusterVirtualImage"]), "status.phase")
    assert sorted(node["enum"]) == sorted(p.value for p in api.ImagePhase if p is not api.ImagePhase.PVC_LOST)


def test_kinds_plurals_and_scopes_match_the_crds() -> None:
    crds = crds_by_kind()
    assert sorted(crds) == sorted(k.value for k in api.Kind)
    for kind, plural in api.PLURAL.items():
        assert crds[kind]["spec"]["names"]["plural"] == plural
        assert (crds[kind]["spec"]["scope"] == "Cluster") == (kind in api.CLUSTER_SCOPED)
    assert (api.GROUP, api.VERSION, api.API_VERSION) == (
        "virtualization.deckhouse.io", "v1alpha2", "virtualization.deckhouse.io/v1alpha2")


CONDITION_GROUPS = [api.VMCondition, api.VDCondition, api.VICondition, api.CVICondition, api.VMClassCondition,
                    api.VMIPCondition, api.VMIPLCondition, api.VMMACCondition, api.VMMACLCondition,
                    api.VMBDACondition, api.VMOPCondition]
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


@pytest.mark.parametrize("group", CONDITION_GROUPS, ids=[g.__name__ for g in CONDITION_GROUPS])
def test_condition_values_fit_the_condition_schema(group: type) -> None:
    # status.conditions[].type and .reason have patterns; a value outside them would be refused.
    import re

    schema = schema_at(served_schema(crds_by_kind()["VirtualMachine"]), "status.conditions[]")
    enums = [v for v in vars(group).values() if isinstance(v, type) and issubclass(v, StrEnum)]
    assert enums and enums[0].__name__ == "Type"
    for member in enums[0]:
        assert re.search(schema["properties"]["type"]["pattern"], member.value), member
    for enum in enums[1:]:
        for member in enum:
            assert re.search(REASON_PATTERN, member.value), member
            assert re.search(schema["properties"]["reason"]["pattern"], member.value), member


@pytest.mark.parametrize(("member", "value"), [
    (api.VMCondition.Type.AGENT_READY, "AgentReady"),
    (api.VMCondition.Type.AWAITING_RESTART_TO_APPLY_CONFIGURATION, "AwaitingRestartToApplyConfiguration"),
    (api.VMCondition.Type.MIGRATABLE, "Migratable"),
    (api.VDCondition.Type.IN_USE, "InUse"),
    (api.VDCondition.Type.READY, "Ready"),
    (api.VDCondition.DatasourceReadyReason.VIRTUAL_DISK_SNAPSHOT_NOT_READY, "VirtualDiskSnapshot"),
    (api.VMBDACondition.Type.DISK_ATTACHMENT_CAPACITY_AVAILABLE, "DiskAttachmentCapacityAvailableType"),
    (api.VMOPCondition.CompletedReason.NOT_APPLICABLE_FOR_RUN_POLICY, "NotApplicableForVirtualMachineRunPolicy"),
    (api.VMIPCondition.BoundReason.OUT_OF_THE_VALID_RANGE, "VirtualMachineIPAddressIsOutOfTheValidRange"),
])
def test_condition_values_are_dvps(member: StrEnum, value: str) -> None:
    # The printer columns Agent, Need restart, Migratable and InUse read these condition types.
    assert member == value
