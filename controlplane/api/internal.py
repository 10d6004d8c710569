"""Typed names of the internal contract between the VM/disk controllers and the node handlers.

The kinds `InternalVirtualMachineInstance` and `InternalVirtualDiskVolume` (group
``internal.virtualization.deckhouse.io``, version ``v1``; CRDs in ``crds/internal-*.yaml``)
are not part of DVP's public API: controllers write their spec, the node handler of
``spec.nodeName`` writes their status. This module names their phases, condition types and
reasons, the label that routes an object to its node, the finalizers the node handler holds,
and the Node labels/conditions a node handler publishes, so both sides spell them the same
way. ``docs/nodehandler.md`` describes the contract in prose; tests check the enums that
mirror schema enums against the CRDs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

GROUP: Final = "internal.virtualization.deckhouse.io"
VERSION: Final = "v1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

INSTANCE_KIND: Final = "InternalVirtualMachineInstance"
INSTANCE_PLURAL: Final = "internalvirtualmachineinstances"
VOLUME_KIND: Final = "InternalVirtualDiskVolume"
VOLUME_PLURAL: Final = "internalvirtualdiskvolumes"

NODE_LABEL: Final = "virtualization.deckhouse.io/node"
"""Set by the controllers on every instance and volume to its ``spec.nodeName``: node handlers
watch only objects carrying their own node name here (the API server has no field selector on
``spec.nodeName`` for custom resources)."""

INSTANCE_FINALIZER: Final = "internal.virtualization.deckhouse.io/node-handler"
"""Held by the node handler on an instance until its domain, seed and local state are gone."""
VOLUME_FINALIZER: Final = "internal.virtualization.deckhouse.io/node-handler"
"""Held by the node handler on a volume until its file is deleted."""


class InstancePhase(StrEnum):
    PENDING = "Pending"
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"
    TERMINATING = "Terminating"


class RunState(StrEnum):
    RUNNING = "Running"
    STOPPED = "Stopped"


class PowerAction(StrEnum):
    RESTART = "Restart"
    STOP = "Stop"
    START = "Start"


class StopReason(StrEnum):
    """Why an instance's domain is not running (``status.stopReason``). Every reason except
    ``Requested`` holds the instance stopped while ``runState`` stays ``Running``, until a
    ``Start`` power request or a pass through ``runState: Stopped``."""

    REQUESTED = "Requested"
    POWER_REQUEST = "PowerRequest"
    GUEST_SHUTDOWN = "GuestShutdown"
    CRASHED = "Crashed"
    DESTROYED = "Destroyed"


class DomainType(StrEnum):
    KVM = "kvm"
    QEMU = "qemu"


class InstanceCondition(StrEnum):
    CONFIGURATION_VALID = "ConfigurationValid"
    DISKS_READY = "DisksReady"
    RUNNING = "Running"
    AGENT_CONNECTED = "AgentConnected"


class InstanceReason(StrEnum):
    VALID = "Valid"
    INVALID_SPEC = "InvalidSpec"
    DISKS_READY = "DisksReady"
    VOLUME_NOT_READY = "VolumeNotReady"
    IMAGE_NOT_READY = "ImageNotReady"
    DOMAIN_RUNNING = "DomainRunning"
    DOMAIN_STOPPED = "DomainStopped"
    START_FAILED = "StartFailed"
    AGENT_CONNECTED = "AgentConnected"
    AGENT_NOT_CONNECTED = "AgentNotConnected"


class VolumePhase(StrEnum):
    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    READY = "Ready"
    RESIZING = "Resizing"
    FAILED = "Failed"
    TERMINATING = "Terminating"


class VolumeCondition(StrEnum):
    READY = "Ready"


class VolumeReason(StrEnum):
    READY = "Ready"
    PROVISIONING = "Provisioning"
    PROVISIONING_FAILED = "ProvisioningFailed"
    RESIZING = "Resizing"
    INVALID_SPEC = "InvalidSpec"
    IN_USE = "InUse"
    SOURCE_NOT_READY = "SourceNotReady"
    POTENTIALLY_INCONSISTENT = "PotentiallyInconsistent"


# -- Node ----------------------------------------------------------------------------------------

LABEL_KVM: Final = "virtualization.deckhouse.io/kvm"
"""``"true"`` when the node runs guests with KVM, ``"false"`` when it falls back to emulation."""
LABEL_KVM_NESTED: Final = "virtualization.deckhouse.io/kvm-nested"
LABEL_CPU_VENDOR: Final = "virtualization.deckhouse.io/cpu-vendor"
LABEL_CPU_MODEL: Final = "virtualization.deckhouse.io/cpu-model"
LABEL_HANDLER_VERSION: Final = "virtualization.deckhouse.io/node-handler-version"
"""The node handler's version, as a label (selectable by the upgrade) and an annotation."""
NODE_LEASE_NAMESPACE: Final = "kube-node-lease"


class NodeCondition(StrEnum):
    READY = "Ready"
    KVM = "KVM"
    CLOCK_SYNCHRONIZED = "ClockSynchronized"
    """False while the node's clock is off the control plane's by more than the allowed skew."""
    DVCR_ACCESS = "DVCRAccess"
    """False while DVCR refuses the node's pull credentials."""


class NodeReason(StrEnum):
    HANDLER_READY = "NodeHandlerReady"
    LIBVIRT_UNAVAILABLE = "LibvirtUnavailable"
    NETWORK_UNAVAILABLE = "NetworkUnavailable"
    NODE_STATUS_UNKNOWN = "NodeStatusUnknown"
    """The node handler stopped renewing its Lease (set by the node lifecycle controller)."""
    CLOCK_SKEWED = "ClockSkewed"
    CLOCK_IN_SYNC = "ClockInSync"
    DVCR_CREDENTIALS_REFUSED = "DVCRCredentialsRefused"
    DVCR_CREDENTIALS_ACCEPTED = "DVCRCredentialsAccepted"


class KVMReason(StrEnum):
    """Why a node does (``HardwareVirtualization``) or does not use KVM."""

    HARDWARE_VIRTUALIZATION = "HardwareVirtualization"
    NO_CPU_FLAGS = "NoCPUFlags"
    PVM_ONLY = "PVMOnly"
    NO_MODULE = "NoModule"
    NO_DEVICE = "NoDevice"
    DEVICE_NOT_USABLE = "DeviceNotUsable"
    EMULATION_FORCED = "EmulationForced"


def placed_on(obj: dict[str, Any], node: str) -> bool:
    """Whether an instance or volume is the named node's: its `spec.nodeName` or its node label
    (the node authorizer lets a node write only those; a migration's hand-over rewrites both)."""
    spec = obj.get("spec") or {}
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return spec.get("nodeName") == node or labels.get(NODE_LABEL) == node


def node_internal_ip(node: dict[str, Any] | None) -> str:
    """The InternalIP a Node publishes in `status.addresses` ("" when none): where its node
    handler's console endpoint and its libvirtd (live migrations) are reached."""
    addresses = ((node or {}).get("status") or {}).get("addresses") or []
    return next((str(a.get("address") or "") for a in addresses if a.get("type") == "InternalIP"), "")


def console_endpoint(node: dict[str, Any] | None) -> str:
    """`HOST:PORT` of a node handler's console endpoint as its Node publishes it (InternalIP and
    `status.daemonEndpoints.kubeletEndpoint.Port`, an IPv6 address in brackets); "" when it
    publishes none. The API server's console proxy and the controllers' volume reads use it."""
    status = (node or {}).get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    address = node_internal_ip(node)
    if not port or not address:
        return ""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
