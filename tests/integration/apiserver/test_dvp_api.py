"""DVP's own manifests (examples/, written as DVP's user guide writes them) through real
kubectl: they apply unchanged, `kubectl get vm,vd,vi` shows DVP's columns, and invalid
VirtualMachines are refused with 422 naming the field while nothing stored changes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture(scope="module")
def applied(apiserver: ApiServerProcess) -> ApiServerProcess:
    # as on a running platform: the controllers have bootstrapped the default `generic` class,
    # which examples/01 then updates (applied first, it would be created without the default mark)
    apiserver.wait_ready()
    deadline = time.monotonic() + 60
    while apiserver.kubectl("get", "vmclass", "generic", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the controllers never created the generic class"
        time.sleep(0.2)
    for f in sorted(EXAMPLES.glob("*.yaml")):
        apiserver.kubectl("apply", "-f", str(f))
    return apiserver


def header(out: str) -> list[str]:
    return [c.strip() for c in out.splitlines()[0].split("  ") if c.strip()]


@pytest.mark.parametrize(
    ("resource", "columns"),
    [
        ("vm", ["NAME", "PHASE", "UPTIME", "NODE", "IPADDRESS", "AGE"]),
        ("vd", ["NAME", "PHASE", "CAPACITY", "VIRTUALMACHINE", "AGE"]),
        ("vi", ["NAME", "PHASE", "CDROM", "PROGRESS", "AGE"]),
        ("cvi", ["NAME", "PHASE", "CDROM", "PROGRESS", "AGE"]),
        ("vmclass", ["NAME", "PHASE", "ISDEFAULT", "AGE"]),
        ("vmop", ["NAME", "PHASE", "PROGRESS", "TYPE", "VIRTUALMACHINE", "AGE"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_get_shows_dvp_columns(applied: ApiServerProcess, resource: str, columns: list[str]) -> None:
    assert header(applied.kubectl("get", resource).stdout) == columns


def test_get_several_kinds_at_once_and_wide(applied: ApiServerProcess) -> None:
    out = applied.kubectl("get", "vm,vd,vi").stdout
    assert "virtualmachine.virtualization.deckhouse.io/linux-vm" in out
    assert "virtualdisk.virtualization.deckhouse.io/linux-disk" in out
    assert "virtualimage.virtualization.deckhouse.io/ubuntu" in out
    wide = header(applied.kubectl("get", "vm", "-o", "wide").stdout)
    assert "CORES" in wide and "COREFRACTION" in wide and "MEMORY" in wide


def test_explain_vm_fields(applied: ApiServerProcess) -> None:
    out = applied.kubectl("explain", "virtualmachine.spec.cpu").stdout
    assert "cores" in out and "coreFraction" in out


@pytest.mark.parametrize(
    ("patch", "field", "text"),
    [
        ({"spec": {"cpu": {"cores": 0}}}, "spec.cpu.cores", "Invalid value: 0"),
        ({"spec": {"runPolicy": "Sometimes"}}, "spec.runPolicy", 'Unsupported value: "Sometimes"'),
    ],
    ids=["cores-0", "unknown-runPolicy"],
)
def test_invalid_vm_is_refused_and_nothing_changes(applied: ApiServerProcess, patch: dict, field: str,
                                                   text: str) -> None:
    def user_view() -> tuple[object, ...]:  # what the refused patch must leave alone (status moves on its own)
        vm = json.loads(applied.kubectl("get", "vm", "linux-vm", "-o", "json").stdout)
        meta = vm["metadata"]
        return vm["spec"], meta.get("labels"), meta.get("annotations"), meta["generation"]

    before = user_view()
    out = applied.kubectl("patch", "vm", "linux-vm", "--type=merge", "-p", json.dumps(patch), check=False)
    assert out.returncode != 0
    assert f"{field}: {text}" in out.stderr
    assert user_view() == before
    status, body = applied.raw("PATCH", "/apis/virtualization.deckhouse.io/v1alpha2/namespaces/default/"
                                        "virtualmachines/linux-vm", json.dumps(patch).encode(),
                               headers={"Content-Type": "application/merge-patch+json"})
    assert status == 422
    causes = json.loads(body)["details"]["causes"]
    # an enum broken keeps the VM's CEL rules from running, and kube says so in a fieldless cause
    blocking = text.startswith("Unsupported value")
    assert [c["field"] for c in causes] == [field, "<nil>"] if blocking else [field]


def test_invalid_new_vm_is_not_stored(applied: ApiServerProcess) -> None:
    vm = json.loads(applied.kubectl("get", "vm", "linux-vm", "-o", "json").stdout)
    vm["metadata"] = {"name": "broken-vm", "namespace": "default"}
    vm["spec"]["cpu"]["cores"] = 0
    vm.pop("status", None)
    out = applied.kubectl("create", "--validate=false", "-f", "-", input=json.dumps(vm), check=False)
    assert out.returncode != 0 and "spec.cpu.cores" in out.stderr
    assert applied.kubectl("get", "vm", "broken-vm", check=False).returncode != 0
