"""Python clients against one `dvp server`: lightkube (get, list, watch, create of a built-in kind
and a DVP kind), a kopf operator running a minute with no ERROR in its log, and the official
`kubernetes` client's watch resuming from its last resourceVersion across a server restart
(last: it restarts the module's server)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from tests.integration.clients.conftest import Kubectl
from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration
NS = "pyclients"
VM_GROUP, VM_VERSION, VM_PLURAL = "virtualization.deckhouse.io", "v1alpha2", "virtualmachines"

OPERATOR = '''
import kopf

@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.watching.server_timeout = 10
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()

@kopf.on.create("virtualization.deckhouse.io", "v1alpha2", "virtualmachines")
def created(meta, patch, logger, **_):
    patch.metadata.annotations["conformance/seen"] = "created"
    logger.info("saw %s", meta["name"])

@kopf.on.field("virtualization.deckhouse.io", "v1alpha2", "virtualmachines", field="metadata.labels")
def relabelled(new, patch, **_):
    patch.metadata.annotations["conformance/labels"] = ",".join(sorted((new or {}).keys()))

@kopf.on.delete("virtualization.deckhouse.io", "v1alpha2", "virtualmachines")
def deleted(meta, logger, **_):
    logger.info("deleted %s", meta["name"])

@kopf.timer("virtualization.deckhouse.io", "v1alpha2", "virtualmachines", interval=5)
def ticking(patch, **_):
    patch.metadata.annotations["conformance/tick"] = "yes"
'''


def vm_body(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{VM_GROUP}/{VM_VERSION}", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"virtualMachineClassName": "generic", "cpu": {"cores": 1}, "memory": {"size": "1Gi"},
                     "blockDeviceRefs": [{"kind": "VirtualDisk", "name": f"{name}-disk"}]}}


@pytest.fixture(scope="module")
def ns(server: ApiServerProcess) -> str:
    core: Any = client.CoreV1Api(server.client())
    core.create_namespace({"metadata": {"name": NS}})
    return NS


def test_lightkube_get_list_watch_create(server: ApiServerProcess, ns: str) -> None:
    from lightkube import Client, KubeConfig
    from lightkube.generic_resource import create_namespaced_resource
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ConfigMap, Namespace

    kube: Any = Client(config=KubeConfig.from_file(str(server.kubeconfig)))
    assert kube.get(Namespace, ns).metadata.name == ns
    kube.create(ConfigMap(metadata=ObjectMeta(name="lk", namespace=ns), data={"a": "1"}))
    assert kube.get(ConfigMap, "lk", namespace=ns).data == {"a": "1"}
    assert "lk" in [cm.metadata.name for cm in kube.list(ConfigMap, namespace=ns)]
    VirtualMachine: Any = create_namespaced_resource(VM_GROUP, VM_VERSION, "VirtualMachine", VM_PLURAL)
    kube.create(VirtualMachine(vm_body("lk-vm")))
    got = kube.get(VirtualMachine, "lk-vm", namespace=ns)
    assert got["spec"]["memory"]["size"] == "1Gi" and got.metadata.uid
    assert [v.metadata.name for v in kube.list(VirtualMachine, namespace=ns)] == ["lk-vm"]
    seen: list[tuple[str, str]] = []
    for op, obj in kube.watch(ConfigMap, namespace=ns, resource_version="0", server_timeout=5):
        seen.append((op, obj.metadata.name))
        if obj.metadata.name == "lk":
            break
    assert ("ADDED", "lk") in seen
    for op, vm in kube.watch(VirtualMachine, namespace=ns, server_timeout=5):
        assert op == "ADDED" and vm.metadata.name == "lk-vm"
        break


def test_kopf_operator_runs_a_minute_without_errors(server: ApiServerProcess, k33: Kubectl, ns: str,
                                                    tmp_path: Path) -> None:
    operator = tmp_path / "operator.py"
    operator.write_text(OPERATOR)
    log_path = tmp_path / "kopf.log"
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.home)}
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces",
                                 str(operator)], env=env, stdout=log, stderr=subprocess.STDOUT)
    started = time.monotonic()
    api: Any = client.CustomObjectsApi(server.client())
    try:
        time.sleep(5)
        api.create_namespaced_custom_object(VM_GROUP, VM_VERSION, ns, VM_PLURAL, vm_body("kopf-vm"))

        def annotations() -> dict[str, str]:
            obj = api.get_namespaced_custom_object(VM_GROUP, VM_VERSION, ns, VM_PLURAL, "kopf-vm")
            return dict(obj["metadata"].get("annotations") or {})

        deadline = time.monotonic() + 30
        while annotations().get("conformance/seen") != "created":
            assert time.monotonic() < deadline, f"kopf never handled the VM; log:\n{log_path.read_text()[-3000:]}"
            time.sleep(0.5)
        k33.run("label", "vm", "kopf-vm", "-n", ns, "team=infra")
        while "team" not in annotations().get("conformance/labels", ""):
            assert time.monotonic() < deadline + 20, f"label change unseen; log:\n{log_path.read_text()[-3000:]}"
            time.sleep(0.5)
        time.sleep(max(0.0, 40 - (time.monotonic() - started)))
        assert annotations().get("conformance/tick") == "yes"
        k33.run("delete", "vm", "kopf-vm", "-n", ns, "--timeout=60s")
        time.sleep(max(0.0, 62 - (time.monotonic() - started)))
        assert proc.poll() is None, f"kopf exited early; log:\n{log_path.read_text()[-3000:]}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log_text = log_path.read_text()
    errors = [line for line in log_text.splitlines() if "ERROR" in line or "Traceback" in line]
    assert not errors, "\n".join(errors[:20])
    assert "saw kopf-vm" in log_text and "deleted kopf-vm" in log_text


def test_official_client_reads_services_and_reviews(server: ApiServerProcess) -> None:
    """The official client's typed models parse what the server answers (required fields present)."""
    api = server.client()
    core: Any = client.CoreV1Api(api)
    svc = core.read_namespaced_service("kubernetes", "default")
    assert svc.spec.ports[0].port == 443 and svc.spec.ports[0].target_port == server.port
    ep = core.read_namespaced_endpoints("kubernetes", "default")
    assert ep.subsets[0].addresses[0].ip == "127.0.0.1" and ep.subsets[0].ports[0].port == server.port
    slices: Any = client.DiscoveryV1Api(api)
    assert slices.read_namespaced_endpoint_slice("kubernetes", "default").endpoints[0].addresses == ["127.0.0.1"]
    authn: Any = client.AuthenticationV1Api(api)
    who = authn.create_self_subject_review({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert who.status.user_info.username == "admin"
    authz: Any = client.AuthorizationV1Api(api)
    review = authz.create_self_subject_access_review({"spec": {"resourceAttributes": {
        "verb": "delete", "group": VM_GROUP, "resource": VM_PLURAL, "namespace": NS}}})
    assert review.status.allowed is True and review.status.reason
    rules = authz.create_self_subject_rules_review({"spec": {"namespace": NS}})
    assert rules.status.resource_rules[0].verbs == ["*"] and rules.status.incomplete is False
    local = authz.create_namespaced_local_subject_access_review(NS, {"spec": {
        "user": "someone", "resourceAttributes": {"verb": "get", "resource": "configmaps", "namespace": NS}}})
    assert local.status.allowed is False and local.metadata.namespace == NS  # RBAC grants "someone" nothing
    local = authz.create_namespaced_local_subject_access_review(NS, {"spec": {
        "user": "someone", "groups": ["system:masters"],
        "resourceAttributes": {"verb": "get", "resource": "configmaps", "namespace": NS}}})
    assert local.status.allowed is True and "system:masters" in local.status.reason


def test_official_client_watch_resumes_across_restart(server: ApiServerProcess, ns: str) -> None:
    core: Any = client.CoreV1Api(server.client())
    rv0 = core.list_namespaced_config_map(ns).metadata.resource_version
    new_watch: Any = watch.Watch
    w = new_watch()
    seen: list[str] = []
    failure: list[BaseException] = []
    first = threading.Event()

    def consume() -> None:
        try:
            for event in w.stream(core.list_namespaced_config_map, ns, resource_version=rv0, timeout_seconds=120):
                seen.append(f"{event['type']} {event['object'].metadata.name}")
                first.set()
        except BaseException as exc:  # the server going away ends the stream with an error
            failure.append(exc)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    core.create_namespaced_config_map(ns, {"metadata": {"name": "before-restart"}})
    assert first.wait(20), seen
    server.kill()
    thread.join(30)
    last_rv = w.resource_version
    assert seen == ["ADDED before-restart"] and last_rv
    server.start(60)
    core = client.CoreV1Api(server.client())
    core.create_namespaced_config_map(ns, {"metadata": {"name": "after-restart"}})
    resumed: list[str] = []
    for event in new_watch().stream(core.list_namespaced_config_map, ns, resource_version=last_rv,
                                      timeout_seconds=10):
        resumed.append(f"{event['type']} {event['object'].metadata.name}")
        if event["object"].metadata.name == "after-restart":
            break
    assert resumed == ["ADDED after-restart"], resumed
