"""The CEL rules (x-kubernetes-validations) of the CRDs, run with cel-python.

Every rule in the shipped CRDs must appear in ``RULES`` with a sample it accepts and one it
refuses (and, for transition rules, the old value), so a rule added to a CRD without a test
fails here. The samples are the value ``self`` takes at the rule's schema node. Rules run
the way the API server runs them: properties named like CEL keywords are escaped
(``namespace`` -> ``__namespace__``), evaluation errors count as failures, and the
Kubernetes CEL library function ``replace`` (absent from cel-python) is supplied.
"""

from __future__ import annotations

from typing import Any

import pytest
from celpy.evaluation import CELEvalError

from controlplane.api.crds import crds_by_kind, served_schema
from tests.unit.crd_support import (
    all_rules,
    cel_violations,
    compile_rule,
    escape_property,
    evaluate_rule,
    is_transition_rule,
    schema_at,
)

SPEC = {"cpu": {"cores": 1}, "memory": {"size": "1Gi"}, "virtualMachineClassName": "c",
        "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "root"}]}
DISKS = [{"kind": "VirtualDisk", "name": f"d{i}"} for i in range(5)]
HTTP = {"url": "https://example.com/a.img"}
REF = {"kind": "VirtualImage", "name": "img"}
IMAGE = {"image": "registry.example.com/img:1"}


def vm(**fields: Any) -> dict[str, Any]:
    return {**SPEC, **fields}


VMSOP_SPEC = {"type": "CreateVirtualMachine", "virtualMachineSnapshotName": "s",
              "createVirtualMachine": {"mode": "Strict", "customization": {"nameSuffix": "-c"}}}


# (kind, schema path, message start, accepted value, refused value, old value or None)
RULES: list[tuple[str, str, str, Any, Any, Any]] = [
    ("VirtualMachine", "spec", "Core fraction", vm(cpu={"cores": 1, "coreFraction": "10%"}),
     vm(cpu={"cores": 1, "coreFraction": "101%"}), None),
    ("VirtualMachine", "spec", "Core fraction", vm(cpu={"cores": 1, "coreFraction": "Auto"}),
     vm(cpu={"cores": 1, "coreFraction": "0%"}), None),
    ("VirtualMachine", "spec", "The Legacy osType requires", vm(osType="Legacy", bootloader="BIOS"),
     vm(osType="Legacy", bootloader="EFI"), None),
    ("VirtualMachine", "spec", "The Legacy osType does not support", vm(osType="Legacy"),
     vm(osType="Legacy", provisioning={"type": "UserData", "userData": "#cloud-config"}), None),
    ("VirtualMachine", "spec", "The Legacy osType with", vm(osType="Legacy", enableParavirtualization=False,
                                                             blockDeviceRefs=DISKS[:4]),
     vm(osType="Legacy", enableParavirtualization=False, blockDeviceRefs=DISKS), None),
    ("VirtualMachine", "spec.provisioning.userData", "`userData` exceeds", "a" * 2048, "a" * 2049, None),
    *[(kind, "spec.dataSource", msg, good, bad, None)
      for kind in ("VirtualDisk", "VirtualImage", "ClusterVirtualImage")
      for msg, good, bad in [
          ("HTTP requires", {"type": "HTTP", "http": HTTP}, {"type": "HTTP", "http": HTTP, "objectRef": REF}),
          ("ContainerImage requires", {"type": "ContainerImage", "containerImage": IMAGE}, {"type": "ContainerImage"}),
          ("ObjectRef requires", {"type": "ObjectRef", "objectRef": REF},
           {"type": "ObjectRef", "objectRef": REF, "containerImage": IMAGE}),
          ("HTTP requires", {"type": "HTTP", "http": HTTP}, {"type": "HTTP", "http": HTTP, "upload": {}}),
          ("Upload cannot", {"type": "Upload", "upload": {"checksum": {"sha1": "a" * 40}}},
           {"type": "Upload", "upload": {}, "http": HTTP}),
          ("Upload cannot", {"type": "Upload"}, {"type": "Upload", "objectRef": REF})]],
    ("ClusterVirtualImage", "spec.dataSource.objectRef", "The namespace is required",
     {"kind": "VirtualImage", "name": "a", "namespace": "ns"}, {"kind": "VirtualDisk", "name": "a"}, None),
    ("ClusterVirtualImage", "spec.dataSource.objectRef", "The namespace is required",
     {"kind": "ClusterVirtualImage", "name": "a"}, {"kind": "VirtualDiskSnapshot", "name": "a", "namespace": ""}, None),
    ("ClusterVirtualImage", "spec.dataSource.objectRef", "The namespace must be no longer",
     {"kind": "VirtualDisk", "name": "a", "namespace": "n" * 63},
     {"kind": "VirtualDisk", "name": "a", "namespace": "n" * 64}, None),
    ("VirtualMachineClass", "spec.cpu", ".spec.cpu is immutable", {"type": "Host"}, {"type": "Host"},
     {"type": "Model", "model": "Nehalem"}),
    ("VirtualMachineClass", "spec.cpu", "HostPassthrough and Host", {"type": "HostPassthrough"},
     {"type": "Host", "model": "Nehalem"}, None),
    ("VirtualMachineClass", "spec.cpu", "Discovery cannot", {"type": "Discovery", "discovery": {}},
     {"type": "Discovery", "features": ["sse2"]}, None),
    ("VirtualMachineClass", "spec.cpu", "Model requires", {"type": "Model", "model": "Nehalem"}, {"type": "Model"},
     None),
    ("VirtualMachineClass", "spec.cpu", "Features requires", {"type": "Features", "features": ["sse2"]},
     {"type": "Features", "features": ["sse2"], "model": "Nehalem"}, None),
    ("VirtualMachineClass", "spec.sizingPolicies[].cores", "The maximum must be greater than the minimum",
     {"min": 1, "max": 4}, {"min": 4, "max": 4}, None),
    ("VirtualMachineClass", "spec.sizingPolicies[].cores", "The maximum must be greater than the step",
     {"min": 1, "max": 4, "step": 2}, {"min": 1, "max": 4, "step": 4}, None),
    ("VirtualMachineClass", "spec.sizingPolicies[].defaultCoreFraction", "The default core fraction", "Auto",
     "auto", None),
    ("VirtualMachineClass", "spec.sizingPolicies[].defaultCoreFraction", "The default core fraction", 100, 0, None),
    ("VirtualMachineClass", "spec.sizingPolicies[].defaultCoreFraction", "The default core fraction", 1, 101, None),
    ("VirtualMachineOperation", "spec", ".spec is immutable", {"type": "Stop", "virtualMachineName": "vm"},
     {"type": "Stop", "virtualMachineName": "vm"}, {"type": "Start", "virtualMachineName": "vm"}),
    ("VirtualMachineOperation", "spec", "The `Start` operation", {"type": "Start", "force": False},
     {"type": "Start", "force": True}, None),
    ("VirtualMachineOperation", "spec", "Restore requires",
     {"type": "Restore", "restore": {"mode": "Strict", "virtualMachineSnapshotName": "s"}}, {"type": "Restore"}, None),
    ("VirtualMachineOperation", "spec", "Clone requires", {"type": "Clone", "clone": {"mode": "DryRun"}},
     {"type": "Clone"}, None),
    ("VirtualMachineOperation", "spec", "spec.migrate can only", {"type": "Migrate", "migrate": {}},
     {"type": "Evict", "migrate": {"nodeSelector": {"a": "b"}}}, None),
    ("VirtualMachineOperation", "spec.clone", "At least one of",
     {"mode": "Strict", "customization": {"nameSuffix": "-copy"}}, {"mode": "Strict"}, None),
    ("VirtualMachineOperation", "spec.clone", "At least one of",
     {"mode": "Strict", "nameReplacement": [{"from": {"name": "a"}, "to": "b"}]},
     {"mode": "Strict", "customization": {"namePrefix": ""}}, None),
    ("VirtualMachineOperation", "spec.clone.nameReplacement", "Each nameReplacement.to",
     [{"from": {"name": "a"}, "to": "b" * 59}], [{"from": {"name": "a"}, "to": "b"}, {"from": {"name": "c"}, "to": ""}],
     None),
    ("VirtualMachineOperation", "spec.clone.customization", "namePrefix length", {"namePrefix": "p" * 59},
     {"namePrefix": "p" * 60}, None),
    ("VirtualMachineOperation", "spec.clone.customization", "nameSuffix length", {"nameSuffix": "s"},
     {"nameSuffix": ""}, None),
    ("VirtualMachineSnapshotOperation", "spec", ".spec is immutable", VMSOP_SPEC, {**VMSOP_SPEC, "type": "X"},
     VMSOP_SPEC),
    # DVP's rule names a type its enum lacks ('CreateVirtualMachineName'): it refuses nothing the enum admits
    ("VirtualMachineSnapshotOperation", "spec", "CreateVirtualMachineName requires", VMSOP_SPEC,
     {"type": "CreateVirtualMachineName", "virtualMachineSnapshotName": "s"}, None),
    ("VirtualMachineSnapshotOperation", "spec.createVirtualMachine", "At least one of",
     {"mode": "Strict", "customization": {"namePrefix": "c-"}}, {"mode": "DryRun"}, None),
    ("VirtualMachineSnapshotOperation", "spec.createVirtualMachine.nameReplacement", "Each nameReplacement.to",
     [{"from": {"name": "a"}, "to": "b"}], [{"from": {"name": "a"}, "to": "b" * 60}], None),
    ("VirtualMachineSnapshotOperation", "spec.createVirtualMachine.customization", "namePrefix length",
     {"namePrefix": "p"}, {"namePrefix": ""}, None),
    ("VirtualMachineSnapshotOperation", "spec.createVirtualMachine.customization", "nameSuffix length",
     {"nameSuffix": "s" * 59}, {"nameSuffix": "s" * 60}, None),
]

# A VirtualMachinePool carries the VM and disk spec schemas in its templates, their rules included.
_IN_POOL = {("VirtualMachine", "spec"): "spec.virtualMachineTemplate.spec",
            ("VirtualDisk", "spec.dataSource"): "spec.virtualDiskTemplates[].spec.dataSource"}
RULES += [("VirtualMachinePool", _IN_POOL.get((k, p), f"spec.virtualMachineTemplate.{p}"), *rest)
          for k, p, *rest in list(RULES) if k == "VirtualMachine" or (k, p) in _IN_POOL]
POOL_DISKS = [{"name": "root", "spec": {}}, {"name": "data", "spec": {}}]


def pool(*refs: str, os_type: str = "Generic") -> dict[str, Any]:
    return {"scaleDownPolicy": "NewestFirst", "virtualDiskTemplates": POOL_DISKS,
            "virtualMachineTemplate": {"spec": vm(osType=os_type,
                                                  blockDeviceRefs=[{"kind": "VirtualDisk", "name": r} for r in refs])}}


RULES += [
    ("VirtualMachinePool", "spec", "each virtualDiskTemplates entry must be referenced by", pool("root", "data"),
     pool("root"), None),
    ("VirtualMachinePool", "spec", "each VirtualDisk reference", pool("data", "root"), pool("root", "data", "x"),
     None),
    ("VirtualMachinePool", "spec", "each virtualDiskTemplates entry must be referenced exactly", pool("root", "data"),
     pool("root", "data", "data"), None),
    ("VirtualMachinePool", "spec", "The Legacy osType is not supported", pool("root", "data"),
     pool("root", "data", os_type="Legacy"), None),
    ("VirtualMachinePool", "spec.virtualDiskTemplates[].reclaim", "keep and ttl",
     {"onScaleDown": "Retain", "keep": 1, "ttl": "1h"}, {"onScaleDown": "Delete", "keep": 0, "ttl": "1h"}, None),
    ("VirtualMachinePool", "spec.virtualDiskTemplates[].reclaim", "keep requires ttl",
     {"onScaleDown": "Retain", "keep": 0}, {"onScaleDown": "Retain", "keep": 2}, None),
]


def rules_of(kind: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    return list(all_rules(served_schema(crds_by_kind()[kind])))


ALL_RULES = [(kind, *r) for kind in sorted(crds_by_kind()) for r in rules_of(kind)]


def find_rule(kind: str, path: str, message: str) -> tuple[str, dict[str, Any]]:
    matches = [(rule, node) for k, p, rule, msg, node in ALL_RULES if (k, p) == (kind, path) and msg.startswith(message)]
    assert len(matches) == 1, f"{kind} {path} {message!r}: {len(matches)} rules match"
    return matches[0]


def test_every_rule_in_the_crds_has_a_verdict_test() -> None:
    tested = {find_rule(kind, path, msg)[0] + f"@{kind}:{path}" for kind, path, msg, *_ in RULES}
    shipped = {f"{rule}@{kind}:{path}" for kind, path, rule, _, _ in ALL_RULES}
    assert shipped == tested


@pytest.mark.parametrize(("kind", "path", "rule"), [(k, p, r) for k, p, r, _, _ in ALL_RULES],
                         ids=[f"{k}:{p}:{m[:30]}" for k, p, _, m, _ in ALL_RULES])
def test_rule_compiles_with_cel_python(kind: str, path: str, rule: str) -> None:
    compile_rule(rule)


@pytest.mark.parametrize(("kind", "path", "message", "good", "bad", "old"), RULES,
                         ids=[f"{k}:{p}:{m[:28]}" for k, p, m, *_ in RULES])
def test_rule_verdicts(kind: str, path: str, message: str, good: Any, bad: Any, old: Any) -> None:
    rule, node = find_rule(kind, path, message)
    if old is None:
        assert evaluate_rule(rule, node, good) is True
        assert evaluate_rule(rule, node, bad) is False
    else:  # transition rule: unchanged passes, changed fails
        assert is_transition_rule(rule)
        assert evaluate_rule(rule, node, good, good) is True
        assert evaluate_rule(rule, node, bad, old) is False


def test_cel_python_lacks_the_kubernetes_replace_function() -> None:
    # The VirtualMachine coreFraction rule calls <string>.replace(), part of Kubernetes' CEL
    # strings library; plain cel-python refuses it, so the API server must supply it.
    rule, node = find_rule("VirtualMachine", "spec", "Core fraction")
    with pytest.raises(CELEvalError, match="replace"):
        evaluate_rule(rule, node, vm(cpu={"cores": 1, "coreFraction": "10%"}), k8s_functions=False)
    # Short-circuiting means it is only reached for percentages.
    assert evaluate_rule(rule, node, vm(cpu={"cores": 1, "coreFraction": "Auto"}), k8s_functions=False)


@pytest.mark.parametrize(("name", "escaped"), [
    ("namespace", "__namespace__"), ("in", "__in__"), ("name", "name"), ("a-b", "a__dash__b"),
    ("a.b", "a__dot__b"), ("a/b", "a__slash__b"), ("a__b", "a__underscores__b")])
def test_property_names_are_escaped_like_kubernetes(name: str, escaped: str) -> None:
    assert escape_property(name) == escaped


def test_map_keys_are_not_escaped() -> None:
    node = schema_at(served_schema(crds_by_kind()["VirtualMachineOperation"]), "spec")
    spec = {"type": "Migrate", "migrate": {"nodeSelector": {"kubernetes.io/hostname": "n1"}}}
    assert evaluate_rule("self.migrate.nodeSelector['kubernetes.io/hostname'] == 'n1'", node, spec)


VMOP_SCHEMA = served_schema(crds_by_kind()["VirtualMachineOperation"])


@pytest.mark.parametrize(("kind", "obj", "old", "expected"), [
    ("VirtualMachine", {"spec": vm(osType="Legacy", bootloader="EFIWithSecureBoot")}, None,
     [("spec", "The Legacy osType requires the BIOS bootloader.")]),
    ("VirtualMachine", {"spec": vm(provisioning={"type": "UserData", "userData": "x" * 3000})}, None,
     [("spec.provisioning.userData", "`userData` exceeds 2048 byte limit; should use `userDataRef` for larger data.")]),
    ("ClusterVirtualImage", {"spec": {"dataSource": {"type": "ObjectRef", "objectRef": {"kind": "VirtualImage",
                                                                                        "name": "a"}}}}, None,
     [("spec.dataSource.objectRef", "The namespace is required for VirtualDisk, VirtualImage and VirtualDiskSnapshot"),
      ("spec.dataSource.objectRef", "The namespace must be no longer than 63 characters.")]),
    ("VirtualDisk", {"spec": {"dataSource": {"http": HTTP}}}, None,  # no type: evaluation errors fail the rules
     [("spec.dataSource", "HTTP requires http and cannot have ContainerImage, ObjectRef or Upload."),
      ("spec.dataSource", "ContainerImage requires containerImage and cannot have HTTP, ObjectRef or Upload."),
      ("spec.dataSource", "ObjectRef requires objectRef and cannot have HTTP, ContainerImage or Upload."),
      ("spec.dataSource", "Upload cannot have HTTP, ContainerImage or ObjectRef.")]),
    ("VirtualMachineOperation", {"spec": {"type": "Stop", "virtualMachineName": "a"}}, None, []),
    ("VirtualMachineOperation", {"spec": {"type": "Stop", "virtualMachineName": "a"}},
     {"spec": {"type": "Stop", "virtualMachineName": "b"}}, [("spec", ".spec is immutable")]),
    ("VirtualMachineClass", {"spec": {"cpu": {"type": "Host"}}}, {"spec": {"cpu": {"type": "Host"}}}, []),
    # DVP's user guide migrates with force: true (AutoConverge); no rule refuses it
    ("VirtualMachineOperation", {"spec": {"type": "Migrate", "virtualMachineName": "linux-vm", "force": True,
                                          "migrate": {"nodeSelector": {"kubernetes.io/hostname": "production-1"}}}},
     None, []),
], ids=["vm-legacy-efi", "vm-userdata-too-long", "cvi-objectref-no-namespace", "vd-no-type",
        "vmop-create-skips-transition", "vmop-update-changes-spec", "vmclass-update-same-cpu", "vmop-migrate-force"])
def test_rules_on_whole_objects_report_their_path(kind: str, obj: dict[str, Any], old: Any,
                                                  expected: list[tuple[str, str]]) -> None:
    assert cel_violations(served_schema(crds_by_kind()[kind]), obj, old) == expected
