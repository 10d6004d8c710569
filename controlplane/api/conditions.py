"""Condition types and reasons of every v1alpha2 kind, with the values DVP publishes.

One namespace class per kind, named after DVP's Go package (``vmcondition`` ->
``VMCondition``), holding a ``Type`` enum and one reason enum per condition type. Controllers
write ``status.conditions`` only with these values, so tools written against DVP (printer
columns such as ``Agent`` or ``InUse``, ``kubectl wait --for=condition=Ready``) read ours the
same way. Values that look odd (``VirtualDiskSnapshot`` as a reason, a type ending in
``Type``) are DVP's own and kept on purpose. Re-exported by :mod:`controlplane.api.v1alpha2`.
"""

from __future__ import annotations

from enum import StrEnum


class VMCondition:
    """VirtualMachine (vmcondition)."""

    class Type(StrEnum):
        IP_ADDRESS_READY = "VirtualMachineIPAddressReady"
        MAC_ADDRESS_READY = "VirtualMachineMACAddressReady"
        CLASS_READY = "VirtualMachineClassReady"
        BLOCK_DEVICES_READY = "BlockDevicesReady"
        RUNNING = "Running"
        MIGRATING = "Migrating"
        MIGRATABLE = "Migratable"
        PROVISIONING_READY = "ProvisioningReady"
        AGENT_READY = "AgentReady"
        AGENT_VERSION_NOT_SUPPORTED = "AgentVersionNotSupported"
        CONFIGURATION_APPLIED = "ConfigurationApplied"
        AWAITING_RESTART_TO_APPLY_CONFIGURATION = "AwaitingRestartToApplyConfiguration"
        FILESYSTEM_FROZEN = "FilesystemFrozen"
        SIZING_POLICY_MATCHED = "SizingPolicyMatched"
        SNAPSHOTTING = "Snapshotting"
        FIRMWARE_UP_TO_DATE = "FirmwareUpToDate"
        NEEDS_EVICT = "NeedsEvict"
        NETWORK_READY = "NetworkReady"
        MAINTENANCE = "Maintenance"
        USB_DEVICES_READY = "USBDevicesReady"
        """Ours: DVP shows USB devices only in status.usbDevices; this says why one is not attached."""

    class AgentReadyReason(StrEnum):
        AGENT_READY = "AgentReady"
        AGENT_NOT_READY = "AgentNotReady"

    class AgentVersionNotSupportedReason(StrEnum):
        AGENT_VERSION_SUPPORTED = "AgentVersionSupported"
        AGENT_VERSION_NOT_SUPPORTED = "AgentVersionNotSupported"

    class ClassReadyReason(StrEnum):
        CLASS_READY = "VirtualMachineClassReady"
        CLASS_NOT_READY = "VirtualMachineClassNotReady"

    class IPAddressReadyReason(StrEnum):
        IP_ADDRESS_READY = "VirtualMachineIPAddressReady"
        IP_ADDRESS_NOT_READY = "VirtualMachineIPAddressNotReady"
        IP_ADDRESS_NOT_ASSIGNED = "VirtualMachineIPAddressNotAssigned"
        IP_ADDRESS_NOT_AVAILABLE = "VirtualMachineIPAddressNotAvailable"

    class MACAddressReadyReason(StrEnum):
        MAC_ADDRESS_READY = "VirtualMachineMACAddressReady"
        MAC_ADDRESS_NOT_READY = "VirtualMachineMACAddressNotReady"
        MAC_ADDRESS_NOT_AVAILABLE = "VirtualMachineMACAddressNotAvailable"

    class BlockDevicesReadyReason(StrEnum):
        BLOCK_DEVICES_READY = "BlockDevicesReady"
        WAITING_FOR_PROVISIONING_TO_PVC = "WaitingForTheProvisioningToPersistentVolumeClaim"
        BLOCK_DEVICES_NOT_READY = "BlockDevicesNotReady"
        BLOCK_DEVICE_LIMIT_EXCEEDED = "BlockDeviceLimitExceeded"

    class USBDevicesReadyReason(StrEnum):
        USB_DEVICES_READY = "USBDevicesReady"
        USB_DEVICE_NOT_FOUND = "USBDeviceNotFound"
        USB_DEVICE_NOT_READY = "USBDeviceNotReady"
        USB_DEVICE_ON_OTHER_NODE = "USBDeviceOnOtherNode"

    class ProvisioningReadyReason(StrEnum):
        PROVISIONING_READY = "ProvisioningReady"
        PROVISIONING_NOT_READY = "ProvisioningNotReady"

    class ConfigurationAppliedReason(StrEnum):
        CONFIGURATION_APPLIED = "ConfigurationApplied"
        CONFIGURATION_NOT_APPLIED = "ConfigurationNotApplied"

    class AwaitingRestartToApplyConfigurationReason(StrEnum):
        RESTART_AWAITING_UNEXPECTED_STATE = "RestartAwaitingUnexpectedState"
        RESTART_AWAITING_CHANGES_EXIST = "RestartAwaitingChangesExist"
        RESTART_AWAITING_VM_CLASS_CHANGES_EXIST = "RestartAwaitingVMClassChangesExist"
        NO_NEED_RESTART = "NoNeedRestart"

    class RunningReason(StrEnum):
        VIRTUAL_MACHINE_NOT_RUNNING = "VirtualMachineNotRunning"
        VIRTUAL_MACHINE_RUNNING = "VirtualMachineRunning"
        INTERNAL_VIRTUAL_MACHINE_ERROR = "InternalVirtualMachineError"
        POD_NOT_STARTED = "PodNotStarted"
        POD_TERMINATING = "PodTerminating"
        POD_NOT_EXISTS = "PodNotExists"
        POD_CONDITION_MISSING = "PodConditionMissing"
        GUEST_NOT_RUNNING = "GuestNotRunning"
        NODE_UNRESPONSIVE = "NodeUnresponsive"
        """The VM's node is lost (its node handler stopped renewing its Lease): KubeVirt's reason."""

    class FilesystemFrozenReason(StrEnum):
        FROZEN = "Frozen"

    class SnapshottingReason(StrEnum):
        WAITING_FOR_THE_SNAPSHOT_TO_START = "WaitingForTheSnapshotToStart"
        SNAPSHOTTING_IN_PROGRESS = "SnapshottingInProgress"

    class SizingPolicyMatchedReason(StrEnum):
        SIZING_POLICY_NOT_MATCHED = "SizingPolicyNotMatched"
        VIRTUAL_MACHINE_CLASS_TERMINATING = "VirtualMachineClassTerminating"
        VIRTUAL_MACHINE_CLASS_NOT_EXISTS = "VirtualMachineClassNotExists"

    class FirmwareUpToDateReason(StrEnum):
        FIRMWARE_UP_TO_DATE = "FirmwareUpToDate"
        FIRMWARE_OUT_OF_DATE = "FirmwareOutOfDate"

    class NeedsEvictReason(StrEnum):
        NEEDS_EVICT = "NeedsEvict"

    class NetworkReadyReason(StrEnum):
        NETWORK_READY = "NetworkReady"
        NETWORK_NOT_READY = "NetworkNotReady"
        SDN_MODULE_DISABLE = "SDNModuleDisable"

    class MigratableReason(StrEnum):
        MIGRATABLE = "VirtualMachineMigratable"
        NON_MIGRATABLE = "VirtualMachineNonMigratable"
        DISKS_NOT_MIGRATABLE = "VirtualMachineDisksNotMigratable"
        DISKS_SHOULD_BE_MIGRATING = "VirtualMachineDisksShouldBeMigrating"

    class MigratingReason(StrEnum):
        PENDING = "Pending"
        READY_TO_MIGRATE = "ReadyToMigrate"
        IN_PROGRESS = "InProgress"

    class MaintenanceReason(StrEnum):
        RESTORE_IN_PROGRESS = "RestoreInProgress"


class VDCondition:
    """VirtualDisk (vdcondition)."""

    class Type(StrEnum):
        DATASOURCE_READY = "DatasourceReady"
        READY = "Ready"
        RESIZING = "Resizing"
        SNAPSHOTTING = "Snapshotting"
        STORAGE_CLASS_READY = "StorageClassReady"
        IN_USE = "InUse"
        MIGRATING = "Migrating"

    class DatasourceReadyReason(StrEnum):
        DATASOURCE_READY = "DatasourceReady"
        CONTAINER_REGISTRY_SECRET_NOT_FOUND = "ContainerRegistrySecretNotFound"
        IMAGE_NOT_READY = "ImageNotReady"
        CLUSTER_IMAGE_NOT_READY = "ClusterImageNotReady"
        VIRTUAL_DISK_SNAPSHOT_NOT_READY = "VirtualDiskSnapshot"  # sic: DVP's value
        IMAGE_NOT_FOUND = "ImageNotFound"
        CLUSTER_IMAGE_NOT_FOUND = "ClusterImageNotFound"

    class ReadyReason(StrEnum):
        ADDING_ORIGINAL_METADATA_NOT_STARTED = "AddingOriginalMetadataNotStarted"
        WAIT_FOR_USER_UPLOAD = "WaitForUserUpload"
        PROVISIONING = "Provisioning"
        PROVISIONING_NOT_STARTED = "ProvisioningNotStarted"
        WAITING_FOR_FIRST_CONSUMER = "WaitingForFirstConsumer"
        PROVISIONING_FAILED = "ProvisioningFailed"
        READY = "Ready"
        PVC_LOST = "PVCLost"
        EXPORTING = "Exporting"
        QUOTA_EXCEEDED = "QuotaExceeded"
        IMAGE_PULL_FAILED = "ImagePullFailed"
        DATASOURCE_IS_NOT_READY = "DatasourceIsNotReady"
        DATASOURCE_IS_NOT_FOUND = "DatasourceIsNotFound"
        STORAGE_CLASS_IS_NOT_READY = "StorageClassIsNotReady"

    class ResizingReason(StrEnum):
        IN_PROGRESS = "InProgress"
        NOT_AVAILABLE = "NotAvailable"

    class SnapshottingReason(StrEnum):
        SNAPSHOTTING = "Snapshotting"
        NOT_AVAILABLE = "NotAvailable"

    class StorageClassReadyReason(StrEnum):
        STORAGE_CLASS_READY = "StorageClassReady"
        STORAGE_CLASS_NOT_READY = "StorageClassNotReady"

    class InUseReason(StrEnum):
        USED_FOR_IMAGE_CREATION = "UsedForImageCreation"
        USED_FOR_DATA_EXPORT = "UsedForDataExport"
        ATTACHED_TO_VIRTUAL_MACHINE = "AttachedToVirtualMachine"
        NOT_IN_USE = "NotInUse"

    class MigratingReason(StrEnum):
        WAIT_FOR_TARGET_READY = "WaitForTargetReady"
        IN_PROGRESS = "InProgress"
        RESIZING_IN_PROGRESS = "ResizingInProgress"
        SNAPSHOTTING_IN_PROGRESS = "SnapshottingInProgress"
        STORAGE_CLASS_NOT_FOUND = "StorageClassNotFound"


class VICondition:
    """VirtualImage (vicondition)."""

    class Type(StrEnum):
        DATASOURCE_READY = "DatasourceReady"
        READY = "Ready"
        STORAGE_CLASS_READY = "StorageClassReady"

    class DatasourceReadyReason(StrEnum):
        DATASOURCE_READY = "DatasourceReady"
        CONTAINER_REGISTRY_SECRET_NOT_FOUND = "ContainerRegistrySecretNotFound"
        IMAGE_NOT_READY = "ImageNotReady"
        CLUSTER_IMAGE_NOT_READY = "ClusterImageNotReady"
        VIRTUAL_DISK_NOT_READY = "VirtualDiskNotReady"
        VIRTUAL_DISK_SNAPSHOT_NOT_READY = "VirtualDiskSnapshotNotReady"
        VIRTUAL_DISK_NOT_READY_FOR_USE = "VirtualDiskNotReadyForUse"
        VIRTUAL_DISK_ATTACHED_TO_VIRTUAL_MACHINE = "VirtualDiskAttachedToVirtualMachine"

    class ReadyReason(StrEnum):
        WAIT_FOR_USER_UPLOAD = "WaitForUserUpload"
        PROVISIONING = "Provisioning"
        PROVISIONING_NOT_STARTED = "ProvisioningNotStarted"
        PROVISIONING_FAILED = "ProvisioningFailed"
        STORAGE_CLASS_NOT_READY = "StorageClassNotReady"
        READY = "Ready"
        QUOTA_EXCEEDED = "QuotaExceeded"
        IMAGE_PULL_FAILED = "ImagePullFailed"
        DATASOURCE_NOT_READY = "DatasourceNotReady"
        IMAGE_LOST = "ImageLost"
        PVC_LOST = "PVCLost"

    class StorageClassReadyReason(StrEnum):
        STORAGE_CLASS_READY = "StorageClassReady"
        STORAGE_CLASS_NOT_FOUND = "StorageClassNotFound"
        DVCR_TYPE_USED = "DVCRTypeUsed"


class CVICondition:
    """ClusterVirtualImage (cvicondition)."""

    class Type(StrEnum):
        DATASOURCE_READY = "DatasourceReady"
        READY = "Ready"

    class DatasourceReadyReason(StrEnum):
        DATASOURCE_READY = "DatasourceReady"
        CONTAINER_REGISTRY_SECRET_NOT_FOUND = "ContainerRegistrySecretNotFound"
        IMAGE_NOT_READY = "ImageNotReady"
        CLUSTER_IMAGE_NOT_READY = "ClusterImageNotReady"
        VIRTUAL_DISK_NOT_READY = "VirtualDiskNotReady"
        VIRTUAL_DISK_NOT_READY_FOR_USE = "VirtualDiskNotReadyForUse"
        VIRTUAL_DISK_ATTACHED_TO_VIRTUAL_MACHINE = "VirtualDiskAttachedToVirtualMachine"
        VIRTUAL_DISK_SNAPSHOT_NOT_READY = "VirtualDiskSnapshotNotReady"

    class ReadyReason(StrEnum):
        WAIT_FOR_USER_UPLOAD = "WaitForUserUpload"
        PROVISIONING = "Provisioning"
        PROVISIONING_NOT_STARTED = "ProvisioningNotStarted"
        PROVISIONING_FAILED = "ProvisioningFailed"
        READY = "Ready"
        IMAGE_LOST = "ImageLost"


class VMClassCondition:
    """VirtualMachineClass (vmclasscondition); its reasons are shared by all types."""

    class Type(StrEnum):
        READY = "Ready"
        DISCOVERED = "Discovered"
        IN_USE = "InUse"

    class Reason(StrEnum):
        NO_CPU_FEATURES_ENABLED = "NoCpuFeaturesEnabled"
        NO_SUITABLE_NODES_FOUND = "NoSuitableNodesFound"
        SUITABLE_NODES_FOUND = "SuitableNodesFound"
        DISCOVERY_SUCCEEDED = "DiscoverySucceeded"
        DISCOVERY_SKIP = "DiscoverySkip"
        DISCOVERY_FAILED = "DiscoveryFailed"
        VM_CLASS_IN_USE = "VirtualMachineClassInUse"


class VMIPCondition:
    """VirtualMachineIPAddress (vmipcondition)."""

    class Type(StrEnum):
        BOUND = "Bound"
        ATTACHED = "Attached"

    class BoundReason(StrEnum):
        OUT_OF_THE_VALID_RANGE = "VirtualMachineIPAddressIsOutOfTheValidRange"
        LEASE_ALREADY_EXISTS = "VirtualMachineIPAddressLeaseAlreadyExists"
        LEASE_LOST = "VirtualMachineIPAddressLeaseLost"
        LEASE_NOT_FOUND = "VirtualMachineIPAddressLeaseNotFound"
        LEASE_NOT_READY = "VirtualMachineIPAddressLeaseNotReady"
        BOUND = "Bound"

    class AttachedReason(StrEnum):
        VIRTUAL_MACHINE_NOT_FOUND = "VirtualMachineNotFound"
        ATTACHED = "Attached"


class VMIPLCondition:
    """VirtualMachineIPAddressLease (vmiplcondition)."""

    class Type(StrEnum):
        BOUND = "Bound"

    class BoundReason(StrEnum):
        UNKNOWN = "Unknown"
        RELEASED = "Released"
        BOUND = "Bound"


class VMMACCondition:
    """VirtualMachineMACAddress (vmmaccondition)."""

    class Type(StrEnum):
        BOUND = "Bound"
        ATTACHED = "Attached"

    class BoundReason(StrEnum):
        LEASE_ALREADY_EXISTS = "VirtualMachineMACAddressLeaseAlreadyExists"
        LEASE_LOST = "VirtualMachineMACAddressLeaseLost"
        LEASE_NOT_FOUND = "VirtualMachineMACAddressLeaseNotFound"
        LEASE_NOT_READY = "VirtualMachineMACAddressLeaseNotReady"
        BOUND = "Bound"

    class AttachedReason(StrEnum):
        VIRTUAL_MACHINE_NOT_FOUND = "VirtualMachineNotFound"
        ATTACHED = "Attached"


class VMMACLCondition:
    """VirtualMachineMACAddressLease (vmmaclcondition)."""

    class Type(StrEnum):
        BOUND = "Bound"

    class BoundReason(StrEnum):
        BOUND = "Bound"


class VMBDACondition:
    """VirtualMachineBlockDeviceAttachment (vmbdacondition)."""

    class Type(StrEnum):
        BLOCK_DEVICE_READY = "BlockDeviceReady"
        VIRTUAL_MACHINE_READY = "VirtualMachineReady"
        ATTACHED = "Attached"
        DISK_ATTACHMENT_CAPACITY_AVAILABLE = "DiskAttachmentCapacityAvailableType"  # sic: DVP's value

    class BlockDeviceReadyReason(StrEnum):
        BLOCK_DEVICE_READY = "BlockDeviceReady"
        BLOCK_DEVICE_NOT_READY = "BlockDeviceNotReady"

    class VirtualMachineReadyReason(StrEnum):
        VIRTUAL_MACHINE_READY = "VirtualMachineReady"
        VIRTUAL_MACHINE_NOT_READY = "VirtualMachineNotReady"

    class AttachedReason(StrEnum):
        ATTACHED = "Attached"
        NOT_ATTACHED = "NotAttached"
        ATTACHMENT_REQUEST_SENT = "AttachmentRequestSent"
        CONFLICT = "Conflict"
        DEVICE_NOT_AVAILABLE_ON_NODE = "DeviceNotAvailableOnNode"

    class DiskAttachmentCapacityAvailableReason(StrEnum):
        CAPACITY_AVAILABLE = "CapacityAvailable"
        CAPACITY_REACHED = "CapacityReached"
        CAPACITY_UNKNOWN = "CapacityUnknown"


class VMOPCondition:
    """VirtualMachineOperation (vmopcondition)."""

    class Type(StrEnum):
        COMPLETED = "Completed"
        SIGNAL_SENT = "SignalSent"
        MAINTENANCE_MODE = "MaintenanceMode"
        SNAPSHOT_READY = "SnapshotReady"

    class CompletedReason(StrEnum):
        VIRTUAL_MACHINE_NOT_FOUND = "VirtualMachineNotFound"
        NOT_APPLICABLE_FOR_RUN_POLICY = "NotApplicableForVirtualMachineRunPolicy"
        NOT_APPLICABLE_FOR_VM_PHASE = "NotApplicableForVirtualMachinePhase"
        NOT_APPLICABLE_FOR_LIVE_MIGRATION_POLICY = "NotApplicableForLiveMigrationPolicy"
        NOT_READY_TO_BE_EXECUTED = "NotReadyToBeExecuted"
        RESTART_IN_PROGRESS = "RestartInProgress"
        START_IN_PROGRESS = "StartInProgress"
        STOP_IN_PROGRESS = "StopInProgress"
        RESTORE_IN_PROGRESS = "RestoreInProgress"
        CLONE_IN_PROGRESS = "CloneInProgress"
        MIGRATION_PENDING = "MigrationPending"
        MIGRATION_PREPARE_TARGET = "MigrationPrepareTarget"
        MIGRATION_TARGET_READY = "MigrationTargetReady"
        MIGRATION_RUNNING = "MigrationRunning"
        OTHER_MIGRATION_IN_PROGRESS = "OtherMigrationInProgress"
        HOTPLUG_DISKS_NOT_SHARED = "HotplugDisksNotShared"
        QUOTA_EXCEEDED = "QuotaExceeded"
        WAITING_FOR_VM_TO_BE_READY_TO_MIGRATE = "WaitingForVirtualMachineToBeReadyToMigrate"
        OPERATION_FAILED = "OperationFailed"
        OPERATION_COMPLETED = "OperationCompleted"
        SUPERSEDED = "Superseded"

    class SignalSentReason(StrEnum):
        SIGNAL_SENT_ERROR = "SignalSentError"
        SIGNAL_SENT_SUCCESS = "SignalSentSuccess"

    class MaintenanceModeReason(StrEnum):
        MAINTENANCE_MODE_ENABLED = "MaintenanceModeEnabled"
        MAINTENANCE_MODE_DISABLED = "MaintenanceModeDisabled"
        MAINTENANCE_MODE_FAILURE = "MaintenanceModeFailure"

    class SnapshotReadyReason(StrEnum):
        SNAPSHOT_IN_PROGRESS = "SnapshotInProgress"
        SNAPSHOT_READY = "SnapshotReady"
        SNAPSHOT_CLEANED_UP = "SnapshotCleanedUp"
        SNAPSHOT_FAILED = "SnapshotFailed"


class VMPoolCondition:
    """VirtualMachinePool (vmpoolcondition)."""

    class Type(StrEnum):
        AVAILABLE = "Available"
        PROGRESSING = "Progressing"
        SYNCED = "Synced"

    class AvailableReason(StrEnum):
        ALL_REPLICAS_READY = "AllReplicasReady"
        INSUFFICIENT_READY_REPLICAS = "InsufficientReadyReplicas"

    class ProgressingReason(StrEnum):
        POOL_STABLE = "PoolStable"
        REPLICAS_PROGRESSING = "ReplicasProgressing"

    class SyncedReason(StrEnum):
        POOL_SYNCED = "PoolSynced"
        ROLLOUT_IN_PROGRESS = "RolloutInProgress"
        RESTART_PENDING_APPROVAL = "RestartPendingApproval"
