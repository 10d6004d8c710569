"""REST coordinates (`Resource`) of every kind the components read and write, for the shared
client runtime in `controlplane.common.kube`."""

from __future__ import annotations

from controlplane.api.v1alpha2 import GROUP, VERSION
from controlplane.common.kube.client import Resource

INTERNAL_GROUP = "internal.virtualization.deckhouse.io"

VIRTUAL_MACHINES = Resource(GROUP, VERSION, "virtualmachines", "VirtualMachine")
VIRTUAL_DISKS = Resource(GROUP, VERSION, "virtualdisks", "VirtualDisk")
VIRTUAL_IMAGES = Resource(GROUP, VERSION, "virtualimages", "VirtualImage")
CLUSTER_VIRTUAL_IMAGES = Resource(GROUP, VERSION, "clustervirtualimages", "ClusterVirtualImage", namespaced=False)
VIRTUAL_MACHINE_CLASSES = Resource(GROUP, VERSION, "virtualmachineclasses", "VirtualMachineClass", namespaced=False)
VIRTUAL_MACHINE_IP_ADDRESSES = Resource(GROUP, VERSION, "virtualmachineipaddresses", "VirtualMachineIPAddress")
VIRTUAL_MACHINE_IP_ADDRESS_LEASES = Resource(GROUP, VERSION, "virtualmachineipaddressleases",
                                             "VirtualMachineIPAddressLease", namespaced=False)
VIRTUAL_MACHINE_MAC_ADDRESSES = Resource(GROUP, VERSION, "virtualmachinemacaddresses", "VirtualMachineMACAddress")
VIRTUAL_MACHINE_MAC_ADDRESS_LEASES = Resource(GROUP, VERSION, "virtualmachinemacaddressleases",
                                              "VirtualMachineMACAddressLease", namespaced=False)
VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENTS = Resource(GROUP, VERSION, "virtualmachineblockdeviceattachments",
                                                    "VirtualMachineBlockDeviceAttachment")
VIRTUAL_MACHINE_OPERATIONS = Resource(GROUP, VERSION, "virtualmachineoperations", "VirtualMachineOperation")
VIRTUAL_DISK_SNAPSHOTS = Resource(GROUP, VERSION, "virtualdisksnapshots", "VirtualDiskSnapshot")
VIRTUAL_MACHINE_SNAPSHOTS = Resource(GROUP, VERSION, "virtualmachinesnapshots", "VirtualMachineSnapshot")
VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS = Resource(GROUP, VERSION, "virtualmachinesnapshotoperations",
                                               "VirtualMachineSnapshotOperation")
VIRTUAL_MACHINE_POOLS = Resource(GROUP, VERSION, "virtualmachinepools", "VirtualMachinePool")
NODE_USB_DEVICES = Resource(GROUP, VERSION, "nodeusbdevices", "NodeUSBDevice", namespaced=False)
USB_DEVICES = Resource(GROUP, VERSION, "usbdevices", "USBDevice")

INSTANCES = Resource(INTERNAL_GROUP, "v1", "internalvirtualmachineinstances", "InternalVirtualMachineInstance")
VOLUMES = Resource(INTERNAL_GROUP, "v1", "internalvirtualdiskvolumes", "InternalVirtualDiskVolume")

NODE_LABEL = "virtualization.deckhouse.io/node"
"""Set by the controllers on instances and volumes: the node handler watches only its own."""
KVM_LABEL = "virtualization.deckhouse.io/kvm"
"""Set by the node handler on its Node: "true" when hardware virtualization is usable."""
