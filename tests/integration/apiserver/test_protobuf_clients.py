"""Clients that speak `application/vnd.kubernetes.protobuf` against `dvp server`: real
kubectl 1.33 (create namespace/secret/configmap, get, delete, `get -w`, and `events --watch`,
which reads a protobuf watch stream), helm 4 (its release lives in a Secret written in
protobuf), and raw requests for what clients rarely show: protobuf lists and Status errors,
DeleteOptions bodies, negotiation on custom resources (406 / JSON fallback / 415), and
malformed bodies refused with a 400 that names the problem while nothing stored changes.
The official `kubernetes` client keeps getting JSON."""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kubernetes import client

from controlplane.apiserver.protobuf import codec
from controlplane.apiserver.protobuf.schema import REGISTRY
from tests.services.apiserver import HELM, KUBECTL_V33, ApiServerProcess
from tests.support.protobuf_samples import KINDS

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PB = "application/vnd.kubernetes.protobuf"
NS = "proto"


def _env(server: ApiServerProcess) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.home)}


def kubectl(server: ApiServerProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert KUBECTL_V33.exists(), f"{KUBECTL_V33} missing: run `make setup`"
    result = subprocess.run([str(KUBECTL_V33), *args], env=_env(server), capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def server(apiserver: ApiServerProcess) -> Iterator[ApiServerProcess]:
    kubectl(apiserver, "create", "namespace", NS)
    yield apiserver
    kubectl(apiserver, "delete", "namespace", NS, "--wait=false", check=False)


def _wait_for(proc: subprocess.Popen[bytes], needle: str, timeout: float = 20) -> str:
    """Read the process's stdout until it contains `needle`; return all read so far."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
            if needle.encode() in seen:
                return seen.decode()
    raise AssertionError(f"{needle!r} never appeared; output so far:\n{seen.decode()}")


def test_kubectl_creates_reads_and_deletes_namespace_secret_configmap(server: ApiServerProcess) -> None:
    kubectl(server, "create", "namespace", "proto-ns")
    kubectl(server, "create", "secret", "generic", "s", "--from-literal=a=b", "-n", NS)
    kubectl(server, "create", "configmap", "c", "--from-literal=x=y", "--from-literal=empty=", "-n", NS)
    ns = orjson.loads(kubectl(server, "get", "namespace", "proto-ns", "-o", "json").stdout)
    assert ns["status"]["phase"] == "Active"
    secret = orjson.loads(kubectl(server, "get", "secret", "s", "-n", NS, "-o", "json").stdout)
    assert secret["data"] == {"a": "Yg=="} and secret["type"] == "Opaque"
    cm = orjson.loads(kubectl(server, "get", "configmap", "c", "-n", NS, "-o", "json").stdout)
    assert cm["data"] == {"x": "y", "empty": ""}
    # describe reads through the typed client (protobuf), events included
    assert "a:  1 bytes" in kubectl(server, "describe", "secret", "s", "-n", NS).stdout
    assert "x:\n----\ny" in kubectl(server, "describe", "configmap", "c", "-n", NS).stdout
    assert "Status:       Active" in kubectl(server, "describe", "namespace", "proto-ns").stdout
    kubectl(server, "create", "secret", "docker-registry", "reg", "--docker-server=r.example",
            "--docker-username=u", "--docker-password=p", "-n", NS)
    assert kubectl(server, "get", "secret", "reg", "-n", NS, "-o", "jsonpath={.type}").stdout == (
        "kubernetes.io/dockerconfigjson")
    # the stored form is what a JSON client sees
    core = client.CoreV1Api(server.client())
    assert core.read_namespaced_secret("s", NS).data == {"a": "Yg=="}
    for args in (("secret", "s", "-n", NS), ("secret", "reg", "-n", NS), ("configmap", "c", "-n", NS), ("namespace", "proto-ns", "--wait=false")):
        kubectl(server, "delete", *args)
    assert "NotFound" in kubectl(server, "get", "secret", "s", "-n", NS, check=False).stderr
    assert "NotFound" in kubectl(server, "get", "configmap", "c", "-n", NS, check=False).stderr


def test_kubectl_get_watch_on_configmaps(server: ApiServerProcess) -> None:
    watch = subprocess.Popen([str(KUBECTL_V33), "get", "configmaps", "-n", NS, "-w", "-o", "name"],
                             env=_env(server), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1)
        kubectl(server, "create", "configmap", "watched", "--from-literal=k=v", "-n", NS)
        _wait_for(watch, "configmap/watched")
    finally:
        watch.terminate()
        watch.communicate(timeout=10)
    kubectl(server, "delete", "configmap", "watched", "-n", NS)


def test_kubectl_events_watch_reads_a_protobuf_stream(server: ApiServerProcess) -> None:
    """`kubectl events --watch` lists and watches through client-go's typed client: protobuf."""
    watch = subprocess.Popen([str(KUBECTL_V33), "events", "-n", NS, "--watch", "-v=6"],
                             env=_env(server), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)
        event: Any = {
            "metadata": {"name": "ev1"}, "involvedObject": {"kind": "ConfigMap", "name": "c", "namespace": NS},
            "reason": "ProtoWatched", "message": "seen through a protobuf watch", "type": "Normal",
            "firstTimestamp": "2024-05-06T07:08:09Z", "lastTimestamp": "2024-05-06T07:08:09Z", "count": 1}
        client.CoreV1Api(server.client()).create_namespaced_event(NS, event)
        out = _wait_for(watch, "seen through a protobuf watch")
        assert "ProtoWatched" in out
    finally:
        watch.terminate()
        _, err = watch.communicate(timeout=10)
    assert b"watch=true" in err and b"200 OK" in err


def test_helm_keeps_its_release_in_a_secret(server: ApiServerProcess, tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: proto\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: helm-cm\ndata:\n  k: {{ .Values.k | quote }}\n")
    (chart / "values.yaml").write_text("k: one\n")
    env = _env(server)

    def helm(*args: str) -> str:
        result = subprocess.run([str(HELM), *args, "-n", NS], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stderr}"
        return result.stdout

    helm("install", "rel", str(chart))
    helm("upgrade", "rel", str(chart), "--set", "k=two")
    assert "deployed" in helm("list")
    secrets = client.CoreV1Api(server.client()).list_namespaced_secret(NS, label_selector="owner=helm").items
    assert sorted(str(s.metadata and s.metadata.name) for s in secrets) == ["sh.helm.release.v1.rel.v1", "sh.helm.release.v1.rel.v2"]
    helm("uninstall", "rel")
    assert client.CoreV1Api(server.client()).list_namespaced_secret(NS, label_selector="owner=helm").items == []


def _pb_configmap(name: str) -> bytes:
    raw = codec.encode_object(REGISTRY["ConfigMap"], {"metadata": {"name": name}, "data": {"k": "v"}})
    return codec.envelope("v1", "ConfigMap", raw)


def test_protobuf_objects_lists_and_status_errors(server: ApiServerProcess) -> None:
    path = f"/api/v1/namespaces/{NS}/configmaps"
    hdrs = {"Content-Type": PB, "Accept": f"{PB}, application/json"}
    code, body = server.raw("POST", path, _pb_configmap("raw-pb"), headers=hdrs)
    assert code == 201 and body.startswith(codec.MAGIC)
    api_version, kind, raw = codec.open_envelope(body)
    created = codec.decode_object(REGISTRY["ConfigMap"], raw)
    assert (api_version, kind, created["data"]) == ("v1", "ConfigMap", {"k": "v"})
    code, body = server.raw("GET", path, headers={"Accept": PB})
    _, kind, raw = codec.open_envelope(body)
    listed = codec.decode_list(REGISTRY["ConfigMap"], raw)
    assert kind == "ConfigMapList" and "raw-pb" in [i["metadata"]["name"] for i in listed["items"]]
    assert int(listed["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])
    code, body = server.raw("GET", f"{path}/missing", headers={"Accept": PB})
    _, kind, raw = codec.open_envelope(body)
    status = codec.decode_object(REGISTRY["Status"], raw)
    assert (code, kind, status["code"], status["reason"]) == (404, "Status", 404, "NotFound")
    # DeleteOptions in protobuf: a wrong uid precondition is refused, the right one deletes
    wrong = codec.envelope("v1", "DeleteOptions", codec.encode_object(
        REGISTRY["DeleteOptions"], {"preconditions": {"uid": "not-the-uid"}}))
    code, body = server.raw("DELETE", f"{path}/raw-pb", wrong, headers=hdrs)
    assert code == 409 and b"Precondition failed" in body
    right = codec.envelope("v1", "DeleteOptions", codec.encode_object(
        REGISTRY["DeleteOptions"], {"preconditions": {"uid": created["metadata"]["uid"]}}))
    code, body = server.raw("PATCH", f"{path}/raw-pb", _pb_configmap("raw-pb"), headers=hdrs)
    assert code == 415 and codec.decode_object(REGISTRY["Status"], codec.open_envelope(body)[2])["code"] == 415
    code, body = server.raw("DELETE", f"{path}/raw-pb", right, headers=hdrs)
    assert code == 200
    assert server.raw("GET", f"{path}/raw-pb")[0] == 404


@pytest.mark.parametrize(("body", "problem"), [
    (b"not protobuf", "does not appear to be a protobuf message"),
    (b"k8s\x00\x12\x05\x0a\x09\x0a\x01x", "metadata: length 9 runs past the end"),
    (b"k8s\x00\x12\x04\x0a\x02\x08\x01", "metadata.name: wire type 0"),
    (b"k8s\x00\x12\x06\x12\x04\x0a\x02\xff\xfe", "data: map key is not valid UTF-8"),
], ids=["not-protobuf", "truncated", "wrong-wire-type", "bad-utf8"])
def test_malformed_protobuf_is_a_400_and_stores_nothing(server: ApiServerProcess, body: bytes, problem: str) -> None:
    path = f"/api/v1/namespaces/{NS}/configmaps"
    before = orjson.loads(server.raw("GET", path)[1])["items"]
    code, answer = server.raw("POST", path, body, headers={"Content-Type": PB, "Accept": "application/json"})
    status = orjson.loads(answer)
    assert (code, status["kind"], status["reason"]) == (400, "Status", "BadRequest")
    assert problem in status["message"] and PB in status["message"]
    after = orjson.loads(server.raw("GET", path)[1])["items"]
    assert [i["metadata"]["name"] for i in after] == [i["metadata"]["name"] for i in before]


def test_custom_resources_stay_json(server: ApiServerProcess) -> None:
    kubectl(server, "apply", "-f", str(FIXTURES / "widget-crd.yaml"))
    kubectl(server, "wait", "--for=condition=Established", "crd/widgets.example.dvp.io", "--timeout=30s")
    path = f"/apis/example.dvp.io/v1/namespaces/{NS}/widgets"
    code, body = server.raw("GET", path, headers={"Accept": PB})
    assert code == 406 and orjson.loads(body)["reason"] == "NotAcceptable"
    code, body = server.raw("GET", path, headers={"Accept": f"{PB},application/json"})
    assert code == 200 and orjson.loads(body)["kind"] == "WidgetList"
    code, body = server.raw("POST", path, _pb_configmap("w"), headers={"Content-Type": PB})
    assert code == 415 and orjson.loads(body)["reason"] == "UnsupportedMediaType"


def test_json_clients_keep_json(server: ApiServerProcess) -> None:
    core = client.CoreV1Api(server.client())
    cm: Any = {"metadata": {"name": "from-python"}, "data": {"a": "1"}}
    core.create_namespaced_config_map(NS, cm)
    assert core.read_namespaced_config_map("from-python", NS).data == {"a": "1"}
    code, body = server.raw("GET", f"/api/v1/namespaces/{NS}/configmaps/from-python",
                            headers={"Accept": "application/json"})
    assert code == 200 and orjson.loads(body)["data"] == {"a": "1"}
    core.delete_namespaced_config_map("from-python", NS)


def _served(server: ApiServerProcess) -> list[tuple[str, str, str, bool]]:
    """(group, version, plural, namespaced) of every served kind that has a protobuf message."""
    found = []
    for group_version in ("v1", "coordination.k8s.io/v1", "apiextensions.k8s.io/v1"):
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        doc = orjson.loads(server.raw("GET", prefix)[1])
        group, _, version = group_version.rpartition("/")
        for r in doc["resources"]:
            if "/" not in r["name"] and codec.message_for(group, version, r["kind"]) is not None:
                found.append((prefix, r["name"], r["kind"], r["namespaced"]))
    return found


def test_every_served_kind_reads_the_same_in_protobuf_and_json(server: ApiServerProcess) -> None:
    """What JSON clients stored, protobuf clients read without loss (and the other way round)."""
    import yaml

    served = _served(server)
    assert {kind for _, _, kind, _ in served} >= {"Namespace", "Secret", "ConfigMap", "Event", "Node", "Lease",
                                                 "CustomResourceDefinition"}
    for prefix, plural, kind, namespaced in served:
        if kind == "CustomResourceDefinition":
            obj = yaml.safe_load((FIXTURES / "widget-crd.yaml").read_text())
            name = obj["metadata"]["name"]
        else:
            name = f"pb-{kind.lower()}"
            obj = {**orjson.loads(orjson.dumps(KINDS[kind])), "metadata": {"name": name, "labels": {"a": "b"}}}
        base = f"{prefix}/namespaces/{NS}/{plural}" if namespaced else f"{prefix}/{plural}"
        code, _ = server.raw("POST", base, orjson.dumps(obj), headers={"Content-Type": "application/json"})
        assert code in (201, 409), (kind, code)
        _, as_json = server.raw("GET", f"{base}/{name}", headers={"Accept": "application/json"})
        code, as_pb = server.raw("GET", f"{base}/{name}", headers={"Accept": PB})
        api_version, got_kind, raw = codec.open_envelope(as_pb)
        expected = orjson.loads(as_json)
        assert (code, got_kind, api_version) == (200, kind, expected.pop("apiVersion")), kind
        expected.pop("kind")
        msg = REGISTRY[kind]
        assert codec.decode_object(msg, raw) == expected, kind
        # and a protobuf update of what was read changes nothing
        code, _ = server.raw("PUT", f"{base}/{name}", as_pb, headers={"Content-Type": PB, "Accept": PB})
        assert code == 200, kind
        _, again = server.raw("GET", f"{base}/{name}", headers={"Accept": "application/json"})
        assert orjson.loads(again)["metadata"]["resourceVersion"] == expected["metadata"]["resourceVersion"], kind
        if kind != "CustomResourceDefinition":  # the widget CRD is shared with other tests
            server.raw("DELETE", f"{base}/{name}")
