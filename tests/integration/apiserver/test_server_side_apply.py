"""Server-side apply and field validation with real clients against `dvp server`:
kubectl 1.33 `apply --server-side` on DVP kinds and a ConfigMap (conflicts, --force-conflicts,
removal of fields no longer applied, --dry-run=server), kubectl 1.20's client-side apply next
to it, managedFields as kube-apiserver writes them, `--validate=strict|warn`, and bad input
answered with a 4xx Status that changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.services.apiserver import KUBECTL_V33, ApiServerProcess

pytestmark = pytest.mark.integration
VMS = "/apis/virtualization.deckhouse.io/v1alpha2/namespaces/default/virtualmachines"

VM = """
apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualMachine
metadata:
  name: {name}
  namespace: default
{labels}
spec:
  virtualMachineClassName: generic
  runPolicy: {run_policy}
  cpu: {{cores: {cores}}}
  memory: {{size: 1Gi}}
  blockDeviceRefs:
  - {{kind: VirtualDisk, name: {name}-root}}
{extra}
"""


def vm(name: str, *, run_policy: str = "Manual", cores: int = 1, labels: dict[str, str] | None = None,
       extra: str = "") -> str:
    label_text = "  labels: " + json.dumps(labels) if labels else ""
    return VM.format(name=name, run_policy=run_policy, cores=cores, labels=label_text, extra=extra)


def kubectl33(server: ApiServerProcess, *args: str, input: str | None = None,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    assert KUBECTL_V33.exists(), f"{KUBECTL_V33} missing: run `make setup`"
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.home)}
    result = subprocess.run([str(KUBECTL_V33), *args], env=env, capture_output=True, text=True, input=input,
                            timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def get(server: ApiServerProcess, *what: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(kubectl33(server, "get", *what, "-o", "json", "--show-managed-fields").stdout)
    return out


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields") or []}


def user_view(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What a refused or dry-run write must leave alone: spec, labels, generation and what the
    test's managers own (the controllers write status and finalizers meanwhile, moving
    resourceVersion)."""
    meta = obj["metadata"]
    owned = sorted((e["manager"], e["operation"], json.dumps(e.get("fieldsV1"), sort_keys=True))
                    for e in meta.get("managedFields") or []
                    if e.get("subresource") != "status" and not e["manager"].startswith("dvp-"))
    return obj.get("spec"), meta.get("labels"), meta.get("annotations"), meta.get("generation"), owned


def test_apply_server_side_creates_and_owns_what_it_applied(apiserver: ApiServerProcess) -> None:
    out = kubectl33(apiserver, "apply", "--server-side", "-f", "-", input=vm("ssa-1", labels={"app": "web"}))
    assert "virtualmachine.virtualization.deckhouse.io/ssa-1 serverside-applied" in out.stdout
    entry = managers(get(apiserver, "vm", "ssa-1"))[("kubectl", "Apply")]
    assert entry["apiVersion"] == "virtualization.deckhouse.io/v1alpha2" and entry["fieldsType"] == "FieldsV1"
    assert entry["time"].endswith("Z")
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:blockDeviceRefs": {}, "f:cpu": {"f:cores": {}}, "f:memory": {"f:size": {}},
                   "f:runPolicy": {}, "f:virtualMachineClassName": {}},
    }


def test_conflicting_manager_is_refused_then_forces(apiserver: ApiServerProcess) -> None:
    kubectl33(apiserver, "apply", "--server-side", "-f", "-", input=vm("ssa-2"))
    before = user_view(get(apiserver, "vm", "ssa-2"))
    other = vm("ssa-2", run_policy="AlwaysOn")
    bad = kubectl33(apiserver, "apply", "--server-side", "--field-manager=ops", "-f", "-", input=other, check=False)
    assert bad.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.runPolicy' in bad.stderr
    assert user_view(get(apiserver, "vm", "ssa-2")) == before
    kubectl33(apiserver, "apply", "--server-side", "--field-manager=ops", "--force-conflicts", "-f", "-", input=other)
    obj = get(apiserver, "vm", "ssa-2")
    assert obj["spec"]["runPolicy"] == "AlwaysOn"
    owned = managers(obj)
    assert "f:runPolicy" in owned[("ops", "Apply")]["fieldsV1"]["f:spec"]
    assert "f:runPolicy" not in owned[("kubectl", "Apply")]["fieldsV1"]["f:spec"]


def test_field_no_longer_applied_is_removed_unless_another_manager_owns_it(apiserver: ApiServerProcess) -> None:
    kubectl33(apiserver, "apply", "--server-side", "-f", "-", input=vm("ssa-3", labels={"app": "web", "tier": "1"}))
    kubectl33(apiserver, "label", "vm", "ssa-3", "team=infra")
    kubectl33(apiserver, "apply", "--server-side", "-f", "-", input=vm("ssa-3", labels={"tier": "1"}))
    obj = get(apiserver, "vm", "ssa-3")
    assert obj["metadata"]["labels"] == {"tier": "1", "team": "infra"}
    assert managers(obj)[("kubectl-label", "Update")]["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:team": {}}}}


def test_dry_run_server_changes_nothing(apiserver: ApiServerProcess) -> None:
    kubectl33(apiserver, "apply", "--server-side", "-f", "-", input=vm("ssa-4"))
    before = get(apiserver, "vm", "ssa-4")
    out = kubectl33(apiserver, "apply", "--server-side", "--dry-run=server", "-o", "json", "-f", "-",
                    input=vm("ssa-4", cores=2))
    assert json.loads(out.stdout)["spec"]["cpu"]["cores"] == 2
    after = get(apiserver, "vm", "ssa-4")
    assert after["spec"]["cpu"]["cores"] == 1
    assert user_view(after) == user_view(before)


def test_virtual_disk_and_configmap_with_both_kubectls(apiserver: ApiServerProcess) -> None:
    disk = """
apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualDisk
metadata: {name: ssa-disk, namespace: default}
spec:
  persistentVolumeClaim: {size: 1Gi}
"""
    kubectl33(apiserver, "apply", "--server-side", "-f", "-", input=disk)
    assert ("kubectl", "Apply") in managers(get(apiserver, "vd", "ssa-disk"))
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa-cm, namespace: default}\ndata: {a: '1', b: '2'}\n"
    kubectl33(apiserver, "apply", "--server-side", "-f", "-", input=cm)
    # kubectl 1.20's client-side apply on the same object: GET + patch, recorded as its own manager
    apiserver.kubectl("apply", "-f", "-", input=cm.replace("'2'", "'3'"))
    obj = get(apiserver, "cm", "ssa-cm")
    assert obj["data"] == {"a": "1", "b": "3"}
    owned = managers(obj)
    assert owned[("kubectl", "Apply")]["fieldsV1"] == {"f:data": {"f:a": {}}}
    assert owned[("kubectl-client-side-apply", "Update")]["fieldsV1"] == {
        "f:data": {"f:b": {}},
        "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}}
    fresh = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: csa-cm, namespace: default}\ndata: {a: '1'}\n"
    apiserver.kubectl("apply", "-f", "-", input=fresh)
    assert managers(get(apiserver, "cm", "csa-cm"))[("kubectl-client-side-apply", "Update")]["fieldsV1"][
        "f:data"] == {".": {}, "f:a": {}}


def test_validate_strict_refuses_and_warn_warns(apiserver: ApiServerProcess) -> None:
    extra = "  favouriteColour: blue"
    strict = kubectl33(apiserver, "create", "--validate=strict", "-f", "-", input=vm("fv-1", extra=extra),
                       check=False)
    assert strict.returncode != 0 and 'unknown field "' in strict.stderr and "favouriteColour" in strict.stderr
    assert kubectl33(apiserver, "get", "vm", "fv-1", check=False).returncode != 0
    warn = kubectl33(apiserver, "create", "--validate=warn", "-f", "-", input=vm("fv-2", extra=extra))
    assert 'Warning: unknown field "spec.favouriteColour"' in warn.stderr
    assert "favouriteColour" not in get(apiserver, "vm", "fv-2")["spec"]
    # kubectl 1.20 sends no fieldValidation: the server's default is Warn, as kube-apiserver's
    old = apiserver.kubectl("create", "--validate=false", "-f", "-", input=vm("fv-3", extra=extra))
    assert 'Warning: unknown field "spec.favouriteColour"' in old.stderr


def test_strict_from_the_server_names_unknown_and_duplicate_fields(apiserver: ApiServerProcess, tmp_path: Any) -> None:
    body = tmp_path / "vm.json"
    body.write_text('{"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachine", '
                    '"metadata": {"name": "fv-4"}, "spec": {"virtualMachineClassName": "generic", '
                    '"runPolicy": "Manual", "runPolicy": "AlwaysOn", "cpu": {"cores": 1, "sockets": 1}, '
                    '"memory": {"size": "1Gi"}, "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "x"}]}}')
    out = kubectl33(apiserver, "create", "--raw", f"{VMS}?fieldValidation=Strict", "-f", str(body), check=False)
    assert out.returncode != 0
    assert ('VirtualMachine in version "v1alpha2" cannot be handled as a VirtualMachine: strict decoding error: '
            'duplicate field "spec.runPolicy", unknown field "spec.cpu.sockets"') in out.stderr
    bogus = kubectl33(apiserver, "create", "--raw", f"{VMS}?fieldValidation=Bogus", "-f", str(body), check=False)
    assert 'fieldValidation: Unsupported value: "Bogus"' in bogus.stderr
    assert kubectl33(apiserver, "get", "vm", "fv-4", check=False).returncode != 0


@pytest.mark.parametrize(("query", "ctype", "body", "code", "says"), [
    ("?fieldManager=m", "application/apply-patch+yaml", b"spec: [unclosed", 400, "could not be decoded"),
    ("?fieldManager=m", "application/apply-patch+yaml", b"- just\n- a list\n", 400, "must be a YAML or JSON object"),
    ("", "application/apply-patch+yaml", None, 422, "fieldManager: Required value: is required for apply patch"),
    ("?fieldManager=" + "m" * 129, "application/apply-patch+yaml", None, 422, "fieldManager: Too long"),
    ("?fieldManager=m&force=true", "application/merge-patch+json", b'{"spec": {}}', 422,
     "force: Forbidden: may not be specified for non-apply patch"),
    ("?fieldManager=m", "application/apply-patch+yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad-1}\n",
     400, "does not match the expected API version"),
], ids=["not-yaml", "not-object", "no-manager", "long-manager", "force-on-merge-patch", "wrong-kind"])
def test_bad_apply_input_is_4xx_and_changes_nothing(apiserver: ApiServerProcess, query: str, ctype: str,
                                                     body: bytes | None, code: int, says: str) -> None:
    kubectl33(apiserver, "apply", "--server-side", "-f", "-", input=vm("bad-1"))
    before = user_view(get(apiserver, "vm", "bad-1"))
    payload = body if body is not None else vm("bad-1", cores=3).encode()
    status, raw = apiserver.raw("PATCH", f"{VMS}/bad-1{query}", payload, headers={"Content-Type": ctype})
    answer = json.loads(raw)
    assert status == code and answer["kind"] == "Status" and answer["code"] == code, answer
    assert says in answer["message"]
    assert user_view(get(apiserver, "vm", "bad-1")) == before


def test_conflict_status_has_kube_causes(apiserver: ApiServerProcess) -> None:
    kubectl33(apiserver, "apply", "--server-side", "-f", "-", input=vm("ssa-5"))
    status, raw = apiserver.raw("PATCH", f"{VMS}/ssa-5?fieldManager=ops", vm("ssa-5", cores=4).encode(),
                                headers={"Content-Type": "application/apply-patch+yaml"})
    answer = json.loads(raw)
    assert status == 409 and answer["reason"] == "Conflict"
    assert answer["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl"', "field": ".spec.cpu.cores"}]


def test_managed_fields_can_be_cleared(apiserver: ApiServerProcess) -> None:
    kubectl33(apiserver, "apply", "--server-side", "-f", "-", input=vm("ssa-6"))
    kubectl33(apiserver, "patch", "vm", "ssa-6", "--type=merge", "-p", '{"metadata": {"managedFields": [{}]}}')
    # the VM controller may write again at once and own its own fields afresh; kubectl's entry is gone
    assert ("kubectl", "Apply") not in managers(get(apiserver, "vm", "ssa-6"))


def test_client_side_applied_object_moves_to_server_side_apply(apiserver: ApiServerProcess) -> None:
    """kubectl 1.20 applies client-side; kubectl 1.33's `apply --server-side` then takes the
    object over (it rewrites the client-side manager's entry with a JSON patch) and can remove
    what the old manifest had."""
    apiserver.kubectl("apply", "-f", "-", input=vm("csa-1", labels={"app": "web", "old": "x"}))
    kubectl33(apiserver, "apply", "--server-side", "-f", "-", input=vm("csa-1", labels={"app": "web", "old": "x"}))
    kubectl33(apiserver, "apply", "--server-side", "-f", "-", input=vm("csa-1", labels={"app": "web"}))
    obj = get(apiserver, "vm", "csa-1")
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert ("kubectl", "Apply") in managers(obj)
