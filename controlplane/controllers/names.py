"""Finalizers, labels and annotations the controllers put on objects (DVP's names where DVP
has them; the finalizers are defined in `controlplane.api.finalizers`, which the API server reads too)."""

from __future__ import annotations

from controlplane.api.finalizers import (
    FINALIZER_CVI,
    FINALIZER_VD,
    FINALIZER_VD_PROTECTION,
    FINALIZER_VI,
    FINALIZER_VM,
    FINALIZER_VMBDA,
    FINALIZER_VMCLASS,
    FINALIZER_VMIP,
    FINALIZER_VMMAC,
    FINALIZER_VMOP,
)

__all__ = ["FINALIZER_CVI", "FINALIZER_VD", "FINALIZER_VD_PROTECTION", "FINALIZER_VI", "FINALIZER_VM", "FINALIZER_VMBDA",
           "FINALIZER_VMCLASS", "FINALIZER_VMIP", "FINALIZER_VMMAC", "FINALIZER_VMOP", "LABEL_VM_NAME",
           "LABEL_VMIP_NAMESPACE", "ANNOTATION_RELEASED_AT"]

LABEL_VM_NAME = "virtualization.deckhouse.io/virtual-machine-name"
LABEL_VMIP_NAMESPACE = "virtualization.deckhouse.io/virtual-machine-ip-address-namespace"
ANNOTATION_RELEASED_AT = "virtualization.deckhouse.io/released-at"
