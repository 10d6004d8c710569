"""A whole one-host platform for end-to-end tests: `dvp server` with its controllers, DVCR and
the in-process node handler on the shared test libvirtd, a VM network of its own, and the
guest test image served over local HTTP — what `make run` sets up, driven through kubectl.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import yaml

from controlplane.common.kube.client import KubeClient, Resource
from controlplane.nodehandler.network import NodeNetwork
from tests.services.apiserver import ApiServerProcess
from tests.services.libvirtd import domain_name_for
from tests.services.nodeagent import (
    allocate_network,
    record_dnsmasq,
    release_network,
    remove_domains,
    write_agent_config,
)

API = "virtualization.deckhouse.io/v1alpha2"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@dataclass
class ImageServer:
    """Plain HTTP serving a directory on loopback (the quick start's image URL)."""

    root: Path
    server: http.server.ThreadingHTTPServer
    thread: threading.Thread

    @classmethod
    def start(cls, root: Path) -> ImageServer:
        handler = functools.partial(_QuietHandler, directory=str(root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return cls(root, server, thread)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PhaseRecorder:
    """Every phase each object went through, from watches (polling could miss a short phase)."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.seen: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def follow(self, res: Resource, namespace: str = "default") -> None:
        threading.Thread(target=self._watch, args=(res, namespace), daemon=True).start()

    def _watch(self, res: Resource, namespace: str) -> None:
        try:
            self._follow(res, namespace)
        except Exception:  # noqa: BLE001 - the server went away at the end of the module
            return

    def _follow(self, res: Resource, namespace: str) -> None:
        for event in self.kube.watch(res, namespace, timeout_seconds=900, bookmarks=False):
            obj = event["object"]
            phase = (obj.get("status") or {}).get("phase")
            if not phase:
                continue
            key = f"{res.kind}/{obj['metadata']['name']}"
            with self._lock:
                phases = self.seen.setdefault(key, [])
                if not phases or phases[-1] != phase:
                    phases.append(phase)

    def phases(self, kind: str, name: str) -> list[str]:
        with self._lock:
            return list(self.seen.get(f"{kind}/{name}", []))


@dataclass
class Platform:
    server: ApiServerProcess
    network: NodeNetwork
    node: str
    state: Path
    images: ImageServer
    conn: libvirt.virConnect
    prefix: str

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> str:
        return self.server.kubectl(*args, check=check, input=input).stdout

    def apply(self, *docs: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))

    def get(self, resource: str, name: str, ns: str = "default") -> dict[str, Any]:
        out = self.server.kubectl("get", resource, name, "-n", ns, "-o", "json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def wait(self, resource: str, name: str, check: Callable[[dict[str, Any]], Any], *, timeout: float = 60,
             what: str = "", ns: str = "default") -> dict[str, Any]:
        """Poll `kubectl get` until `check(obj)` is truthy; the failure shows the last object's status."""
        deadline = time.monotonic() + timeout
        obj: dict[str, Any] = {}
        while time.monotonic() < deadline:
            obj = self.get(resource, name, ns)
            if obj and check(obj):
                return obj
            time.sleep(0.2)
        raise AssertionError(f"{resource}/{name}: {what or 'condition'} not reached in {timeout}s; "
                             f"status: {json.dumps(obj.get('status'), indent=1)[:3000]}")

    def phase(self, resource: str, name: str, phase: str, *, timeout: float = 60, ns: str = "default") -> dict[str, Any]:
        return self.wait(resource, name, lambda o: (o.get("status") or {}).get("phase") == phase, timeout=timeout,
                         what=f"phase {phase}", ns=ns)

    def domains(self) -> list[libvirt.virDomain]:
        """This platform's libvirt domains (its prefix and its node)."""
        found = []
        for dom in self.conn.listAllDomains():
            try:
                if dom.name().startswith(self.prefix) and f"<dvp:node>{self.node}</dvp:node>" in dom.XMLDesc(0):
                    found.append(dom)
            except libvirt.libvirtError:
                continue  # gone between the listing and the look (a transient domain that stopped)
        return found

    def record_phases(self, *resources: Resource) -> PhaseRecorder:
        recorder = PhaseRecorder(KubeClient.from_kubeconfig(self.server.kubeconfig))
        for res in resources:
            recorder.follow(res)
        return recorder

    def serial_log(self, vm: dict[str, Any]) -> Path:
        """The serial console log the node handler keeps for the VM's instance."""
        inst = self.get("internalvirtualmachineinstances.internal.virtualization.deckhouse.io",
                        vm["metadata"]["name"], vm["metadata"]["namespace"])
        state: Path = self.state
        return state / "instances" / str(inst["metadata"]["uid"]) / "serial.log"


def start_platform(tmp: Path, conn: libvirt.virConnect, image_dir: Path, *, extra_args: list[str] | None = None,
                   ) -> Iterator[Platform]:
    """Start the platform in `tmp`, yield it, and tear everything down (domains, bridge, server)."""
    state = tmp / "agent-state"
    network = allocate_network(state)
    suffix = network.bridge[-6:]
    node = f"qs-{suffix}"
    prefix = domain_name_for("")
    config = write_agent_config(tmp / "agent.yaml", node, state, network, "q")
    server = ApiServerProcess(tmp / "data", agent=True, extra_args=[
        "--agent-config", str(config), "--vm-cidr", str(network.subnet), *(extra_args or [])])
    images = ImageServer.start(image_dir)
    try:
        server.start(timeout=60)
        platform = Platform(server, network, node, state, images, conn, prefix)
        platform.wait("nodes", node, lambda n: any(c["type"] == "Ready" and c["status"] == "True"
                                                   for c in n.get("status", {}).get("conditions", [])), ns="", timeout=60)
        record_dnsmasq(network)
        yield platform
    finally:
        server.kill()
        images.stop()
        remove_domains(conn, prefix, node)
        release_network(network)
