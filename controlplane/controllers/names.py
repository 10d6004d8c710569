"""Finalizers, labels and annotations the controllers put on objects (DVP's names where DVP
has them)."""

from __future__ import annotations

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

LABEL_VM_NAME = "virtualization.deckhouse.io/virtual-machine-name"
LABEL_VMIP_NAMESPACE = "virtualization.deckhouse.io/virtual-machine-ip-address-namespace"
ANNOTATION_RELEASED_AT = "virtualization.deckhouse.io/released-at"
