"""The finalizers DVP's controllers hold on their objects (DVP's names), defined once for the
controllers that add and remove them and for the API server, which sets the always-held ones
when an object is created (`ON_CREATE`), as kube-apiserver's StorageObjectInUseProtection
admission plugin sets `kubernetes.io/pvc-protection` on every new PVC: a controller then finds
its finalizer in place and has no metadata write to make for it (one write per object fewer)."""

from __future__ import annotations

GROUP = "virtualization.deckhouse.io"

FINALIZER_VMCLASS = "virtualization.deckhouse.io/vmclass-cleanup"
FINALIZER_VMIP = "virtualization.deckhouse.io/vmip-cleanup"
FINALIZER_VMMAC = "virtualization.deckhouse.io/vmmac-cleanup"
FINALIZER_VD = "virtualization.deckhouse.io/vd-cleanup"
FINALIZER_VD_PROTECTION = "virtualization.deckhouse.io/vd-protection"
FINALIZER_VI = "virtualization.deckhouse.io/vi-cleanup"
FINALIZER_CVI = "virtualization.deckhouse.io/cvi-cleanup"
FINALIZER_VM = "virtualization.deckhouse.io/vm-cleanup"
FINALIZER_VMOP = "virtualization.deckhouse.io/vmop-cleanup"
FINALIZER_VMBDA = "virtualization.deckhouse.io/vmbda-cleanup"

ON_CREATE: dict[str, str] = {
    "VirtualMachine": FINALIZER_VM,
    "VirtualDisk": FINALIZER_VD_PROTECTION,
    "VirtualMachineIPAddress": FINALIZER_VMIP,
    "VirtualMachineMACAddress": FINALIZER_VMMAC,
    "VirtualImage": FINALIZER_VI,
    "ClusterVirtualImage": FINALIZER_CVI,
    "VirtualMachineBlockDeviceAttachment": FINALIZER_VMBDA,
}
"""Per kind of GROUP, the finalizer its controller adds to every object that is not being deleted
(the class's and an operation's are held only at times, so they are not set on create)."""
