"""Every kubectl verb a DVP user types, with today's kubectl (1.33) and the oldest supported one
(Debian's 1.20), against one `dvp server`: explain (OpenAPI v3 and v2), auth whoami / can-i,
cluster-info, api-resources, diff and --dry-run=server, wait for a condition / jsonpath /
deletion, get -w, events, describe, label, annotate, patch of each type, delete with each
cascade. Built-in kinds go in through kubectl 1.20 (kubectl 1.33 sends them as protobuf)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.integration.clients.conftest import Kubectl
from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration
NS = "conformance"
EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.yaml"))

VM = """
apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualMachine
metadata:
  name: {name}
  namespace: conformance
  labels: {{app: conformance}}
spec:
  virtualMachineClassName: generic
  cpu: {{cores: 1, coreFraction: 10%}}
  memory: {{size: {memory}}}
  blockDeviceRefs: [{{kind: VirtualDisk, name: {name}-disk}}]
"""


def vm(name: str, memory: str = "1Gi") -> str:
    return VM.format(name=name, memory=memory)


@pytest.fixture(scope="module")
def ns(k20: Kubectl, k33: Kubectl) -> str:
    k20.run("apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NS}}}\n")
    deadline = time.monotonic() + 60
    while k33.run("get", "vmclass", "generic", check=False).returncode != 0:  # the controllers bootstrap it
        assert time.monotonic() < deadline, "VirtualMachineClass generic never appeared"
        time.sleep(0.5)
    return NS


@pytest.mark.parametrize("which", ["k20", "k33"])
def test_api_resources_lists_dvp_and_builtin_kinds(which: str, request: pytest.FixtureRequest) -> None:
    kubectl: Kubectl = request.getfixturevalue(which)
    out = kubectl.run("api-resources").stdout
    for name in ("virtualmachines", "virtualmachineclasses", "services", "endpoints", "configmaps",
                 "selfsubjectaccessreviews", "endpointslices"):
        assert name in out, f"{name} missing from api-resources:\n{out}"


@pytest.mark.parametrize("which", ["k20", "k33"])
def test_explain_reads_the_schema(which: str, request: pytest.FixtureRequest) -> None:
    kubectl: Kubectl = request.getfixturevalue(which)
    out = kubectl.run("explain", "vm.spec.cpu", "-v6").stdout + kubectl.run("explain", "vm.spec.cpu").stdout
    assert "cores" in out and "coreFraction" in out and "VirtualMachine" in out
    assert "ports" in kubectl.run("explain", "service.spec").stdout


def test_explain_of_kubectl_133_uses_openapi_v3(k33: Kubectl) -> None:
    log = k33.run("explain", "virtualmachine.spec.memory", "-v6").stderr
    assert "/openapi/v3/apis/virtualization.deckhouse.io/v1alpha2?hash=" in log, log
    assert "/openapi/v2" not in log


def test_openapi_v3_hash_etag_and_redirect(server: ApiServerProcess) -> None:
    code, body = server.raw("GET", "/openapi/v3")
    url = json.loads(body)["paths"]["apis/virtualization.deckhouse.io/v1alpha2"]["serverRelativeURL"]
    code, doc = server.raw("GET", url)
    assert code == 200
    parsed = json.loads(doc)
    assert parsed["openapi"].startswith("3.")
    assert "io.deckhouse.virtualization.v1alpha2.VirtualMachine" in parsed["components"]["schemas"]
    digest = url.split("hash=")[1]
    assert server.raw("GET", url, headers={"If-None-Match": f'"{digest}"'})[0] == 304
    assert server.raw("GET", "/openapi/v3/apis/virtualization.deckhouse.io/v1alpha2?hash=OLD")[0] == 200  # followed
    assert server.raw("GET", "/openapi/v3/apis/nothing.example/v1")[0] == 404


def test_auth_whoami_and_can_i(k20: Kubectl, k33: Kubectl) -> None:
    who = json.loads(k33.run("auth", "whoami", "-o", "json").stdout)
    assert who["kind"] == "SelfSubjectReview" and who["status"]["userInfo"]["username"] == "admin"
    assert "system:masters" in who["status"]["userInfo"]["groups"]
    for kubectl in (k20, k33):
        assert kubectl.run("auth", "can-i", "create", "virtualmachines", "-n", "default").stdout.strip() == "yes"
        assert kubectl.run("auth", "can-i", "get", "/healthz").stdout.strip() == "yes"
        listing = kubectl.run("auth", "can-i", "--list", "-n", "default").stdout
        assert "*.*" in listing and "[*]" in listing


def test_subject_access_review_says_why(server: ApiServerProcess) -> None:
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "someone", "resourceAttributes": {"verb": "delete", "resource": "virtualmachines"}}}
    code, out = server.raw("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json.dumps(body).encode(),
                           headers={"Content-Type": "application/json"})
    assert code == 201
    assert json.loads(out)["status"]["allowed"] is False  # no binding grants "someone" anything
    body["spec"]["groups"] = ["system:masters"]
    code, out = server.raw("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json.dumps(body).encode(),
                           headers={"Content-Type": "application/json"})
    status = json.loads(out)["status"]
    assert code == 201 and status["allowed"] is True and "system:masters" in status["reason"]
    bad = {"kind": "SubjectAccessReview", "spec": {"resourceAttributes": {"verb": "get"}}}
    code, out = server.raw("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json.dumps(bad).encode(),
                           headers={"Content-Type": "application/json"})
    assert code == 422 and "spec.user" in json.loads(out)["message"]


@pytest.mark.parametrize("which", ["k20", "k33"])
def test_cluster_info_and_the_kubernetes_service(which: str, request: pytest.FixtureRequest,
                                                 server: ApiServerProcess) -> None:
    kubectl: Kubectl = request.getfixturevalue(which)
    out = kubectl.run("cluster-info").stdout
    assert "is running at" in out and f"https://127.0.0.1:{server.port}" in out
    svc = json.loads(kubectl.run("get", "service", "kubernetes", "-n", "default", "-o", "json").stdout)
    assert svc["spec"]["ports"][0]["port"] == 443 and svc["spec"]["ports"][0]["targetPort"] == server.port
    ep = kubectl.run("get", "endpoints", "kubernetes", "-n", "default").stdout
    assert f"127.0.0.1:{server.port}" in ep


@pytest.mark.parametrize("which", ["k20", "k33"])
def test_dry_run_server_and_diff(which: str, request: pytest.FixtureRequest, ns: str) -> None:
    kubectl: Kubectl = request.getfixturevalue(which)
    name = f"diff-{which}"
    dry = kubectl.run("apply", "--dry-run=server", "-f", "-", input=vm(name)).stdout
    assert "(server dry run)" in dry
    assert kubectl.run("get", "vm", name, "-n", ns, check=False).returncode != 0  # nothing stored
    kubectl.run("apply", "-f", "-", input=vm(name))
    same = kubectl.run("diff", "-f", "-", input=vm(name), check=False)
    assert same.returncode == 0, same.stderr
    changed = kubectl.run("diff", "-f", "-", input=vm(name, "2Gi"), check=False)
    assert changed.returncode == 1, changed.stderr
    assert "+    size: 2Gi" in changed.stdout and "-    size: 1Gi" in changed.stdout
    got = json.loads(kubectl.run("get", "vm", name, "-n", ns, "-o", "json").stdout)
    assert got["spec"]["memory"]["size"] == "1Gi"  # diff changed nothing


def test_wait_for_condition_jsonpath_and_delete(k33: Kubectl, ns: str) -> None:
    k33.run("apply", "-f", "-", input=vm("waiter"))
    k33.run("wait", "--for=condition=VirtualMachineClassReady", "vm/waiter", "-n", ns, "--timeout=60s")
    k33.run("wait", "--for=jsonpath={.status.phase}=Pending", "vm/waiter", "-n", ns, "--timeout=60s")
    k33.run("delete", "vm", "waiter", "-n", ns, "--wait=false")
    k33.run("wait", "--for=delete", "vm/waiter", "-n", ns, "--timeout=60s")
    assert k33.run("get", "vm", "waiter", "-n", ns, check=False).returncode != 0


@pytest.mark.parametrize("which", ["k20", "k33"])
def test_get_watch_sees_changes(which: str, request: pytest.FixtureRequest, ns: str) -> None:
    kubectl: Kubectl = request.getfixturevalue(which)
    name = f"watched-{which}"
    kubectl.run("apply", "-f", "-", input=vm(name))
    proc = kubectl.popen("get", "vm", name, "-n", ns, "-w", "-o", "jsonpath={.metadata.labels.step}{\"\\n\"}")
    try:
        time.sleep(2)
        kubectl.run("label", "vm", name, "-n", ns, "step=one")
        kubectl.run("label", "vm", name, "-n", ns, "step=two", "--overwrite")
        seen: list[str] = []
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while "two" not in seen and time.monotonic() < deadline:
            seen.append(proc.stdout.readline().strip())
        assert "one" in seen and "two" in seen, seen
    finally:
        proc.kill()
        proc.wait()


def test_events_and_describe(k20: Kubectl, k33: Kubectl, ns: str) -> None:
    k33.run("apply", "-f", "-", input=vm("described"))
    uid = k33.run("get", "vm", "described", "-n", ns, "-o", "jsonpath={.metadata.uid}").stdout
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "described.1", "namespace": ns},
             "involvedObject": {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachine",
                                "name": "described", "namespace": ns, "uid": uid},
             "reason": "ConformanceCheck", "message": "checked by the conformance suite", "type": "Normal",
             "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z", "count": 1,
             "source": {"component": "conformance"}}
    k20.run("apply", "-f", "-", input=json.dumps(event))
    assert "ConformanceCheck" in k33.run("events", "-n", ns).stdout
    assert "ConformanceCheck" in k33.run("events", "-n", ns, "--for", "vm/described").stdout
    described = k33.run("describe", "vm", "described", "-n", ns).stdout
    assert "Virtual Machine Class Name:" in described and "ConformanceCheck" in described
    assert "ConformanceCheck" in k20.run("describe", "vm", "described", "-n", ns).stdout


def test_label_annotate_and_every_patch_type(k20: Kubectl, k33: Kubectl, ns: str) -> None:
    k33.run("apply", "-f", "-", input=vm("patched"))
    k33.run("label", "vm", "patched", "-n", ns, "tier=gold")
    k33.run("annotate", "vm", "patched", "-n", ns, "note=hello")
    k33.run("patch", "vm", "patched", "-n", ns, "--type=merge", "-p", '{"spec":{"memory":{"size":"2Gi"}}}')
    k33.run("patch", "vm", "patched", "-n", ns, "--type=json",
            "-p", '[{"op":"test","path":"/spec/memory/size","value":"2Gi"},'
                  '{"op":"replace","path":"/spec/cpu/cores","value":2}]')
    failed = k33.run("patch", "vm", "patched", "-n", ns, "--type=json",
                     "-p", '[{"op":"test","path":"/spec/memory/size","value":"9Gi"}]', check=False)
    assert failed.returncode != 0 and "test" in failed.stderr.lower()
    refused = k33.run("patch", "vm", "patched", "-n", ns, "-p", '{"spec":{"memory":{"size":"3Gi"}}}', check=False)
    assert refused.returncode != 0 and "strategic-merge-patch+json is not supported" in refused.stderr  # not for CRs
    got = json.loads(k33.run("get", "vm", "patched", "-n", ns, "-o", "json").stdout)
    assert got["metadata"]["labels"]["tier"] == "gold" and got["metadata"]["annotations"]["note"] == "hello"
    assert got["spec"]["memory"]["size"] == "2Gi" and got["spec"]["cpu"]["cores"] == 2
    k20.run("apply", "-f", "-", input=f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: smp, namespace: {ns}}}\n"
                                       "data: {a: '1'}\n")
    for kubectl, key in ((k20, "b"), (k33, "c")):
        kubectl.run("patch", "configmap", "smp", "-n", ns, "-p", json.dumps({"data": {key: "2"}}))
        kubectl.run("label", "configmap", "smp", "-n", ns, f"by-{key}=yes")
    cm = json.loads(k33.run("get", "configmap", "smp", "-n", ns, "-o", "json").stdout)
    assert cm["data"] == {"a": "1", "b": "2", "c": "2"} and cm["metadata"]["labels"] == {"by-b": "yes", "by-c": "yes"}


def _owned_configmap(k20: Kubectl, ns: str, name: str, owner: str, uid: str) -> None:
    child = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": name, "namespace": ns, "ownerReferences": [{
            "apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachine", "name": owner,
            "uid": uid}]}, "data": {"k": "v"}}
    k20.run("apply", "-f", "-", input=json.dumps(child))


@pytest.mark.parametrize("cascade", ["background", "foreground", "orphan"])
def test_delete_with_each_cascade(cascade: str, k20: Kubectl, k33: Kubectl, ns: str) -> None:
    owner = f"owner-{cascade}"
    k33.run("apply", "-f", "-", input=vm(owner))
    uid = k33.run("get", "vm", owner, "-n", ns, "-o", "jsonpath={.metadata.uid}").stdout
    _owned_configmap(k20, ns, f"child-{cascade}", owner, uid)
    k33.run("delete", "vm", owner, "-n", ns, f"--cascade={cascade}", "--timeout=60s")
    assert k33.run("get", "vm", owner, "-n", ns, check=False).returncode != 0
    deadline = time.monotonic() + 30
    while True:
        got = k33.run("get", "configmap", f"child-{cascade}", "-n", ns, "-o", "json", check=False)
        if cascade == "orphan":
            assert got.returncode == 0, got.stderr
            refs = json.loads(got.stdout)["metadata"].get("ownerReferences") or []
            if not refs:
                break
        elif got.returncode != 0:
            break
        assert time.monotonic() < deadline, f"child after --cascade={cascade}: {got.stdout or got.stderr}"
        time.sleep(0.5)


def test_vm_without_class_gets_the_default(k33: Kubectl, ns: str) -> None:
    manifest = vm("classless").replace("  virtualMachineClassName: generic\n", "").replace(", coreFraction: 10%", "")
    # The CRD (like DVP's) requires the field, so kubectl's own schema check refuses it until the
    # server takes `fieldValidation` and kubectl leaves validation to it; the server defaults it.
    k33.run("apply", "--validate=false", "-f", "-", input=manifest)
    got = json.loads(k33.run("get", "vm", "classless", "-n", ns, "-o", "json").stdout)
    assert got["spec"]["virtualMachineClassName"] == "generic"
    assert got["spec"]["cpu"]["coreFraction"] == "100%"  # generic's policy for 1 core has no defaultCoreFraction


def test_health_endpoints_list_each_check(k33: Kubectl) -> None:
    verbose = k33.run("get", "--raw", "/readyz?verbose").stdout.splitlines()
    assert verbose[0] == "[+]ping ok" and "[+]etcd ok" in verbose and verbose[-1] == "readyz check passed"
    assert k33.run("get", "--raw", "/livez?verbose").stdout.splitlines()[-1] == "livez check passed"
    assert k33.run("get", "--raw", "/readyz/etcd").stdout == "ok"
    assert k33.run("get", "--raw", "/livez/ping").stdout == "ok"
    assert k33.run("get", "--raw", "/readyz/no-such-check", check=False).returncode != 0


def test_reads_pinned_to_a_revision_and_limits(k33: Kubectl, server: ApiServerProcess, ns: str) -> None:
    k33.run("apply", "-f", "-", input=vm("pinned-2"))
    k33.run("apply", "-f", "-", input=vm("pinned"))
    before = json.loads(k33.run("get", "vm", "pinned", "-n", ns, "-o", "json").stdout)
    rv = before["metadata"]["resourceVersion"]
    k33.run("label", "vm", "pinned", "-n", ns, "later=yes")
    base = f"/apis/virtualization.deckhouse.io/v1alpha2/namespaces/{ns}/virtualmachines"
    exact = json.loads(k33.run("get", "--raw", f"{base}/pinned?resourceVersion={rv}&resourceVersionMatch=Exact").stdout)
    assert exact["metadata"]["resourceVersion"] == rv and "later" not in (exact["metadata"].get("labels") or {})
    listed = json.loads(k33.run("get", "--raw", f"{base}?resourceVersion={rv}&resourceVersionMatch=Exact").stdout)
    assert listed["metadata"]["resourceVersion"] == rv
    assert "pinned" in [i["metadata"]["name"] for i in listed["items"]]
    unlimited = json.loads(k33.run("get", "--raw", f"{base}?limit=-1").stdout)
    assert len(unlimited["items"]) >= 2 and "continue" not in unlimited["metadata"]
    bad = k33.run("get", "--raw", f"{base}?limit=lots", check=False)
    assert bad.returncode != 0 and "limit" in bad.stderr
    code, body = server.raw("GET", f"{base}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                                   "&allowWatchBookmarks=true&timeoutSeconds=1")
    events = [json.loads(line) for line in body.splitlines()]
    marks = [e for e in events if e["type"] == "BOOKMARK"
             and (e["object"]["metadata"].get("annotations") or {}).get("k8s.io/initial-events-end") == "true"]
    assert code == 200 and len(marks) == 1
    assert events.index(marks[0]) == len([e for e in events if e["type"] == "ADDED"])  # after every initial object


@pytest.mark.parametrize("which", ["k20", "k33"])
def test_unknown_field_is_refused_not_dropped(which: str, request: pytest.FixtureRequest, ns: str) -> None:
    """kubectl validates by the published schema unless the server lists `fieldValidation`; either
    way a misspelt field is refused, never silently pruned."""
    kubectl: Kubectl = request.getfixturevalue(which)
    name = f"misspelt-{which}"
    out = kubectl.run("apply", "-f", "-", input=vm(name).replace("cores: 1,", "cores: 1, bogus: 1,"), check=False)
    assert out.returncode != 0 and "bogus" in out.stderr, out.stdout + out.stderr
    assert kubectl.run("get", "vm", name, "-n", ns, check=False).returncode != 0


@pytest.mark.parametrize(("path", "method", "body", "code"), [
    ("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "POST", b"{not json", 400),
    ("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "POST", b'{"kind":"Pod"}', 400),
    ("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "POST", b'{"spec":[]}', 422),
    ("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "POST", b'{"spec":{}}', 422),
    ("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "GET", None, 405),
    ("/apis/authentication.k8s.io/v1/selfsubjectreviews", "POST", b"k8s\x00\x0a\xff", 400),
    ("/apis/authorization.k8s.io/v1/nosuchreviews", "POST", b"{}", 404),
], ids=["malformed-json", "wrong-kind", "spec-not-object", "no-attributes", "get", "bad-protobuf", "unknown"])
def test_bad_review_requests_are_4xx(server: ApiServerProcess, path: str, method: str, body: bytes | None,
                                     code: int) -> None:
    ctype = "application/vnd.kubernetes.protobuf" if body and body.startswith(b"k8s") else "application/json"
    got, out = server.raw(method, path, body, headers={"Content-Type": ctype})
    status = json.loads(out)
    assert got == code and status["kind"] == "Status" and status["code"] == code, out


@pytest.mark.parametrize("which", ["k20", "k33"])
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_passes_client_schema_and_server_dry_run(which: str, example: Path,
                                                               request: pytest.FixtureRequest, ns: str) -> None:
    """kubectl validates against the published OpenAPI (v3 for 1.33, v2 for 1.20): a schema we
    publish must never refuse a manifest the server accepts."""
    kubectl: Kubectl = request.getfixturevalue(which)
    out = kubectl.run("apply", "--dry-run=server", "-n", ns, "-f", str(example)).stdout
    assert "(server dry run)" in out
