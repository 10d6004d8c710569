"""The platform's kinds the installer reads and writes through the API (the smoke test, the
upgrade's preflight, uninstall's VM listing), named once: the installer may not import the
control plane's `api` package, only its generic client (tests/unit/installer/test_layering.py)."""

from __future__ import annotations

from controlplane.common.kube.client import Resource

GROUP, VERSION = "virtualization.deckhouse.io", "v1alpha2"
VIRTUAL_MACHINES = Resource(GROUP, VERSION, "virtualmachines", "VirtualMachine")
VIRTUAL_DISKS = Resource(GROUP, VERSION, "virtualdisks", "VirtualDisk")
VIRTUAL_IMAGES = Resource(GROUP, VERSION, "virtualimages", "VirtualImage")
CLUSTER_VIRTUAL_IMAGES = Resource(GROUP, VERSION, "clustervirtualimages", "ClusterVirtualImage", namespaced=False)
INSTANCES = Resource(f"internal.{GROUP}", "v1", "internalvirtualmachineinstances", "InternalVirtualMachineInstance")
