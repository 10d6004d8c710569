"""Authorization on a real `dvp server`, driven by kubectl 1.33 as the people and nodes it
confines: a user made with `dvp user create` and bound to `edit` in one namespace runs the
quick start there and is refused elsewhere with kube-apiserver's message; `auth can-i`
answers from RBAC; roles cannot be escalated; a node's identity reads only what its own
instances reference; `dvp user delete` ends access at once; every request is audited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.apiserver.auth import TokenAuthenticator
from tests.services.apiserver import KUBECTL_V33, REPO, ApiServerProcess

pytestmark = pytest.mark.integration

QUICKSTART = REPO / "examples" / "10-quickstart.yaml"
INSTANCES = "/apis/internal.virtualization.deckhouse.io/v1/namespaces/{ns}/internalvirtualmachineinstances"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    srv = ApiServerProcess(tmp_path_factory.mktemp("rbac") / "data")
    srv.start(timeout=120)
    srv.wait_ready()
    for ns in ("team-a", "team-b"):
        srv.kubectl("create", "namespace", ns)
    srv.kubectl("create", "secret", "generic", "db", "-n", "team-b", "--from-literal=password=s3cret-value")
    yield srv
    srv.stop()


def dvp(server: ApiServerProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "installer.cli.main", *args, "--data-dir", str(server.data_dir)],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    return subprocess.run([str(KUBECTL_V33), *args], env=env, capture_output=True, text=True, input=input,
                          timeout=60)


@pytest.fixture(scope="module")
def dev(server: ApiServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dev") / "dev.kubeconfig"
    made = dvp(server, "user", "create", "dev", "--namespace", "team-a", "--role", "edit", "--group", "devs",
               "--kubeconfig-out", str(out), "-o", "json")
    assert json.loads(made.stdout)["role"] == "edit"
    assert out.stat().st_mode & 0o777 == 0o600
    return out


def test_edit_user_runs_the_quick_start_in_its_namespace(dev: Path) -> None:
    applied = kubectl(dev, "apply", "-n", "team-a", "-f", str(QUICKSTART))
    assert applied.returncode == 0, applied.stderr
    got = kubectl(dev, "get", "virtualmachines,virtualdisks,virtualimages", "-n", "team-a", "-o", "name")
    assert "virtualmachine.virtualization.deckhouse.io/quick" in got.stdout, got.stderr
    secret = kubectl(dev, "create", "secret", "generic", "own", "-n", "team-a", "--from-literal=k=v")
    assert secret.returncode == 0, secret.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["get", "secrets", "-n", "team-b"],
     'secrets is forbidden: User "dev" cannot list resource "secrets" in API group "" in the namespace "team-b"'),
    (["get", "secret", "db", "-n", "team-b"],
     'secrets "db" is forbidden: User "dev" cannot get resource "secrets" in API group "" in the namespace "team-b"'),
    (["apply", "-n", "team-b", "-f", str(QUICKSTART)],
     'User "dev" cannot get resource "virtualimages" in API group "virtualization.deckhouse.io" in the namespace '
     '"team-b"'),
    (["get", "nodes"], 'nodes is forbidden: User "dev" cannot list resource "nodes" in API group "" at the cluster scope'),
    (["delete", "namespace", "team-b"],
     'namespaces "team-b" is forbidden: User "dev" cannot delete resource "namespaces" in API group ""'),
], ids=["list-secrets-elsewhere", "get-secret-elsewhere", "quickstart-elsewhere", "nodes", "delete-namespace"])
def test_edit_user_is_forbidden_outside_its_namespace(dev: Path, args: list[str], message: str) -> None:
    refused = kubectl(dev, *args)
    assert refused.returncode != 0
    assert message in refused.stderr, refused.stderr
    assert "s3cret-value" not in refused.stderr + refused.stdout


@pytest.mark.parametrize(("args", "answer"), [
    (["create", "virtualmachines", "-n", "team-a"], "yes"),
    (["get", "virtualmachines/console", "--subresource", "", "-n", "team-a"], "yes"),
    (["delete", "virtualdisks", "-n", "team-a"], "yes"),
    (["create", "virtualmachines", "-n", "team-b"], "no"),
    (["get", "secrets", "-n", "team-b"], "no"),
    (["create", "rolebindings", "-n", "team-a"], "no"),
    (["create", "virtualmachineclasses"], "no"),
], ids=["create-vm-own", "console-own", "delete-disk-own", "create-vm-other", "secrets-other", "bind-own",
        "classes"])
def test_auth_can_i_answers_from_rbac(dev: Path, args: list[str], answer: str) -> None:
    args = [a for a in args if a] if "--subresource" not in args else \
        ["get", "virtualmachines.subresources.virtualization.deckhouse.io", "--subresource", "console", "-n", "team-a"]
    got = kubectl(dev, "auth", "can-i", *args)
    assert got.stdout.strip() == answer, got.stderr


def test_auth_can_i_list_shows_exactly_the_namespace_grants(dev: Path) -> None:
    own = kubectl(dev, "auth", "can-i", "--list", "-n", "team-a")
    other = kubectl(dev, "auth", "can-i", "--list", "-n", "team-b")
    assert own.returncode == 0 and other.returncode == 0, own.stderr + other.stderr
    assert "virtualmachines.virtualization.deckhouse.io" in own.stdout
    assert "secrets" in own.stdout
    assert "virtualmachines.virtualization.deckhouse.io" not in other.stdout
    assert "secrets" not in other.stdout
    assert "selfsubjectaccessreviews.authorization.k8s.io" in other.stdout  # what everyone may do


def test_roles_cannot_be_escalated(server: ApiServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "lead.kubeconfig"
    dvp(server, "user", "create", "lead", "--namespace", "team-a", "--role", "admin", "--kubeconfig-out", str(out))
    ok = kubectl(out, "create", "rolebinding", "viewers", "-n", "team-a", "--clusterrole", "view", "--user", "x")
    assert ok.returncode == 0, ok.stderr
    bound = kubectl(out, "create", "rolebinding", "root", "-n", "team-a", "--clusterrole", "cluster-admin",
                    "--user", "lead")
    assert bound.returncode != 0
    assert "is attempting to grant RBAC permissions not currently held" in bound.stderr, bound.stderr
    held = kubectl(out, "create", "role", "reader", "-n", "team-a", "--verb", "get", "--resource", "secrets")
    assert held.returncode == 0, held.stderr
    wider = kubectl(out, "create", "role", "nodes", "-n", "team-a", "--verb", "get", "--resource", "nodes")
    assert wider.returncode != 0 and "not currently held" in wider.stderr, wider.stderr
    dvp(server, "user", "delete", "lead")


def _node_token(server: ApiServerProcess, node: str) -> str:
    return TokenAuthenticator(server.data_dir / "tokens.json").issue(f"system:node:{node}", ["system:nodes"])


def _instance(name: str, node: str, secret: str) -> bytes:
    return json.dumps({"apiVersion": "internal.virtualization.deckhouse.io/v1", "kind": "InternalVirtualMachineInstance",
                       "metadata": {"name": name, "labels": {"virtualization.deckhouse.io/node": node}},
                       "spec": {"nodeName": node, "cpu": {"cores": 1}, "memory": {"size": "256Mi"},
                                "runState": "Stopped",
                                "cloudInit": {"userDataSecretRef": {"name": secret}}}}).encode()


def test_node_reads_only_what_its_instances_reference(server: ApiServerProcess) -> None:
    json_ct = {"Content-Type": "application/json"}
    for node, secret in (("node-a", "a-data"), ("node-b", "b-data")):
        server.kubectl("create", "secret", "generic", secret, "-n", "team-b", "--from-literal=userData=#cloud-config")
        code, body = server.raw("POST", INSTANCES.format(ns="team-b"), _instance(f"vm-{node}", node, secret),
                                headers=json_ct)
        assert code == 201, body
    node_a = _node_token(server, "node-a")

    def as_a(method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
        code, raw = server.raw(method, path, body, token=node_a,
                               headers={"Content-Type": "application/merge-patch+json"} if body else None)
        return code, json.loads(raw or b"{}")

    assert as_a("GET", "/api/v1/namespaces/team-b/secrets/a-data")[0] == 200
    code, status = as_a("GET", "/api/v1/namespaces/team-b/secrets/b-data")
    assert code == 403, status
    assert status["message"].startswith('secrets "b-data" is forbidden: User "system:node:node-a" cannot get '
                                        'resource "secrets" in API group "" in the namespace "team-b"')
    assert as_a("GET", "/api/v1/namespaces/team-b/secrets/db")[0] == 403
    # instances: every node reads them all (VM routes), writes only its own
    own, other = INSTANCES.format(ns="team-b") + "/vm-node-a", INSTANCES.format(ns="team-b") + "/vm-node-b"
    assert as_a("GET", own)[0] == 200
    assert as_a("GET", other)[0] == 200
    everywhere = "/apis/internal.virtualization.deckhouse.io/v1/internalvirtualmachineinstances"
    code, mine = as_a("GET", everywhere + "?labelSelector=virtualization.deckhouse.io%2Fnode%3Dnode-a")
    assert code == 200 and [i["metadata"]["name"] for i in mine["items"]] == ["vm-node-a"]
    code, every = as_a("GET", everywhere)
    assert code == 200 and sorted(i["metadata"]["name"] for i in every["items"]) == ["vm-node-a", "vm-node-b"]
    code, status = as_a("PATCH", other, b'{"metadata":{"labels":{"a":"b"}}}')
    assert code == 403 and "no relationship found between node 'node-a'" in status["message"], status
    assert as_a("PATCH", other + "/status", b'{"status":{"phase":"Running"}}')[0] == 403
    assert as_a("DELETE", own)[0] == 403
    volumes = "/apis/internal.virtualization.deckhouse.io/v1/internalvirtualdiskvolumes"
    assert as_a("GET", volumes)[0] == 403
    # a migration's source hands its instance over to the target; then only the target writes it
    handover = json.dumps({"metadata": {"labels": {"virtualization.deckhouse.io/node": "node-b"}},
                           "spec": {"nodeName": "node-b"}}).encode()
    assert as_a("PATCH", own, handover)[0] == 200
    assert as_a("PATCH", own, b'{"metadata":{"labels":{"a":"b"}}}')[0] == 403
    code, _ = as_a("POST", "/api/v1/nodes", json.dumps({"metadata": {"name": "node-a"}}).encode())
    assert code == 201
    assert as_a("POST", "/api/v1/nodes", json.dumps({"metadata": {"name": "node-b"}}).encode())[0] == 403
    assert as_a("PATCH", "/api/v1/nodes/node-a", b'{"metadata":{"labels":{"a":"b"}}}')[0] == 200
    assert as_a("DELETE", "/api/v1/namespaces/team-b")[0] == 403
    assert as_a("GET", "/api/v1/namespaces/team-b/configmaps")[0] == 403


def test_deleting_a_user_ends_access_at_once(server: ApiServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "temp.kubeconfig"
    dvp(server, "user", "create", "temp", "--namespace", "team-a", "--role", "view", "--kubeconfig-out", str(out),
        "--ttl", "1h")
    assert kubectl(out, "get", "virtualmachines", "-n", "team-a").returncode == 0
    listed = json.loads(dvp(server, "user", "list", "-o", "json").stdout)
    assert {"user": "temp", "role": "view", "namespace": "team-a",
            "binding": "RoleBinding/dvp-user:temp:view"} in next(u for u in listed if u["user"] == "temp")["bindings"]
    assert next(u for u in listed if u["user"] == "temp")["expires"].endswith("Z")
    dvp(server, "user", "delete", "temp")
    refused = kubectl(out, "get", "virtualmachines", "-n", "team-a")
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr, refused.stderr
    assert "temp" not in [u["user"] for u in json.loads(dvp(server, "user", "list", "-o", "json").stdout)]


def test_audit_log_has_one_line_per_request_and_no_secrets(server: ApiServerProcess, dev: Path) -> None:
    kubectl(dev, "get", "secrets", "-n", "team-b", "--selector", "audit=me")
    server.raw("GET", f"/api/v1/namespaces?limit=1&token={server.token}")  # a client carrying its token in the URL
    deadline = time.monotonic() + 5
    refused: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not refused:
        lines = [json.loads(x) for x in (server.data_dir / "audit.log").read_text().splitlines()]
        refused = [e for e in lines if e["user"].get("username") == "dev" and "audit%3Dme" in e["requestURI"]]
        time.sleep(0.2)
    assert len(refused) == 1, refused
    assert refused[0]["objectRef"] == {"resource": "secrets", "namespace": "team-b", "apiGroup": "", "apiVersion": "v1"}
    assert (refused[0]["verb"], refused[0]["responseStatus"]["code"]) == ("list", 403)
    assert refused[0]["user"]["groups"] == ["devs", "system:authenticated"]
    text = (server.data_dir / "audit.log").read_text()
    assert "s3cret-value" not in text and "czNjcmV0LXZhbHVl" not in text  # the Secret's data, plain or base64
    assert oct((server.data_dir / "audit.log").stat().st_mode & 0o777) == "0o600"
    assert server.token not in text


def test_a_role_labelled_for_aggregation_joins_view_edit_and_admin(server: ApiServerProcess, dev: Path) -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "leases-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"verbs": ["list"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"]}]}
    assert kubectl(dev, "auth", "can-i", "list", "leases.coordination.k8s.io", "-n", "team-a").stdout.strip() == "no"
    server.kubectl("apply", "-f", "-", input=json.dumps(role))
    assert kubectl(dev, "auth", "can-i", "list", "leases.coordination.k8s.io", "-n", "team-a").stdout.strip() == "yes"
    assert kubectl(dev, "auth", "can-i", "list", "leases.coordination.k8s.io", "-n", "team-b").stdout.strip() == "no"
    deadline = time.monotonic() + 10
    shown: dict[str, list[Any]] = {}
    while time.monotonic() < deadline:
        shown = {name: json.loads(server.kubectl("get", "clusterrole", name, "-o", "json").stdout)["rules"]
                 for name in ("view", "edit", "admin")}
        wanted = {"verbs": ["list"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"]}
        if all(wanted in r for r in shown.values()):
            return
        time.sleep(0.2)
    raise AssertionError(f"aggregated roles not rewritten: {shown}")


def test_impersonation_needs_the_impersonate_verb(server: ApiServerProcess, dev: Path) -> None:
    def as_dev(*args: str) -> str:
        return server.kubectl("auth", "can-i", *args, "--as", "dev", "--as-group", "devs", check=False).stdout.strip()

    assert as_dev("create", "virtualmachines.virtualization.deckhouse.io", "-n", "team-a") == "yes"
    assert as_dev("get", "secrets", "-n", "team-b") == "no"
    refused = kubectl(dev, "get", "secrets", "-n", "team-b", "--as", "admin")
    assert refused.returncode != 0
    assert 'users "admin" is forbidden: User "dev" cannot impersonate resource "users" in API group "" at the ' \
           'cluster scope' in refused.stderr, refused.stderr


def test_a_user_who_may_patch_but_not_read_a_secret_never_sees_its_values(server: ApiServerProcess,
                                                                           tmp_path: Path) -> None:
    """JSON patches that fail (a test op guessing the value, a path into the data) are refused
    naming the operation, not quoting the Secret they looked at. (kubectl patch reads the object
    first, so the PATCH goes as such a user's client sends it.)"""
    out = tmp_path / "patcher.kubeconfig"
    dvp(server, "user", "create", "patcher", "--namespace", "team-a", "--role", "view", "--kubeconfig-out", str(out))
    server.kubectl("create", "role", "secret-patcher", "-n", "team-b", "--verb", "patch", "--resource", "secrets")
    server.kubectl("create", "rolebinding", "secret-patcher", "-n", "team-b", "--role", "secret-patcher",
                   "--user", "patcher")
    token = str(yaml.safe_load(out.read_text())["users"][0]["user"]["token"])
    try:
        read = kubectl(out, "get", "secret", "db", "-n", "team-b")
        assert read.returncode != 0 and "forbidden" in read.stderr.lower(), read.stderr
        encoded = b"czNjcmV0LXZhbHVl"  # base64 of the Secret's value
        for ops in ([{"op": "test", "path": "/data/password", "value": "guess"}],
                    [{"op": "copy", "from": "/data", "path": "/data/x/y"}]):
            code, body = server.raw("PATCH", "/api/v1/namespaces/team-b/secrets/db", json.dumps(ops).encode(),
                                    headers={"Content-Type": "application/json-patch+json"}, token=token)
            assert code == 422, body
            assert b"json patch operation 0" in body, body
            assert encoded not in body and b"s3cret-value" not in body, body
    finally:
        server.kubectl("delete", "rolebinding,role", "secret-patcher", "-n", "team-b")
        dvp(server, "user", "delete", "patcher")
