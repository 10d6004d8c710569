"""The shipped virtualization.deckhouse.io CRDs: structure, names, columns, examples, errors.

What a real kube-apiserver would accept (structural schemas, known keywords, valid
defaults and printer columns), the names and scopes users type (``kubectl get vm``), DVP's
printer columns, that every example in ``examples/`` validates (schema and CEL rules), and
that invalid manifests are refused with the field path the API server would name.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.api import crds as crd_module
from controlplane.api.crds import crds_by_kind, load_crds, served_schema
from tests.unit.crd_support import (
    apply_defaults,
    cel_violations,
    field_errors,
    printer_column_problems,
    structural_violations,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KINDS = sorted(crds_by_kind())

# kind: plural, singular, shortNames, scope, categories (as DVP publishes them)
NAMES = {
    "ClusterVirtualImage": ("clustervirtualimages", "clustervirtualimage", ["cvi"], "Cluster", ["virtualization-cluster"]),
    "VirtualImage": ("virtualimages", "virtualimage", ["vi"], "Namespaced", ["virtualization"]),
    "VirtualDisk": ("virtualdisks", "virtualdisk", ["vd"], "Namespaced", ["virtualization"]),
    "VirtualMachine": ("virtualmachines", "virtualmachine", ["vm"], "Namespaced", ["all", "virtualization"]),
    "VirtualMachineClass": ("virtualmachineclasses", "virtualmachineclass", ["vmc", "vmclass"], "Cluster",
                            ["virtualization-cluster"]),
    "VirtualMachineIPAddress": ("virtualmachineipaddresses", "virtualmachineipaddress", ["vmip"], "Namespaced",
                                ["virtualization"]),
    "VirtualMachineIPAddressLease": ("virtualmachineipaddressleases", "virtualmachineipaddresslease",
                                     ["vmipl", "vmiplease"], "Cluster", ["virtualization-cluster"]),
    "VirtualMachineMACAddress": ("virtualmachinemacaddresses", "virtualmachinemacaddress", ["vmmac"], "Namespaced",
                                 ["virtualization"]),
    "VirtualMachineMACAddressLease": ("virtualmachinemacaddressleases", "virtualmachinemacaddresslease",
                                      ["vmmacl", "vmmaclease"], "Cluster", ["virtualization-cluster"]),
    "VirtualMachineBlockDeviceAttachment": ("virtualmachineblockdeviceattachments",
                                            "virtualmachineblockdeviceattachment", ["vmbda"], "Namespaced",
                                            ["virtualization"]),
    "VirtualMachineOperation": ("virtualmachineoperations", "virtualmachineoperation", ["vmop"], "Namespaced",
                                ["virtualization"]),
    "VirtualDiskSnapshot": ("virtualdisksnapshots", "virtualdisksnapshot", ["vdsnapshot", "vds"], "Namespaced",
                            ["virtualization"]),
    "VirtualMachineSnapshot": ("virtualmachinesnapshots", "virtualmachinesnapshot", ["vmsnapshot", "vms"],
                               "Namespaced", ["virtualization"]),
    "VirtualMachineSnapshotOperation": ("virtualmachinesnapshotoperations", "virtualmachinesnapshotoperation",
                                        ["vmsop"], "Namespaced", ["virtualization"]),
    "VirtualMachinePool": ("virtualmachinepools", "virtualmachinepool", ["vmpool", "vmpools"], "Namespaced",
                           ["virtualization"]),
    "NodeUSBDevice": ("nodeusbdevices", "nodeusbdevice", ["nusb"], "Cluster", ["virtualization"]),
    "USBDevice": ("usbdevices", "usbdevice", ["usb"], "Namespaced", ["virtualization"]),
}
# The short name the issue asks for, per kind.
ISSUE_SHORT_NAMES = {"VirtualMachine": "vm", "VirtualDisk": "vd", "VirtualImage": "vi",
                     "ClusterVirtualImage": "cvi", "VirtualMachineClass": "vmclass",
                     "VirtualMachineIPAddress": "vmip", "VirtualMachineIPAddressLease": "vmipl",
                     "VirtualMachineBlockDeviceAttachment": "vmbda", "VirtualMachineOperation": "vmop",
                     "VirtualMachineMACAddress": "vmmac", "VirtualMachineMACAddressLease": "vmmacl",
                     "VirtualDiskSnapshot": "vds", "VirtualMachineSnapshot": "vms",
                     "VirtualMachineSnapshotOperation": "vmsop", "VirtualMachinePool": "vmpool",
                     "NodeUSBDevice": "nusb", "USBDevice": "usb"}


COND = ".status.conditions[?(@.type=='{}')].status"
# kind: [(name, type, jsonPath, priority)] in DVP's order
COLUMNS: dict[str, list[tuple[str, str, str, int]]] = {
    "VirtualMachine": [
        ("Phase", "string", ".status.phase", 0), ("Uptime", "date", ".status.stats.lastStartTime", 0),
        ("Cores", "string", ".status.resources.cpu.cores", 1),
        ("CoreFraction", "string", ".status.resources.cpu.coreFraction", 1),
        ("Memory", "string", ".status.resources.memory.size", 1),
        ("Need restart", "string", COND.format("AwaitingRestartToApplyConfiguration"), 1),
        ("Agent", "string", COND.format("AgentReady"), 1), ("Migratable", "string", COND.format("Migratable"), 1),
        ("Node", "string", ".status.nodeName", 0), ("IPAddress", "string", ".status.ipAddress", 0),
        ("BlockDevicesCount", "integer", ".status.blockDevicesCount", 1),
        ("Age", "date", ".metadata.creationTimestamp", 0)],
    "VirtualDisk": [
        ("Phase", "string", ".status.phase", 0), ("Capacity", "string", ".status.capacity", 0),
        ("InUse", "string", COND.format("InUse"), 1),
        ("VirtualMachine", "string", ".status.attachedToVirtualMachines[?(@.mounted==true)].name", 0),
        ("Progress", "string", ".status.progress", 1), ("StorageClass", "string", ".status.storageClassName", 1),
        ("TargetPVC", "string", ".status.target.persistentVolumeClaimName", 1),
        ("Age", "date", ".metadata.creationTimestamp", 0)],
    "VirtualImage": [
        ("Phase", "string", ".status.phase", 0), ("CDROM", "boolean", ".status.cdrom", 0),
        ("Progress", "string", ".status.progress", 0), ("StoredSize", "string", ".status.size.stored", 1),
        ("UnpackedSize", "string", ".status.size.unpacked", 1),
        ("Registry URL", "string", ".status.target.registryURL", 1),
        ("TargetPVC", "string", ".status.target.persistentVolumeClaimName", 1),
        ("Age", "date", ".metadata.creationTimestamp", 0)],
    "ClusterVirtualImage": [
        ("Phase", "string", ".status.phase", 0), ("CDROM", "boolean", ".status.cdrom", 0),
        ("Progress", "string", ".status.progress", 0), ("StoredSize", "string", ".status.size.stored", 1),
        ("UnpackedSize", "string", ".status.size.unpacked", 1),
        ("Registry URL", "string", ".status.target.registryURL", 1),
        ("Age", "date", ".metadata.creationTimestamp", 0)],
    "VirtualMachineClass": [
        ("Phase", "string", ".status.phase", 0),
        ("IsDefault", "string",
         r".metadata.annotations.virtualmachineclass\.virtualization\.deckhouse\.io\/is-default-class", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0)],
    "VirtualMachineIPAddress": [
        ("Address", "string", ".status.address", 0), ("Status", "string", ".status.phase", 0),
        ("VM", "string", ".status.virtualMachineName", 0), ("Age", "date", ".metadata.creationTimestamp", 0)],
    "VirtualMachineIPAddressLease": [
        ("VirtualMachineIPAddress", "string", ".spec.virtualMachineIPAddressRef", 0),
        ("Status", "string", ".status.phase", 0), ("Age", "date", ".metadata.creationTimestamp", 0)],
    "VirtualMachineMACAddress": [
        ("Address", "string", ".status.address", 0), ("Status", "string", ".status.phase", 0),
        ("VM", "string", ".status.virtualMachineName", 0), ("Age", "date", ".metadata.creationTimestamp", 0)],
    "VirtualMachineMACAddressLease": [
        ("VirtualMachineMACAddress", "string", ".spec.virtualMachineMACAddressRef", 0),
        ("Status", "string", ".status.phase", 0), ("Age", "date", ".metadata.creationTimestamp", 0)],
    "VirtualMachineBlockDeviceAttachment": [
        ("PHASE", "string", ".status.phase", 0), ("BLOCKDEVICE KIND", "string", ".spec.blockDeviceRef.kind", 1),
        ("BLOCKDEVICE NAME", "string", ".spec.blockDeviceRef.name", 1),
        ("VIRTUALMACHINE", "string", ".status.virtualMachineName", 0),
        ("AGE", "date", ".metadata.creationTimestamp", 0)],
    "VirtualMachineOperation": [
        ("Phase", "string", ".status.phase", 0), ("Progress", "string", ".status.progress", 0),
        ("Type", "string", ".spec.type", 0), ("VirtualMachine", "string", ".spec.virtualMachineName", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0)],
    "VirtualDiskSnapshot": [
        ("Phase", "string", ".status.phase", 0), ("Consistent", "boolean", ".status.consistent", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0)],
    "VirtualMachineSnapshot": [
        ("Phase", "string", ".status.phase", 0), ("Consistent", "boolean", ".status.consistent", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0)],
    "VirtualMachineSnapshotOperation": [
        ("Phase", "string", ".status.phase", 0), ("Type", "string", ".spec.type", 0),
        ("VirtualMachineSnapshot", "string", ".spec.virtualMachineSnapshotName", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0)],
    "VirtualMachinePool": [
        ("Replicas", "integer", ".status.replicas", 0), ("Ready", "integer", ".status.readyReplicas", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0)],
    "NodeUSBDevice": [
        ("Node", "string", ".status.nodeName", 0), ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', 0),
        ("Assigned", "string", '.status.conditions[?(@.type=="Assigned")].status', 0),
        ("Namespace", "string", ".spec.assignedNamespace", 0), ("Age", "date", ".metadata.creationTimestamp", 0)],
    "USBDevice": [
        ("Node", "string", ".status.nodeName", 0), ("VendorID", "string", ".status.attributes.vendorID", 1),
        ("ProductID", "string", ".status.attributes.productID", 1), ("Bus", "string", ".status.attributes.bus", 1),
        ("DeviceNumber", "string", ".status.attributes.deviceNumber", 1),
        ("Manufacturer", "string", ".status.attributes.manufacturer", 0),
        ("Product", "string", ".status.attributes.product", 0), ("Serial", "string", ".status.attributes.serial", 1),
        ("Attached", "string", '.status.conditions[?(@.type=="Attached")].status', 0),
        ("Age", "date", ".metadata.creationTimestamp", 0)],
}


def schema_of(kind: str) -> dict[str, Any]:
    return served_schema(crds_by_kind()[kind])


def test_load_crds_reads_one_file_per_kind_from_package_data() -> None:
    files = [f.name for f in crd_module.crd_files() if not f.name.startswith("internal-")]
    assert files == sorted(f"{NAMES[k][0]}.yaml" for k in NAMES)
    public = [c for c in load_crds() if c["spec"]["group"] == crd_module.GROUP]
    assert sorted(c["spec"]["names"]["kind"] for c in public) == sorted(NAMES)
    internal = sorted(c["spec"]["names"]["kind"] for c in load_crds() if c["spec"]["group"] == crd_module.INTERNAL_GROUP)
    assert internal == ["InternalVirtualDiskVolume", "InternalVirtualMachineInstance"]


def test_load_crds_returns_independent_trees() -> None:
    # The VM file reuses sub-schemas through YAML anchors; callers must get unshared copies.
    first, second = load_crds(), load_crds()
    vm = next(c for c in first if c["spec"]["names"]["kind"] == "VirtualMachine")
    spec = served_schema(vm)["properties"]["spec"]["properties"]
    affinity = spec["affinity"]["properties"]
    preferred = "preferredDuringSchedulingIgnoredDuringExecution"
    affinity["virtualMachineAndPodAffinity"]["properties"][preferred]["description"] = "changed"
    assert affinity["virtualMachineAndPodAntiAffinity"]["properties"][preferred]["description"] != "changed"
    assert first is not second and first[0] is not second[0]


@pytest.mark.parametrize("kind", KINDS)
def test_crd_is_structural(kind: str) -> None:
    assert structural_violations(schema_of(kind)) == []


def test_structural_checker_catches_violations() -> None:
    bad = {"type": "object", "properties": {
        "spec": {"properties": {"a": {"type": "string", "default": 5}}},
        "x": {"type": "object", "oneOf": [{"type": "object", "properties": {"y": {}}}]},
        "z": {"type": "string", "x-doc-examples": []}}}
    problems = "\n".join(structural_violations(bad))
    assert "<root>.spec: missing or invalid type" in problems
    assert "<root>.spec.a: default is invalid" in problems
    assert "'type' is not allowed inside allOf/anyOf/oneOf/not" in problems
    assert "field 'y' is not declared outside the junctor" in problems
    assert "unknown keyword 'x-doc-examples'" in problems


CRD_FIELDS = {
    "": {"apiVersion", "kind", "metadata", "spec"},
    "metadata": {"name", "labels", "annotations"},
    "spec": {"group", "names", "scope", "versions", "conversion", "preserveUnknownFields"},
    "spec.names": {"plural", "singular", "shortNames", "kind", "listKind", "categories"},
    "spec.versions[]": {"name", "served", "storage", "deprecated", "deprecationWarning", "schema", "subresources",
                        "additionalPrinterColumns", "selectableFields"},
    "spec.versions[].schema": {"openAPIV3Schema"},
    "spec.versions[].subresources": {"status", "scale"},
}


@pytest.mark.parametrize("kind", KINDS)
def test_crd_object_uses_only_apiextensions_v1_fields(kind: str) -> None:
    # kubectl apply with strict field validation refuses unknown fields.
    crd = crds_by_kind()[kind]
    nodes = {"": [crd], "metadata": [crd["metadata"]], "spec": [crd["spec"]], "spec.names": [crd["spec"]["names"]],
             "spec.versions[]": crd["spec"]["versions"],
             "spec.versions[].schema": [v["schema"] for v in crd["spec"]["versions"]],
             "spec.versions[].subresources": [v["subresources"] for v in crd["spec"]["versions"]]}
    for path, objs in nodes.items():
        for obj in objs:
            assert set(obj) <= CRD_FIELDS[path], (path, set(obj) - CRD_FIELDS[path])


@pytest.mark.parametrize("kind", KINDS)
def test_names_scope_and_categories_match_dvp(kind: str) -> None:
    crd = crds_by_kind()[kind]
    names = crd["spec"]["names"]
    plural, singular, short, scope, categories = NAMES[kind]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.virtualization.deckhouse.io"
    assert crd["spec"]["group"] == "virtualization.deckhouse.io"
    assert (names["plural"], names["singular"], names["listKind"]) == (plural, singular, f"{kind}List")
    assert names["shortNames"] == short and ISSUE_SHORT_NAMES[kind] in short
    assert crd["spec"]["scope"] == scope
    assert names["categories"] == categories


@pytest.mark.parametrize("kind", KINDS)
def test_v1alpha2_is_stored_with_status_subresource(kind: str) -> None:
    versions = crds_by_kind()[kind]["spec"]["versions"]
    # DVP serves VirtualMachineClass v1alpha3 too, v1alpha2 being its deprecated storage version
    v3 = [("v1alpha3", True, False)] if kind == "VirtualMachineClass" else []
    assert [(v["name"], v["served"], v["storage"]) for v in versions] == [("v1alpha2", True, True), *v3]
    # DVP's VirtualMachinePool is scaled through the scale subresource too
    scale = {"scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                       "labelSelectorPath": ".status.selector"}} if kind == "VirtualMachinePool" else {}
    assert all(v["subresources"] == {"status": {}, **scale} for v in versions)
    assert versions[0].get("deprecated", False) is (kind == "VirtualMachineClass")


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns_match_dvp(kind: str) -> None:
    crd = crds_by_kind()[kind]
    cols = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["type"], c["jsonPath"], c.get("priority", 0)) for c in cols] == COLUMNS[kind]
    assert printer_column_problems(crd) == []


def example_docs() -> list[Any]:
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            docs.append(pytest.param(doc, id=f"{path.stem}#{i}-{doc['kind']}"))
    return docs


def test_examples_cover_the_quick_start() -> None:
    kinds = {p.values[0]["kind"] for p in example_docs()}
    assert kinds >= {"VirtualMachineClass", "ClusterVirtualImage", "VirtualImage", "VirtualDisk",
                     "VirtualMachine", "VirtualMachineOperation", "VirtualMachineIPAddress",
                     "VirtualMachineBlockDeviceAttachment"}


@pytest.mark.parametrize("doc", example_docs())
def test_example_is_valid(doc: dict[str, Any]) -> None:
    assert doc["apiVersion"] == "virtualization.deckhouse.io/v1alpha2"
    schema = schema_of(doc["kind"])
    defaulted = apply_defaults(schema, doc)
    assert field_errors(schema, doc) == []
    assert field_errors(schema, defaulted) == []
    assert cel_violations(schema, defaulted) == []


VM = {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachine",
      "metadata": {"name": "vm"},
      "spec": {"virtualMachineClassName": "generic", "cpu": {"cores": 1}, "memory": {"size": "1Gi"},
               "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "root"}]}}
VD = {"kind": "VirtualDisk", "metadata": {"name": "d"},
      "spec": {"dataSource": {"type": "HTTP", "http": {"url": "https://example.com/a.img"}}}}
VI = {"kind": "VirtualImage", "spec": {"storage": "ContainerRegistry",
                                       "dataSource": {"type": "HTTP", "http": {"url": "http://x/a.iso"}}}}
CVI = {"kind": "ClusterVirtualImage", "spec": {"dataSource": {
    "type": "ObjectRef", "objectRef": {"kind": "VirtualImage", "name": "a", "namespace": "ns"}}}}
VMCLASS = {"kind": "VirtualMachineClass", "spec": {"cpu": {"type": "Host"},
                                                   "sizingPolicies": [{"cores": {"min": 1, "max": 4}}]}}
VMIP = {"kind": "VirtualMachineIPAddress", "spec": {"type": "Auto"}}
VMIPL = {"kind": "VirtualMachineIPAddressLease", "spec": {"virtualMachineIPAddressRef": {"name": "a", "namespace": "b"}}}
VMMAC = {"kind": "VirtualMachineMACAddress", "spec": {"address": "aa:bb:cc:dd:ee:ff"}}
VMMACL = {"kind": "VirtualMachineMACAddressLease",
          "spec": {"virtualMachineMACAddressRef": {"name": "a", "namespace": "b"}}}
VMBDA = {"kind": "VirtualMachineBlockDeviceAttachment",
         "spec": {"virtualMachineName": "vm", "blockDeviceRef": {"kind": "VirtualDisk", "name": "d"}}}
VMOP = {"kind": "VirtualMachineOperation", "spec": {"type": "Restart", "virtualMachineName": "vm"}}
VDS = {"kind": "VirtualDiskSnapshot", "spec": {"virtualDiskName": "d"}}
VMS = {"kind": "VirtualMachineSnapshot", "spec": {"virtualMachineName": "vm", "keepIPAddress": "Never",
                                                  "requiredConsistency": True}}
VMSOP = {"kind": "VirtualMachineSnapshotOperation",
         "spec": {"type": "CreateVirtualMachine", "virtualMachineSnapshotName": "s",
                  "createVirtualMachine": {"mode": "Strict", "customization": {"nameSuffix": "-copy"}}}}
VMPOOL = {"kind": "VirtualMachinePool", "spec": {
    "replicas": 2, "scaleDownPolicy": "NewestFirst",
    "virtualDiskTemplates": [{"name": "root", "spec": {"persistentVolumeClaim": {"size": "1Gi"}}}],
    "virtualMachineTemplate": {"metadata": {"labels": {"app": "web"}}, "spec": VM["spec"]}}}
NUSB = {"kind": "NodeUSBDevice", "spec": {"assignedNamespace": "team-a"}}
USB = {"kind": "USBDevice"}
BASES = {"VirtualMachinePool": VMPOOL, "NodeUSBDevice": NUSB, "USBDevice": USB, "VirtualMachine": VM, "VirtualDisk": VD,
         "VirtualImage": VI, "ClusterVirtualImage": CVI,
         "VirtualMachineClass": VMCLASS, "VirtualMachineIPAddress": VMIP, "VirtualMachineIPAddressLease": VMIPL,
         "VirtualMachineMACAddress": VMMAC, "VirtualMachineMACAddressLease": VMMACL,
         "VirtualMachineBlockDeviceAttachment": VMBDA, "VirtualMachineOperation": VMOP,
         "VirtualDiskSnapshot": VDS, "VirtualMachineSnapshot": VMS, "VirtualMachineSnapshotOperation": VMSOP}


def with_value(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of obj with the dotted path set (``_DELETE_`` removes it; digits index lists)."""
    out: dict[str, Any] = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    key: Any = int(last) if last.isdigit() else last
    if value == "_DELETE_":
        del node[key]
    else:
        node[key] = value
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_base_samples_are_valid(kind: str) -> None:
    # The invalid cases below each break exactly one thing in these.
    assert field_errors(schema_of(kind), BASES[kind]) == []


INVALID = [
    ("VirtualMachine", "spec.cpu.cores", 0, "spec.cpu.cores", "less than the minimum of 1"),
    ("VirtualMachine", "spec.runPolicy", "Sometimes", "spec.runPolicy", "is not one of"),
    ("VirtualMachine", "spec.memory", "_DELETE_", "spec.memory", "'memory' is a required property"),
    ("VirtualMachine", "spec.memory.size", "lots", "spec.memory.size", "does not match"),
    ("VirtualMachine", "spec.cpu.coreFraction", "150%", "spec.cpu.coreFraction", "does not match"),
    ("VirtualMachine", "spec.blockDeviceRefs", [], "spec.blockDeviceRefs", "should be non-empty"),
    ("VirtualMachine", "spec.blockDeviceRefs.0.kind", "Floppy", "spec.blockDeviceRefs[0].kind", "is not one of"),
    ("VirtualMachine", "spec.virtualMachineClassName", "", "spec.virtualMachineClassName", "should be non-empty"),
    ("VirtualMachine", "spec.osType", "BeOS", "spec.osType", "is not one of"),
    ("VirtualMachine", "spec.provisioning", {"type": "UserData", "userDataRef": {"kind": "Secret", "name": "s"}},
     "spec.provisioning", "is not valid under any of the given schemas"),
    ("VirtualMachine", "status", {"phase": "Flying"}, "status.phase", "is not one of"),
    ("VirtualDisk", "spec.dataSource.type", "FTP", "spec.dataSource.type", "is not one of"),
    ("VirtualDisk", "spec.dataSource.http.url", "ftp://example.com/a.img", "spec.dataSource.http.url",
     "does not match"),
    ("VirtualDisk", "spec.persistentVolumeClaim", {"size": "ten gigs"}, "spec.persistentVolumeClaim.size",
     "does not match"),
    ("VirtualDisk", "spec.dataSource.http.checksum", {"md5": "xyz"}, "spec.dataSource.http.checksum.md5",
     "does not match"),
    ("VirtualImage", "spec.storage", "Floppy", "spec.storage", "is not one of"),
    ("VirtualImage", "spec.dataSource", "_DELETE_", "spec.dataSource", "'dataSource' is a required property"),
    ("ClusterVirtualImage", "spec.dataSource.objectRef.kind", "Pod", "spec.dataSource.objectRef.kind",
     "is not one of"),
    ("ClusterVirtualImage", "spec.dataSource.type", "_DELETE_", "spec.dataSource.type",
     "'type' is a required property"),
    ("VirtualMachineClass", "spec.cpu.type", "Fast", "spec.cpu.type", "is not one of"),
    ("VirtualMachineClass", "spec.sizingPolicies.0.cores.max", 2000, "spec.sizingPolicies[0].cores.max",
     "greater than the maximum of 1024"),
    ("VirtualMachineClass", "spec.sizingPolicies.0.coreFractions", [0], "spec.sizingPolicies[0].coreFractions[0]",
     "less than the minimum of 1"),
    ("VirtualMachineIPAddress", "spec.type", "DHCP", "spec.type", "is not one of"),
    ("VirtualMachineIPAddressLease", "spec.virtualMachineIPAddressRef.namespace", "_DELETE_",
     "spec.virtualMachineIPAddressRef.namespace", "'namespace' is a required property"),
    ("VirtualMachineMACAddress", "spec.address", "aa:bb:cc:dd:ee", "spec.address", "does not match"),
    ("VirtualMachineMACAddress", "status", {"phase": "Released"}, "status.phase", "is not one of"),
    ("VirtualMachineMACAddressLease", "spec.virtualMachineMACAddressRef.name", "_DELETE_",
     "spec.virtualMachineMACAddressRef.name", "'name' is a required property"),
    ("VirtualMachineBlockDeviceAttachment", "spec.blockDeviceRef.kind", "Pod", "spec.blockDeviceRef.kind",
     "is not one of"),
    ("VirtualMachineBlockDeviceAttachment", "spec.virtualMachineName", "", "spec.virtualMachineName",
     "should be non-empty"),
    ("VirtualMachineOperation", "spec.type", "Reboot", "spec.type", "is not one of"),
    ("VirtualMachineOperation", "spec.virtualMachineName", "_DELETE_", "spec.virtualMachineName",
     "'virtualMachineName' is a required property"),
    ("VirtualMachineOperation", "status", {"conditions": []}, "status.phase", "'phase' is a required property"),
    ("VirtualDiskSnapshot", "spec.virtualDiskName", "", "spec.virtualDiskName", "should be non-empty"),
    ("VirtualDiskSnapshot", "status", {"phase": "Done"}, "status.phase", "is not one of"),
    ("VirtualMachineSnapshot", "spec.keepIPAddress", "Sometimes", "spec.keepIPAddress", "is not one of"),
    ("VirtualMachineSnapshotOperation", "spec.createVirtualMachine.mode", "Fast", "spec.createVirtualMachine.mode",
     "is not one of"),
    ("VirtualMachinePool", "spec.replicas", -1, "spec.replicas", "less than the minimum of 0"),
    ("VirtualMachinePool", "spec.scaleDownPolicy", "Random", "spec.scaleDownPolicy", "is not one of"),
    ("VirtualMachinePool", "spec.virtualDiskTemplates", [], "spec.virtualDiskTemplates", "should be non-empty"),
    ("VirtualMachinePool", "spec.virtualMachineTemplate.spec.cpu.cores", 0,
     "spec.virtualMachineTemplate.spec.cpu.cores", "less than the minimum of 1"),
    ("NodeUSBDevice", "spec", "_DELETE_", "spec", "'spec' is a required property"),
    ("NodeUSBDevice", "status", {"attributes": {"speed": "fast"}}, "status.attributes.speed", "is not of type"),
    ("USBDevice", "status", {"attributes": {"major": "189"}}, "status.attributes.major", "is not of type"),
]


@pytest.mark.parametrize(("kind", "path", "value", "field", "message"), INVALID,
                         ids=[f"{k}:{p}={v!r}"[:80] for k, p, v, *_ in INVALID])
def test_invalid_manifest_is_refused_naming_the_field(kind: str, path: str, value: Any, field: str,
                                                      message: str) -> None:
    errors = field_errors(schema_of(kind), with_value(BASES[kind], path, value))
    assert {f for f, _ in errors} == {field}, errors
    assert any(message in m for _, m in errors), errors


@pytest.mark.parametrize(("kind", "path", "default"), [
    ("VirtualMachine", "spec.runPolicy", "AlwaysOnUnlessStoppedManually"),
    ("VirtualMachine", "spec.osType", "Generic"),
    ("VirtualMachine", "spec.bootloader", "BIOS"),
    ("VirtualMachine", "spec.enableParavirtualization", True),
    ("VirtualMachine", "spec.terminationGracePeriodSeconds", 60),
    ("VirtualMachine", "spec.liveMigrationPolicy", "PreferSafe"),
    ("VirtualMachine", "spec.disruptions", {"restartApprovalMode": "Manual"}),
    ("VirtualImage", "spec.storage", "ContainerRegistry"),
])
def test_defaults_match_dvp(kind: str, path: str, default: Any) -> None:
    obj = with_value(BASES[kind], path, "_DELETE_") if path == "spec.storage" else BASES[kind]
    node: Any = apply_defaults(schema_of(kind), obj)
    for part in path.split("."):
        node = node[part]
    assert node == default


def test_default_fills_the_kind_of_a_secret_reference() -> None:
    vm = with_value(VM, "spec.provisioning", {"type": "UserDataRef", "userDataRef": {"name": "init"}})
    defaulted = apply_defaults(schema_of("VirtualMachine"), vm)
    assert defaulted["spec"]["provisioning"]["userDataRef"] == {"name": "init", "kind": "Secret"}
    assert field_errors(schema_of("VirtualMachine"), defaulted) == []
