"""Typed names of DVP's snapshot kinds: VirtualDiskSnapshot, VirtualMachineSnapshot and
VirtualMachineSnapshotOperation (phases, condition types and reasons, with DVP's spelling from
its ``api/core/v1alpha2`` package: ``vdscondition``, ``vmscondition``, ``vmsopcondition``).

Kept apart from ``v1alpha2``/``conditions`` so those stay small; ``v1alpha2`` re-exports the
kinds. The snapshot controllers write these; the tests check the phase enums against the CRDs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

SNAPSHOT_VOLUME_PREFIX: Final = "vds-"
"""Name prefix of the InternalVirtualDiskVolume that holds a VirtualDiskSnapshot's copy (then
the snapshot's uid, so it never meets a disk's volume, which is named after the disk)."""


def snapshot_volume_name(uid: str) -> str:
    return f"{SNAPSHOT_VOLUME_PREFIX}{uid}"


class SnapshotPhase(StrEnum):
    """``status.phase`` of VirtualDiskSnapshot and VirtualMachineSnapshot (one enum in DVP's CRDs)."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    READY = "Ready"
    FAILED = "Failed"
    TERMINATING = "Terminating"


class SnapshotOperationPhase(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    TERMINATING = "Terminating"


class KeepIPAddress(StrEnum):
    ALWAYS = "Always"
    NEVER = "Never"


class VDSCondition:
    """vdscondition."""

    class Type(StrEnum):
        VIRTUAL_DISK_READY = "VirtualDiskReady"
        VIRTUAL_DISK_SNAPSHOT_READY = "VirtualDiskSnapshotReady"

    class VirtualDiskReadyReason(StrEnum):
        VIRTUAL_DISK_READY = "VirtualDiskReady"
        VIRTUAL_DISK_NOT_READY_FOR_SNAPSHOTTING = "VirtualDiskNotReadyForSnapshotting"

    class VirtualDiskSnapshotReadyReason(StrEnum):
        WAITING_FOR_THE_VIRTUAL_DISK = "WaitingForTheVirtualDisk"
        POTENTIALLY_INCONSISTENT = "PotentiallyInconsistent"
        LOST = "Lost"
        FILE_SYSTEM_FREEZING = "FileSystemFreezing"
        FILE_SYSTEM_UNFREEZING = "FileSystemUnfreezing"
        SNAPSHOTTING = "Snapshotting"
        VIRTUAL_DISK_SNAPSHOT_READY = "VirtualDiskSnapshotReady"
        VIRTUAL_DISK_SNAPSHOT_FAILED = "VirtualDiskSnapshotFailed"


class VMSCondition:
    """vmscondition."""

    class Type(StrEnum):
        VIRTUAL_MACHINE_READY = "VirtualMachineReady"
        VIRTUAL_MACHINE_SNAPSHOT_READY = "VirtualMachineSnapshotReady"

    class VirtualMachineReadyReason(StrEnum):
        VIRTUAL_MACHINE_READY = "VirtualMachineReady"
        VIRTUAL_MACHINE_NOT_READY_FOR_SNAPSHOTTING = "VirtualMachineNotReadyForSnapshotting"

    class VirtualMachineSnapshotReadyReason(StrEnum):
        WAITING_FOR_THE_VIRTUAL_MACHINE = "WaitingForTheVirtualMachine"
        BLOCK_DEVICES_NOT_READY = "BlockDevicesNotReady"
        POTENTIALLY_INCONSISTENT = "PotentiallyInconsistent"
        VIRTUAL_DISK_SNAPSHOT_LOST = "VirtualDiskSnapshotLost"
        FILE_SYSTEM_FREEZING = "FileSystemFreezing"
        FILE_SYSTEM_UNFREEZING = "FileSystemUnfreezing"
        SNAPSHOTTING = "Snapshotting"
        VIRTUAL_MACHINE_SNAPSHOT_READY = "VirtualMachineSnapshotReady"
        VIRTUAL_MACHINE_SNAPSHOT_FAILED = "VirtualMachineSnapshotFailed"


class VMSOPCondition:
    """vmsopcondition."""

    class Type(StrEnum):
        COMPLETED = "Completed"

    class CompletedReason(StrEnum):
        VIRTUAL_MACHINE_SNAPSHOT_NOT_FOUND = "VirtualMachineSnapshotNotFound"
        NOT_APPLICABLE_FOR_VMS_PHASE = "NotApplicableForVirtualMachinePhase"
        NOT_READY_TO_BE_EXECUTED = "NotReadyToBeExecuted"
        CREATE_VIRTUAL_MACHINE_IN_PROGRESS = "CreateVirtualMachineInProgress"
        OPERATION_FAILED = "OperationFailed"
        OPERATION_COMPLETED = "OperationCompleted"
