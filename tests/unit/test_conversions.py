"""VirtualMachineClass v1alpha2 ↔ v1alpha3 conversion: DVP's field mapping, both ways, and its refusals."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controlplane.api.conversions import ConversionError, convert
from controlplane.api.crds import GROUP, crds_by_kind

V2 = f"{GROUP}/v1alpha2"
V3 = f"{GROUP}/v1alpha3"


def _class(api_version: str, fractions: list[Any], default: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "VirtualMachineClass", "metadata": {"name": "c"},
            "spec": {"cpu": {"type": "Host"}, "sizingPolicies": [
                {"cores": {"min": 1, "max": 4}, "coreFractions": fractions, "defaultCoreFraction": default},
                {"cores": {"min": 5, "max": 8}, "dedicatedCores": [False]}]},
            "status": {"phase": "Ready"}}


@pytest.mark.parametrize(("v2_fractions", "v2_default", "v3_fractions", "v3_default"), [
    ([5, 10, 20, 50, 100], 50, ["5%", "10%", "20%", "50%", "100%"], "50%"),
    ([1, 100], "Auto", ["1%", "100%"], "Auto"),
    ([25], 25, ["25%"], "25%"),
])
def test_round_trip(v2_fractions: list[int], v2_default: Any, v3_fractions: list[str], v3_default: str) -> None:
    v2 = _class(V2, v2_fractions, v2_default)
    v3 = convert(copy.deepcopy(v2), GROUP, "VirtualMachineClass", "v1alpha3")
    assert v3 == _class(V3, v3_fractions, v3_default)
    assert convert(copy.deepcopy(v3), GROUP, "VirtualMachineClass", "v1alpha2") == v2


def test_same_version_untouched() -> None:
    v3 = _class(V3, ["5%"], "Auto")
    assert convert(copy.deepcopy(v3), GROUP, "VirtualMachineClass", "v1alpha3") == v3


def test_string_number_in_v1alpha2_is_a_number() -> None:
    out = convert(_class(V2, [10], "10"), GROUP, "VirtualMachineClass", "v1alpha3")
    assert out["spec"]["sizingPolicies"][0]["defaultCoreFraction"] == "10%"


@pytest.mark.parametrize(("fractions", "default", "field"), [
    (["0%"], "5%", "spec.sizingPolicies[0].coreFractions[0]"),
    (["5%", "Auto"], "5%", "spec.sizingPolicies[0].coreFractions[1]"),
    (["5%"], "101%", "spec.sizingPolicies[0].defaultCoreFraction"),
    (["5%"], "5", "spec.sizingPolicies[0].defaultCoreFraction"),
])
def test_refused_v3_values_name_the_field(fractions: list[str], default: str, field: str) -> None:
    with pytest.raises(ConversionError) as err:
        convert(_class(V3, fractions, default), GROUP, "VirtualMachineClass", "v1alpha2")
    assert err.value.field == field


def test_other_kinds_change_only_api_version() -> None:
    vd = {"apiVersion": V2, "kind": "VirtualDisk", "spec": {"x": 1}}
    assert convert(vd, GROUP, "VirtualDisk", "v1alpha3") == {"apiVersion": V3, "kind": "VirtualDisk", "spec": {"x": 1}}


def test_crd_serves_both_versions_storing_v1alpha2() -> None:
    versions = crds_by_kind()["VirtualMachineClass"]["spec"]["versions"]
    assert [(v["name"], v["served"], v["storage"]) for v in versions] == [
        ("v1alpha2", True, True), ("v1alpha3", True, False)]
    v2, v3 = (v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["sizingPolicies"]["items"]
              ["properties"] for v in versions)
    assert v3["coreFractions"]["items"] == {"type": "string", "pattern": "^(100|[1-9][0-9]?)%$"}
    assert v3["defaultCoreFraction"]["pattern"] == "^(Auto|(100|[1-9][0-9]?)%)$"
    assert v2["coreFractions"]["items"]["type"] == "integer"
    assert v2["defaultCoreFraction"]["x-kubernetes-int-or-string"] is True
