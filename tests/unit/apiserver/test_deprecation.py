"""Deprecated CRD versions: the warning text kube-apiserver would send (the version's own
`deprecationWarning`, else `<group>/<version> <Kind> is deprecated`), the header it goes in,
and the bundled VirtualMachineClass v1alpha2 naming v1alpha3 as its replacement."""

from __future__ import annotations

from controlplane.api.crds import load_crds
from controlplane.apiserver import crds, deprecation

GROUP = "virtualization.deckhouse.io"


def test_the_text_of_the_warning() -> None:
    assert crds.deprecation_warning("g.io", {"name": "v1"}, "Thing") == ""
    assert crds.deprecation_warning("g.io", {"name": "v1", "deprecated": False, "deprecationWarning": "x"}, "T") == ""
    assert crds.deprecation_warning("g.io", {"name": "v1", "deprecated": True}, "Thing") == "g.io/v1 Thing is deprecated"
    assert crds.deprecation_warning("g.io", {"name": "v1", "deprecated": True, "deprecationWarning": "use v2"},
                                    "Thing") == "use v2"


def test_the_header_escapes_quotes() -> None:
    assert deprecation.header('say "no"') == '299 - "say \\"no\\""'


def test_virtual_machine_class_v1alpha2_warns_and_v1alpha3_does_not() -> None:
    crd = next(c for c in load_crds() if c["spec"]["names"]["kind"] == "VirtualMachineClass")
    infos = {i.version: i for i in crds.infos_for(crd)}
    assert infos["v1alpha2"].deprecation_warning == (
        f"{GROUP}/v1alpha2 VirtualMachineClass is deprecated; use {GROUP}/v1alpha3 VirtualMachineClass")
    assert infos["v1alpha3"].deprecation_warning == ""
