"""Typed names of the virtualization.deckhouse.io/v1alpha2 API for controllers and handlers.

Group, version, kinds and plurals, the phases each kind reports, the spec enums the
controllers branch on, and the condition types and reasons per kind, with the string values
DVP publishes (its ``api/core/v1alpha2`` package and ``*condition`` sub-packages), so that
status written here reads the same as DVP's. Condition types and reasons are grouped per
kind in a namespace class named after DVP's package (``VMCondition`` for ``vmcondition``).
Tests check every enum that mirrors a schema enum against the CRDs in ``crds/``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# Condition types and reasons live in their own module to keep files small; they are part of
# this API and re-exported here.
from controlplane.api.conditions import (
    CVICondition as CVICondition,
)
from controlplane.api.conditions import (
    VDCondition as VDCondition,
)
from controlplane.api.conditions import (
    VICondition as VICondition,
)
from controlplane.api.conditions import (
    VMBDACondition as VMBDACondition,
)
from controlplane.api.conditions import (
    VMClassCondition as VMClassCondition,
)
from controlplane.api.conditions import (
    VMCondition as VMCondition,
)
from controlplane.api.conditions import (
    VMIPCondition as VMIPCondition,
)
from controlplane.api.conditions import (
    VMIPLCondition as VMIPLCondition,
)
from controlplane.api.conditions import (
    VMMACCondition as VMMACCondition,
)
from controlplane.api.conditions import (
    VMMACLCondition as VMMACLCondition,
)
from controlplane.api.conditions import (
    VMOPCondition as VMOPCondition,
)
from controlplane.api.conditions import (
    VMPoolCondition as VMPoolCondition,
)
from controlplane.api.usb import (
    NodeUSBDeviceCondition as NodeUSBDeviceCondition,
)
from controlplane.api.usb import (
    USBDeviceCondition as USBDeviceCondition,
)

GROUP: Final = "virtualization.deckhouse.io"
VERSION: Final = "v1alpha2"
API_VERSION: Final = f"{GROUP}/{VERSION}"


class Kind(StrEnum):
    CLUSTER_VIRTUAL_IMAGE = "ClusterVirtualImage"
    VIRTUAL_IMAGE = "VirtualImage"
    VIRTUAL_DISK = "VirtualDisk"
    VIRTUAL_MACHINE = "VirtualMachine"
    VIRTUAL_MACHINE_CLASS = "VirtualMachineClass"
    VIRTUAL_MACHINE_IP_ADDRESS = "VirtualMachineIPAddress"
    VIRTUAL_MACHINE_IP_ADDRESS_LEASE = "VirtualMachineIPAddressLease"
    VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENT = "VirtualMachineBlockDeviceAttachment"
    VIRTUAL_MACHINE_OPERATION = "VirtualMachineOperation"
    VIRTUAL_MACHINE_MAC_ADDRESS = "VirtualMachineMACAddress"
    VIRTUAL_MACHINE_MAC_ADDRESS_LEASE = "VirtualMachineMACAddressLease"
    VIRTUAL_DISK_SNAPSHOT = "VirtualDiskSnapshot"
    VIRTUAL_MACHINE_SNAPSHOT = "VirtualMachineSnapshot"
    VIRTUAL_MACHINE_SNAPSHOT_OPERATION = "VirtualMachineSnapshotOperation"
    VIRTUAL_MACHINE_POOL = "VirtualMachinePool"
    NODE_USB_DEVICE = "NodeUSBDevice"
    USB_DEVICE = "USBDevice"


class Plural(StrEnum):
    CLUSTER_VIRTUAL_IMAGES = "clustervirtualimages"
    VIRTUAL_IMAGES = "virtualimages"
    VIRTUAL_DISKS = "virtualdisks"
    VIRTUAL_MACHINES = "virtualmachines"
    VIRTUAL_MACHINE_CLASSES = "virtualmachineclasses"
    VIRTUAL_MACHINE_IP_ADDRESSES = "virtualmachineipaddresses"
    VIRTUAL_MACHINE_IP_ADDRESS_LEASES = "virtualmachineipaddressleases"
    VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENTS = "virtualmachineblockdeviceattachments"
    VIRTUAL_MACHINE_OPERATIONS = "virtualmachineoperations"
    VIRTUAL_MACHINE_MAC_ADDRESSES = "virtualmachinemacaddresses"
    VIRTUAL_MACHINE_MAC_ADDRESS_LEASES = "virtualmachinemacaddressleases"
    VIRTUAL_DISK_SNAPSHOTS = "virtualdisksnapshots"
    VIRTUAL_MACHINE_SNAPSHOTS = "virtualmachinesnapshots"
    VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS = "virtualmachinesnapshotoperations"
    VIRTUAL_MACHINE_POOLS = "virtualmachinepools"
    NODE_USB_DEVICES = "nodeusbdevices"
    USB_DEVICES = "usbdevices"


PLURAL: Final[dict[Kind, Plural]] = {
    Kind.CLUSTER_VIRTUAL_IMAGE: Plural.CLUSTER_VIRTUAL_IMAGES,
    Kind.VIRTUAL_IMAGE: Plural.VIRTUAL_IMAGES,
    Kind.VIRTUAL_DISK: Plural.VIRTUAL_DISKS,
    Kind.VIRTUAL_MACHINE: Plural.VIRTUAL_MACHINES,
    Kind.VIRTUAL_MACHINE_CLASS: Plural.VIRTUAL_MACHINE_CLASSES,
    Kind.VIRTUAL_MACHINE_IP_ADDRESS: Plural.VIRTUAL_MACHINE_IP_ADDRESSES,
    Kind.VIRTUAL_MACHINE_IP_ADDRESS_LEASE: Plural.VIRTUAL_MACHINE_IP_ADDRESS_LEASES,
    Kind.VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENT: Plural.VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENTS,
    Kind.VIRTUAL_MACHINE_OPERATION: Plural.VIRTUAL_MACHINE_OPERATIONS,
    Kind.VIRTUAL_MACHINE_MAC_ADDRESS: Plural.VIRTUAL_MACHINE_MAC_ADDRESSES,
    Kind.VIRTUAL_MACHINE_MAC_ADDRESS_LEASE: Plural.VIRTUAL_MACHINE_MAC_ADDRESS_LEASES,
    Kind.VIRTUAL_DISK_SNAPSHOT: Plural.VIRTUAL_DISK_SNAPSHOTS,
    Kind.VIRTUAL_MACHINE_SNAPSHOT: Plural.VIRTUAL_MACHINE_SNAPSHOTS,
    Kind.VIRTUAL_MACHINE_SNAPSHOT_OPERATION: Plural.VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS,
    Kind.VIRTUAL_MACHINE_POOL: Plural.VIRTUAL_MACHINE_POOLS,
    Kind.NODE_USB_DEVICE: Plural.NODE_USB_DEVICES,
    Kind.USB_DEVICE: Plural.USB_DEVICES,
}
CLUSTER_SCOPED: Final = frozenset(
    {Kind.CLUSTER_VIRTUAL_IMAGE, Kind.VIRTUAL_MACHINE_CLASS, Kind.VIRTUAL_MACHINE_IP_ADDRESS_LEASE,
     Kind.VIRTUAL_MACHINE_MAC_ADDRESS_LEASE, Kind.NODE_USB_DEVICE}
)
# Annotation that marks the VirtualMachineClass used by machines that name none.
DEFAULT_CLASS_ANNOTATION: Final = "virtualmachineclass.virtualization.deckhouse.io/is-default-class"


# --- phases (status.phase) -------------------------------------------------------------------

class MachinePhase(StrEnum):
    PENDING = "Pending"
    STARTING = "Starting"
    RUNNING = "Running"
    MIGRATING = "Migrating"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    PAUSE = "Pause"
    DEGRADED = "Degraded"
    TERMINATING = "Terminating"


class DiskPhase(StrEnum):
    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    WAIT_FOR_USER_UPLOAD = "WaitForUserUpload"
    WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
    READY = "Ready"
    RESIZING = "Resizing"
    FAILED = "Failed"
    PVC_LOST = "PVCLost"
    EXPORTING = "Exporting"
    TERMINATING = "Terminating"
    MIGRATING = "Migrating"


class ImagePhase(StrEnum):
    """Phases of VirtualImage and ClusterVirtualImage (the latter never reports PVCLost)."""

    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    WAIT_FOR_USER_UPLOAD = "WaitForUserUpload"
    READY = "Ready"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    IMAGE_LOST = "ImageLost"
    PVC_LOST = "PVCLost"


class VirtualMachineClassPhase(StrEnum):
    PENDING = "Pending"
    READY = "Ready"
    TERMINATING = "Terminating"


class VirtualMachineIPAddressPhase(StrEnum):
    PENDING = "Pending"
    BOUND = "Bound"
    ATTACHED = "Attached"


class VirtualMachineIPAddressLeasePhase(StrEnum):
    BOUND = "Bound"
    RELEASED = "Released"


class VirtualMachineMACAddressPhase(StrEnum):
    PENDING = "Pending"
    BOUND = "Bound"
    ATTACHED = "Attached"


class VirtualMachineMACAddressLeasePhase(StrEnum):
    BOUND = "Bound"


class BlockDeviceAttachmentPhase(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    ATTACHED = "Attached"
    FAILED = "Failed"
    TERMINATING = "Terminating"


class VMOPPhase(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    SUPERSEDED = "Superseded"


# --- spec enums ------------------------------------------------------------------------------

class RunPolicy(StrEnum):
    ALWAYS_ON = "AlwaysOn"
    ALWAYS_OFF = "AlwaysOff"
    MANUAL = "Manual"
    ALWAYS_ON_UNLESS_STOPPED_MANUALLY = "AlwaysOnUnlessStoppedManually"


class OsType(StrEnum):
    WINDOWS = "Windows"
    GENERIC = "Generic"
    LEGACY = "Legacy"


class Bootloader(StrEnum):
    BIOS = "BIOS"
    EFI = "EFI"
    EFI_WITH_SECURE_BOOT = "EFIWithSecureBoot"


class LiveMigrationPolicy(StrEnum):
    ALWAYS_SAFE = "AlwaysSafe"
    PREFER_SAFE = "PreferSafe"
    ALWAYS_FORCED = "AlwaysForced"
    PREFER_FORCED = "PreferForced"


class RestartApprovalMode(StrEnum):
    MANUAL = "Manual"
    AUTOMATIC = "Automatic"


class ProvisioningType(StrEnum):
    USER_DATA = "UserData"
    USER_DATA_REF = "UserDataRef"
    SYSPREP_REF = "SysprepRef"


class BlockDeviceKind(StrEnum):
    CLUSTER_VIRTUAL_IMAGE = "ClusterVirtualImage"
    VIRTUAL_IMAGE = "VirtualImage"
    VIRTUAL_DISK = "VirtualDisk"


class NetworkType(StrEnum):
    MAIN = "Main"
    NETWORK = "Network"
    CLUSTER_NETWORK = "ClusterNetwork"
    UNDERLAY_NETWORK = "UnderlayNetwork"


class DataSourceType(StrEnum):
    HTTP = "HTTP"
    CONTAINER_IMAGE = "ContainerImage"
    OBJECT_REF = "ObjectRef"
    UPLOAD = "Upload"


class StorageType(StrEnum):
    CONTAINER_REGISTRY = "ContainerRegistry"
    PERSISTENT_VOLUME_CLAIM = "PersistentVolumeClaim"
    KUBERNETES = "Kubernetes"  # deprecated name of PersistentVolumeClaim


class CPUType(StrEnum):
    HOST = "Host"
    HOST_PASSTHROUGH = "HostPassthrough"
    DISCOVERY = "Discovery"
    MODEL = "Model"
    FEATURES = "Features"


class VirtualMachineIPAddressType(StrEnum):
    AUTO = "Auto"
    STATIC = "Static"


class VMOPType(StrEnum):
    RESTART = "Restart"
    START = "Start"
    STOP = "Stop"
    MIGRATE = "Migrate"  # deprecated in favour of Evict
    EVICT = "Evict"
    RESTORE = "Restore"
    CLONE = "Clone"


class SnapshotOperationMode(StrEnum):
    DRY_RUN = "DryRun"
    STRICT = "Strict"
    BEST_EFFORT = "BestEffort"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"
