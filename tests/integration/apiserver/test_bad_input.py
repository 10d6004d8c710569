"""Every bad input of issue 16 against a real `dvp server`: each answered with the expected 4xx
kube Status naming the field or the limit (never a 500), while `/readyz` keeps answering in
under 100 ms during and after, the server's RSS stays bounded, and a bad write never fails a
good one committed alongside it."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration

LIMIT = 3 * 1024 * 1024
CM = "/api/v1/namespaces/default/configmaps"
SECRETS = "/api/v1/namespaces/default/secrets"
IMAGES = "/apis/virtualization.deckhouse.io/v1alpha2/namespaces/default/virtualimages"
POOLS = "/apis/virtualization.deckhouse.io/v1alpha2/namespaces/default/virtualmachinepools"


def _laughs() -> bytes:
    doc = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghi":
        doc += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: laughs}\ndata: {x: y}\nextra:\n"
            + "".join("  " + line + "\n" for line in doc.splitlines())).encode()


def _nested_yaml(levels: int) -> bytes:
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n  annotations:\n"
    return (body + "".join(" " * (i + 4) + f"k{i}:\n" for i in range(levels)) + " " * (levels + 4) + "v\n").encode()


def _json(obj: object) -> bytes:
    return json.dumps(obj).encode()


YAML = {"Content-Type": "application/yaml"}
JSON = {"Content-Type": "application/json"}
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}

# (id, method, path, headers, body, expected status, text the message must contain)
CASES: list[tuple[str, str, str, dict[str, str], bytes, int, str]] = [
    ("yaml-billion-laughs", "POST", CM, YAML, _laughs(), 413, f"limit is {LIMIT}"),
    ("yaml-flow-nested-2000", "POST", CM, YAML, b"metadata: {name: f}\nx: " + b"[" * 2000 + b"]" * 2000 + b"\n", 400,
     "nesting depth"),
    ("yaml-block-nested-150", "POST", CM, YAML, _nested_yaml(150), 400, "nested too deeply"),
    ("json-nested-2000", "POST", CM, JSON, b'{"metadata":{"name":"j"},"x":' + b"[" * 2000 + b"]" * 2000 + b"}", 400,
     "depth"),
    ("json-nested-150", "POST", CM, JSON, b'{"metadata":{"name":"j"},"x":' + b"[" * 150 + b"]" * 150 + b"}", 400,
     "nested too deeply"),
    ("yaml-recursive-alias", "POST", CM, YAML, b"metadata: {name: r}\nx: &a [*a]\n", 400, "refers to itself"),
    ("body-over-limit", "POST", CM, JSON, b'{"metadata":{"name":"big"},"data":{"a":"' + b"x" * (LIMIT + 10) + b'"}}',
     413, f"limit is {LIMIT}"),
    ("generateName-int", "POST", CM, JSON, _json({"metadata": {"generateName": 5}}), 422, "metadata.generateName"),
    ("name-int", "POST", CM, JSON, _json({"metadata": {"name": 5}}), 422, "metadata.name"),
    ("labels-int-value", "POST", CM, JSON, _json({"metadata": {"name": "l", "labels": {"a": 1}}}), 422,
     "metadata.labels"),
    ("annotations-list", "POST", CM, JSON, _json({"metadata": {"name": "l", "annotations": ["a"]}}), 422,
     "metadata.annotations"),
    ("finalizers-string", "POST", CM, JSON, _json({"metadata": {"name": "l", "finalizers": "a"}}), 422,
     "metadata.finalizers"),
    ("owner-controller-string", "POST", CM, JSON,
     _json({"metadata": {"name": "l", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o",
                                                            "uid": "u", "controller": "yes"}]}}), 422,
     "metadata.ownerReferences[0].controller"),
    ("managedFields-string", "PATCH", CM + "/victim", MERGE, _json({"metadata": {"managedFields": "x"}}), 422,
     "metadata.managedFields"),
    ("labels-int-by-patch", "PATCH", CM + "/victim", MERGE, _json({"metadata": {"labels": {"a": 1}}}), 422,
     "metadata.labels[a]"),
    ("namespace-int", "POST", CM, JSON, _json({"metadata": {"name": "n", "namespace": 5}}), 400, "namespace"),
    ("secret-data-list", "POST", SECRETS, JSON, _json({"metadata": {"name": "s"}, "data": ["a", "b"]}), 422, "data"),
    ("secret-stringData-list", "POST", SECRETS, JSON, _json({"metadata": {"name": "s"}, "stringData": ["a"]}), 422,
     "stringData"),
    ("yaml-binary-value", "POST", CM, YAML, b"metadata: {name: b}\ndata: {a: !!binary aGVsbG8=}\n", 400, "binary"),
    ("yaml-malformed", "POST", CM, YAML, b"metadata: [\n", 400, "could not be decoded"),
    ("limit-garbage", "GET", CM + "?limit=abc", {}, b"", 400, "limit"),
    # DVP's URL pattern backtracks 2^n steps under Python's re on this value (n digits): RE2 here
    ("pattern-backtracking", "POST", IMAGES, JSON, _json({
        "metadata": {"name": "redos"},
        "spec": {"storage": "ContainerRegistry",
                 "dataSource": {"type": "HTTP", "http": {"url": "http://" + "1" * 60 + " "}}}}), 422,
     "spec.dataSource.http.url"),
    # a CEL rule over two lists costs their product: over their maxItems (16), the rules are not run
    ("cel-over-list-limits", "POST", POOLS, JSON, _json({
        "metadata": {"name": "wide"},
        "spec": {"virtualDiskTemplates": [{"name": f"d{i}"} for i in range(400)],
                 "virtualMachineTemplate": {"spec": {"blockDeviceRefs": [
                     {"kind": "VirtualDisk", "name": f"x{i}"} for i in range(400)]}}}}), 422,
     "some validation rules were not checked"),
    # each copy doubles the object: thirty would want gigabytes of the server's memory
    ("json-patch-doubling-copies", "PATCH", CM + "/victim", JSON_PATCH,
     _json([{"op": "copy", "from": "/data", "path": f"/data/k{i}"} for i in range(30)]), 422,
     "the copies of this patch add more than"),
    ("json-patch-too-many-operations", "PATCH", CM + "/victim", JSON_PATCH,
     _json([{"op": "test", "path": "/data/a", "value": "b"}] * 10_001), 413, "maximum operations in a JSON patch"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, kubectl_path: Path) -> Iterator[ApiServerProcess]:
    srv = ApiServerProcess(tmp_path_factory.mktemp("badinput") / "data")
    srv.start()
    srv.wait_ready()  # every component up, so /readyz answers 200 unless a request hurts the server
    status, _ = srv.raw("POST", CM, _json({"metadata": {"name": "victim"}, "data": {"a": "b"}}), headers=JSON)
    assert status == 201
    yield srv
    srv.stop()


def _rss_kib(server: ApiServerProcess) -> int:
    """The API server component's resident memory (`dvp server` supervises it as a child)."""
    pid = server.components()["apiserver"]["pid"]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class ReadyzProbe:
    """Polls /readyz over one kept-alive TLS connection, timing each request to its answer."""

    def __init__(self, server: ApiServerProcess) -> None:
        self.server = server
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._token = server.token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def once(self, conn: http.client.HTTPSConnection) -> float:
        start = time.monotonic()
        conn.request("GET", "/readyz", headers={"Authorization": f"Bearer {self._token}"})
        response = conn.getresponse()
        body = response.read()
        elapsed = time.monotonic() - start
        if response.status != 200:
            self.failures.append(f"{response.status} {body[:100]!r}")
        return elapsed

    def connect(self) -> http.client.HTTPSConnection:
        ctx = ssl.create_default_context(cafile=str(self.server.ca_file))
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=ctx, timeout=10)
        conn.connect()
        return conn

    def _run(self) -> None:
        conn = self.connect()
        while not self._stop.is_set():
            self.latencies.append(self.once(conn))
            time.sleep(0.01)
        conn.close()

    def best_after(self) -> float:
        conn = self.connect()
        try:
            return min(self.once(conn) for _ in range(3))
        finally:
            conn.close()

    def __enter__(self) -> ReadyzProbe:
        self._thread.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        deadline = time.monotonic() + 2.0
        while len(self.latencies) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)  # enough samples around the request to speak of a median
        self._stop.set()
        self._thread.join(15)

    def check(self) -> None:
        """Under 100 ms during (the median: the machine's 2 cores are shared with other work) and
        after (the best of three), never over 1 s."""
        assert not self.failures, self.failures
        ordered = sorted(self.latencies)
        assert ordered, "no /readyz answered during the request"
        assert ordered[len(ordered) // 2] < 0.1 and ordered[-1] < 1.0, f"/readyz during: {ordered}"
        assert self.best_after() < 0.1, "/readyz after"


@contextlib.contextmanager
def _tls(server: ApiServerProcess, timeout: float) -> Iterator[ssl.SSLSocket]:
    """A raw TLS connection to the server, for requests no HTTP client would send."""
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        yield sock


def _send(server: ApiServerProcess, method: str, path: str, headers: dict[str, str], body: bytes, *,
          chunked: bool = False) -> tuple[int, dict[str, object], float]:
    """One request on a raw TLS socket, tolerating a server that closes before the body is sent;
    returns (status, parsed JSON body, seconds until the answer)."""
    start = time.monotonic()
    with _tls(server, 30) as sock:
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {server.token}",
                *(f"{k}: {v}" for k, v in headers.items())]
        head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            for i in range(0, len(body), 256 * 1024):
                piece = body[i:i + 256 * 1024]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the server answered and closed early: read its answer
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        header, _, rest = data.partition(b"\r\n\r\n")
        lines = header.decode().split("\r\n")
        status = int(lines[0].split()[1])
        length = next(int(h.split(":", 1)[1]) for h in lines[1:] if h.lower().startswith("content-length"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return status, json.loads(rest[:length]), time.monotonic() - start


@pytest.mark.parametrize(("method", "path", "headers", "body", "code", "text"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_4xx_naming_the_problem(server: ApiServerProcess, method: str, path: str,
                                              headers: dict[str, str], body: bytes, code: int, text: str) -> None:
    rss_before = _rss_kib(server)
    with ReadyzProbe(server) as probe:
        status, doc, _ = _send(server, method, path, headers, body)
    assert status == code, doc
    assert doc["kind"] == "Status" and doc["code"] == code
    assert text in str(doc["message"]), doc["message"]
    probe.check()
    assert _rss_kib(server) - rss_before < 64 * 1024, "RSS grew by more than 64 MiB"
    status, victim = server.raw("GET", CM + "/victim")
    assert status == 200 and json.loads(victim)["data"] == {"a": "b"}


def test_large_valid_yaml_is_parsed_off_the_event_loop(server: ApiServerProcess) -> None:
    """100,000 keys (about 2 MB of YAML, a few hundred ms of parsing): stored, while /readyz answers."""
    body = ("metadata: {name: big-yaml}\ndata:\n" + "".join(f"  k{i:06d}: v{i}\n" for i in range(100_000))).encode()
    assert len(body) < LIMIT
    with ReadyzProbe(server) as probe:
        status, doc, _ = _send(server, "POST", CM, YAML, body)
    assert status == 201, doc
    data = doc["data"]
    assert isinstance(data, dict) and len(data) == 100_000
    probe.check()


@pytest.mark.parametrize("how", ["server-side-apply", "merge-patch"])
def test_large_patches_are_merged_off_the_event_loop(server: ApiServerProcess, how: str) -> None:
    """A ConfigMap of 60,000 keys (900 KB) applied by one manager, then taken over by another
    (server-side apply settles the ownership of every key: seconds of work), or merge-patched
    whole: stored, while /readyz answers (it waited 2 s for the apply on the event loop)."""
    name = f"big-{how}"

    def body(value: str) -> bytes:
        return _json({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                      "data": {f"k{i:05d}": value for i in range(60_000)}})

    if how == "server-side-apply":
        apply = {"Content-Type": "application/apply-patch+yaml"}
        status, doc, _ = _send(server, "PATCH", f"{CM}/{name}?fieldManager=first", apply, body("a"))
        assert status == 201, doc
        with ReadyzProbe(server) as probe:
            status, doc, _ = _send(server, "PATCH", f"{CM}/{name}?fieldManager=second&force=true", apply, body("b"))
    else:
        status, doc, _ = _send(server, "POST", CM, JSON, body("a"))
        assert status == 201, doc
        with ReadyzProbe(server) as probe:
            status, doc, _ = _send(server, "PATCH", f"{CM}/{name}", MERGE, body("b"))
    assert status == 200, doc
    assert isinstance(doc["data"], dict) and set(doc["data"].values()) == {"b"} and len(doc["data"]) == 60_000
    probe.check()
    assert server.raw("DELETE", f"{CM}/{name}")[0] == 200


def test_a_long_label_selector_is_answered(server: ApiServerProcess) -> None:
    """A selector of 800 terms makes a request line of about 20 KB: kube-apiserver takes up to
    1 MiB (aiohttp's default limit of 8 KiB answered a plain-text 400)."""
    terms = ",".join(f"k{i}!=v{i}" for i in range(800))
    status, raw = server.raw("GET", f"{CM}?labelSelector={terms}")
    assert status == 200 and json.loads(raw)["kind"] == "ConfigMapList", (status, raw[:200])
    status, raw = server.raw("GET", f"{CM}?labelSelector={terms},k%20in")
    assert status == 400 and json.loads(raw)["kind"] == "Status", (status, raw[:200])


def test_negative_limit_means_no_limit(server: ApiServerProcess) -> None:
    status, raw = server.raw("GET", CM + "?limit=-1")
    doc = json.loads(raw)
    assert status == 200 and doc["items"] and "continue" not in doc["metadata"]


def test_huge_body_refused_from_its_length_without_reading_it(server: ApiServerProcess) -> None:
    """A 50 MB Content-Length is answered before the body arrives (the body is never sent here)."""
    with _tls(server, 10) as sock:
        sock.sendall(f"POST {CM} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {50 * 1024 * 1024}\r\n\r\n".encode())
        answer = sock.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert f"limit is {LIMIT}" in answer


def test_unauthenticated_large_body_is_not_read(server: ApiServerProcess) -> None:
    start = time.monotonic()
    with _tls(server, 10) as sock:
        sock.sendall(f"POST {CM} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {2 * 1024 * 1024}\r\n\r\n".encode())
        answer = sock.recv(65536).decode(errors="replace")
        assert answer.startswith("HTTP/1.1 401"), answer[:200]
        rest = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                rest += chunk
    assert time.monotonic() - start < 5, "the server closed the connection instead of waiting for the body"


def test_chunked_body_over_the_limit_is_cut_off(server: ApiServerProcess) -> None:
    body = b'{"metadata":{"name":"chunky"},"data":{"a":"' + b"x" * (LIMIT + 1) + b'"}}'
    status, doc, _ = _send(server, "POST", CM, JSON, body, chunked=True)
    assert status == 413 and f"limit is {LIMIT}" in str(doc["message"])
    assert server.raw("GET", CM + "/chunky")[0] == 404


def test_a_bad_write_never_fails_concurrent_good_writes(server: ApiServerProcess) -> None:
    """YAML maps with integer keys (stringified as sigs.k8s.io/yaml does) and wrongly typed
    metadata, sent alongside good writes: every good write is stored."""
    bad = [(YAML, f"metadata: {{name: intkey-{i}}}\ndata: {{1: one, true: 'yes'}}\n".encode()) for i in range(20)]
    bad += [(JSON, _json({"metadata": {"name": f"typed-{i}", "generateName": 5}})) for i in range(20)]
    good = [(JSON, _json({"metadata": {"name": f"good-{i}"}, "data": {"i": str(i)}})) for i in range(40)]
    mixed = [x for pair in zip(bad, good, strict=True) for x in pair]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda hb: server.raw("POST", CM, hb[1], headers=hb[0]), mixed))
    statuses = [s for s, _ in results]
    assert 500 not in statuses
    for i in range(40):
        status, raw = server.raw("GET", f"{CM}/good-{i}")
        assert status == 200 and json.loads(raw)["data"] == {"i": str(i)}
    status, raw = server.raw("GET", f"{CM}/intkey-0")
    assert status == 200 and json.loads(raw)["data"] == {"1": "one", "true": "yes"}
    assert server.raw("GET", f"{CM}/typed-0")[0] == 404
