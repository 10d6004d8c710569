"""DVP's own manifests (tests/fixtures/dvp_docs, each naming its source) through kubectl 1.33.

VirtualMachineClass v1alpha3 next to v1alpha2 (converted both ways by the API server), the
`upload` data source and the six checksum algorithms, and the VMOP fields DVP documents.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.clients.conftest import Kubectl

DOCS = Path(__file__).resolve().parents[2] / "fixtures" / "dvp_docs"
GROUP = "virtualization.deckhouse.io"


def _get(k33: Kubectl, resource: str, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(k33.run("get", resource, *args, "-o", "json").stdout)
    return out


@pytest.fixture(scope="module")
def generic(k33: Kubectl) -> None:
    deadline = time.monotonic() + 60
    while k33.run("get", "vmclass", "generic", check=False).returncode != 0:  # the controllers bootstrap it
        assert time.monotonic() < deadline, "VirtualMachineClass generic never appeared"
        time.sleep(0.5)


def test_v1alpha3_class_reads_back_in_both_versions(k33: Kubectl) -> None:
    k33.run("apply", "-f", str(DOCS / "vmclass-v1alpha3-discovery.yaml"))
    v3 = _get(k33, f"virtualmachineclasses.v1alpha3.{GROUP}", "e2e-discovery")
    v2 = _get(k33, f"virtualmachineclasses.v1alpha2.{GROUP}", "e2e-discovery")
    assert (v3["apiVersion"], v2["apiVersion"]) == (f"{GROUP}/v1alpha3", f"{GROUP}/v1alpha2")
    assert v3["spec"] == v2["spec"] == {"cpu": {"type": "Discovery"}}
    # applying the same file again changes nothing
    assert "unchanged" in k33.run("apply", "-f", str(DOCS / "vmclass-v1alpha3-discovery.yaml")).stdout


@pytest.mark.parametrize(("fixture", "name", "v2_policy", "v3_policy"), [
    ("vmclass-v1alpha2-standard.yaml", "standard",
     {"coreFractions": [5, 10, 20, 50, 100], "defaultCoreFraction": 20},
     {"coreFractions": ["5%", "10%", "20%", "50%", "100%"], "defaultCoreFraction": "20%"}),
    ("vmclass-v1alpha2-auto.yaml", "auto-fraction",
     {"coreFractions": [10, 25, 50, 100], "defaultCoreFraction": "Auto"},
     {"coreFractions": ["10%", "25%", "50%", "100%"], "defaultCoreFraction": "Auto"}),
])
def test_core_fractions_convert_between_versions(k33: Kubectl, fixture: str, name: str, v2_policy: dict[str, Any],
                                                 v3_policy: dict[str, Any]) -> None:
    k33.run("apply", "-f", str(DOCS / fixture))
    v2 = _get(k33, f"virtualmachineclasses.v1alpha2.{GROUP}", name)["spec"]["sizingPolicies"][0]
    v3 = _get(k33, f"virtualmachineclasses.v1alpha3.{GROUP}", name)["spec"]["sizingPolicies"][0]
    assert {k: v2[k] for k in v2_policy} == v2_policy
    assert {k: v3[k] for k in v3_policy} == v3_policy
    # the v1alpha3 view written back as v1alpha3 lands as the same v1alpha2 object
    doc = _get(k33, f"virtualmachineclasses.v1alpha3.{GROUP}", name)
    doc["metadata"].setdefault("labels", {})["round-trip"] = "yes"
    k33.run("replace", "-f", "-", input=json.dumps(doc))
    again = _get(k33, f"virtualmachineclasses.v1alpha2.{GROUP}", name)
    assert again["spec"]["sizingPolicies"][0] == v2 and again["metadata"]["labels"]["round-trip"] == "yes"


def test_v1alpha3_refuses_integer_fractions_naming_the_field(k33: Kubectl) -> None:
    doc = {"apiVersion": f"{GROUP}/v1alpha3", "kind": "VirtualMachineClass", "metadata": {"name": "bad-v3"},
           "spec": {"cpu": {"type": "Host"}, "sizingPolicies": [
               {"cores": {"min": 1, "max": 4}, "coreFractions": ["10%", "150%"], "defaultCoreFraction": "auto"}]}}
    result = k33.run("apply", "-f", "-", input=json.dumps(doc), check=False)
    assert result.returncode != 0
    assert "spec.sizingPolicies[0].coreFractions[1]" in result.stderr
    assert "spec.sizingPolicies[0].defaultCoreFraction" in result.stderr


def test_get_vmclass_in_both_versions_shows_the_generic_class(k33: Kubectl, generic: None) -> None:
    # no node joins this server (--no-agent), so classes stay Pending; the controller handles them
    k33.run("wait", "--for=jsonpath={.status.phase}=Pending", "vmclass/generic", "--timeout=60s")
    for version in ("v1alpha2", "v1alpha3"):
        table = k33.run("get", f"virtualmachineclasses.{version}.{GROUP}").stdout
        assert table.split("\n")[0].split() == ["NAME", "PHASE", "ISDEFAULT", "AGE"]
        assert any(line.split()[:3] == ["generic", "Pending", "true"] for line in table.splitlines()[1:]), table
    assert "generic" in k33.run("get", "vmclass").stdout
    spec = _get(k33, f"virtualmachineclasses.v1alpha3.{GROUP}", "generic")["spec"]
    assert spec["cpu"]["type"]
    fractions = [f for p in spec.get("sizingPolicies") or [] for f in p.get("coreFractions") or []]
    assert all(isinstance(f, str) and f.endswith("%") for f in fractions)


def test_upload_and_every_checksum_algorithm_are_kept(k33: Kubectl) -> None:
    k33.run("create", "namespace", "schemas")
    for fixture in ("vi-upload-checksum.yaml", "vi-http-checksum.yaml"):
        k33.run("apply", "-n", "schemas", "-f", str(DOCS / fixture))
    upload = _get(k33, "vi", "some-image", "-n", "schemas")["spec"]["dataSource"]
    assert upload == yaml.safe_load((DOCS / "vi-upload-checksum.yaml").read_text())["spec"]["dataSource"]
    # the upload ticket is created with the checksum (a refused one would leave it Pending)
    k33.run("wait", "--for=jsonpath={.status.phase}=WaitForUserUpload", "vi/some-image", "-n", "schemas",
            "--timeout=60s")
    http = _get(k33, "vi", "ubuntu-24-04", "-n", "schemas")["spec"]["dataSource"]["http"]["checksum"]
    assert sorted(http) == ["md5", "sha1", "sha256", "sha512", "streebog256", "streebog512"]
    if "streebog256" in hashlib.algorithms_available:  # the server's Python is this one
        return
    # no GOST hash in this Python's OpenSSL: the image fails saying so before any download
    k33.run("wait", "--for=jsonpath={.status.phase}=Failed", "vi/ubuntu-24-04", "-n", "schemas", "--timeout=60s")
    conditions = _get(k33, "vi", "ubuntu-24-04", "-n", "schemas")["status"]["conditions"]
    assert any("checksum streebog256, streebog512 cannot be verified here" in c.get("message", "")
               for c in conditions), conditions
    for kind in ("VirtualDisk", "ClusterVirtualImage"):
        doc: dict[str, Any] = {"apiVersion": f"{GROUP}/v1alpha2", "kind": kind, "metadata": {"name": "up"},
                               "spec": {"dataSource": {"type": "Upload", "upload": {"checksum": {"sha1": "a" * 40}}}}}
        if kind == "VirtualDisk":
            doc["metadata"]["namespace"] = "schemas"
        k33.run("apply", "-f", "-", input=json.dumps(doc))
        res = "vd" if kind == "VirtualDisk" else "cvi"
        got = _get(k33, res, "up", *(["-n", "schemas"] if kind == "VirtualDisk" else []))
        assert got["spec"]["dataSource"]["upload"] == {"checksum": {"sha1": "a" * 40}}


def test_upload_with_another_source_is_refused(k33: Kubectl) -> None:
    doc = {"apiVersion": f"{GROUP}/v1alpha2", "kind": "VirtualImage", "metadata": {"name": "both", "namespace": "schemas"},
           "spec": {"storage": "ContainerRegistry", "dataSource": {
               "type": "Upload", "upload": {}, "http": {"url": "https://example.com/a.img"}}}}
    result = k33.run("apply", "-f", "-", input=json.dumps(doc), check=False)
    assert result.returncode != 0 and "Upload cannot have HTTP, ContainerImage or ObjectRef" in result.stderr


def test_migrate_with_force_is_accepted_and_progress_is_a_column(k33: Kubectl) -> None:
    k33.run("create", "namespace", "project-1")
    name = k33.run("create", "-f", str(DOCS / "vmop-migrate-force.yaml"), "-o", "name").stdout.strip().split("/")[-1]
    op = _get(k33, "vmop", name, "-n", "project-1")
    assert op["spec"]["force"] is True and op["spec"]["type"] == "Migrate"
    # the machine does not exist: the controller fails the operation, the API server did not refuse it
    k33.run("wait", "--for=jsonpath={.status.phase}=Failed", f"vmop/{name}", "-n", "project-1", "--timeout=60s")
    header = k33.run("get", "vmop", "-n", "project-1").stdout.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "PROGRESS", "TYPE", "VIRTUALMACHINE", "AGE"]


def test_status_progress_and_phase_superseded_are_kept(k33: Kubectl) -> None:
    doc = {"apiVersion": f"{GROUP}/v1alpha2", "kind": "VirtualMachineOperation",
           "metadata": {"name": "status-shape", "namespace": "project-1"},
           "spec": {"type": "Evict", "virtualMachineName": "nothing-here"}}
    k33.run("create", "-f", "-", input=json.dumps(doc))
    for phase in ("InProgress", "Superseded"):
        patch = {"status": {"phase": phase, "progress": "33%"}}
        k33.run("patch", "vmop", "status-shape", "-n", "project-1", "--subresource=status", "--type=merge",
                "-p", json.dumps(patch))
        got = _get(k33, "vmop", "status-shape", "-n", "project-1")["status"]
        assert got["progress"] == "33%" and got["phase"] in (phase, "Failed")  # the controller may move it on
    bad = k33.run("patch", "vmop", "status-shape", "-n", "project-1", "--subresource=status", "--type=merge",
                  "-p", json.dumps({"status": {"phase": "Overtaken"}}), check=False)
    assert bad.returncode != 0 and "status.phase" in bad.stderr


def test_server_side_apply_and_watch_in_v1alpha3(k33: Kubectl) -> None:
    doc: dict[str, Any] = {"apiVersion": f"{GROUP}/v1alpha3", "kind": "VirtualMachineClass", "metadata": {"name": "ssa-v3"},
           "spec": {"cpu": {"type": "Host"}, "sizingPolicies": [
               {"cores": {"min": 1, "max": 4}, "coreFractions": ["50%", "100%"], "defaultCoreFraction": "50%"}]}}
    k33.run("apply", "--server-side", "--field-manager=parity", "-f", "-", input=json.dumps(doc))
    watch = k33.popen("get", f"virtualmachineclasses.v1alpha3.{GROUP}", "ssa-v3", "--watch", "-o", "json",
                      "--request-timeout=20s")
    try:
        time.sleep(1)
        doc["spec"]["sizingPolicies"][0]["defaultCoreFraction"] = "100%"
        k33.run("apply", "--server-side", "--field-manager=parity", "-f", "-", input=json.dumps(doc))
        deadline = time.monotonic() + 20
        seen: list[Any] = []
        assert watch.stdout is not None
        decoder = json.JSONDecoder()
        buf = ""
        while time.monotonic() < deadline and not any(
                o["spec"]["sizingPolicies"][0]["defaultCoreFraction"] == "100%" for o in seen):
            line = watch.stdout.readline()
            if not line:
                break
            buf += line
            try:
                obj, end = decoder.raw_decode(buf.strip())
            except ValueError:
                continue
            seen.append(obj)
            buf = ""
        assert seen and all(o["apiVersion"] == f"{GROUP}/v1alpha3" for o in seen)
        assert seen[-1]["spec"]["sizingPolicies"][0]["defaultCoreFraction"] == "100%"
    finally:
        watch.kill()
        watch.wait()
    v2 = _get(k33, f"virtualmachineclasses.v1alpha2.{GROUP}", "ssa-v3")
    assert v2["spec"]["sizingPolicies"][0] == {"cores": {"min": 1, "max": 4}, "coreFractions": [50, 100],
                                               "defaultCoreFraction": 100}
    shown = _get(k33, f"virtualmachineclasses.v1alpha2.{GROUP}", "ssa-v3", "--show-managed-fields")
    managers = {e["manager"]: e for e in shown["metadata"]["managedFields"]}
    assert managers["parity"]["operation"] == "Apply"


def test_explain_shows_each_versions_core_fraction(k33: Kubectl) -> None:
    v3 = k33.run("explain", "vmclass.spec.sizingPolicies.coreFractions", f"--api-version={GROUP}/v1alpha3").stdout
    v2 = k33.run("explain", "vmclass.spec.sizingPolicies.coreFractions", f"--api-version={GROUP}/v1alpha2").stdout
    assert "VERSION:    v1alpha3" in v3 and "[]string" in v3
    assert "VERSION:    v1alpha2" in v2 and "[]integer" in v2


@pytest.mark.parametrize(("klass", "fraction"), [("auto-fraction", "Auto"), ("standard", "20%")])
def test_a_machine_without_core_fraction_gets_the_class_default(k33: Kubectl, klass: str, fraction: str) -> None:
    vm = {"apiVersion": f"{GROUP}/v1alpha2", "kind": "VirtualMachine",
          "metadata": {"name": f"on-{klass}", "namespace": "schemas"},
          "spec": {"virtualMachineClassName": klass, "cpu": {"cores": 1}, "memory": {"size": "1Gi"},
                   "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "up"}]}}
    k33.run("apply", "-f", "-", input=json.dumps(vm))
    assert _get(k33, "vm", f"on-{klass}", "-n", "schemas")["spec"]["cpu"]["coreFraction"] == fraction
