"""Phase "verify": fetch the admin kubeconfig from the master, then ask the API what a user
would: does it answer, are all hosts' Nodes Ready, are the virtualization CRDs served.

The kubeconfig is read over the installer's own SSH layer (as root, with sudo when needed) and
written to `<state dir>/kubeconfig` (0600) for the user.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from installer import hostlayout
from installer.config.models import Host, InstallConfig
from installer.ssh.bastion import BastionPool
from installer.ssh.errors import SSHError
from installer.ssh.hostkeys import KnownHosts
from installer.ssh.sudo import elevate
from installer.ssh.target import target_for

REQUIRED_CRD_GROUP = "virtualization.deckhouse.io"
REQUIRED_KINDS = ("VirtualMachine", "VirtualDisk", "VirtualImage", "ClusterVirtualImage", "VirtualMachineClass")


class VerifyError(Exception):
    """The platform does not answer as it should; the message says what was observed."""


@dataclass
class VerifyResult:
    api_url: str
    nodes: dict[str, bool]
    crds: list[str]


def read_remote_file(config: InstallConfig, host: Host, path: str, *, accept_new_host_keys: bool = False) -> bytes:
    """A root-readable file of `host`, through SSH (or locally for localhost)."""
    from installer.checks.session import connect

    target = target_for(config, host, accept_new_host_keys=accept_new_host_keys)
    known = KnownHosts(config.ssh.known_hosts_file, accept_new=target.accept_new_host_keys)
    bastions = BastionPool(known)
    try:
        conn = connect(target, known_hosts=known, bastions=bastions)
        try:
            probe = conn.run("id -u; id -un", what=f"who am I on {target.name}")
            uid, user = (probe.out.split() + ["", ""])[:2]
            proc, _ = elevate(conn, f"cat {path}", is_root=uid == "0", user=user,
                              sudo_password=target.sudo_password, deadline=time.monotonic() + target.command_timeout)
            proc.close_stdin()
            res = proc.result(time.monotonic() + target.command_timeout, what=f"reading {path} on {target.name}")
        finally:
            conn.close()
    finally:
        bastions.close()
    if not res.ok:
        raise VerifyError(f"host {target.name}: cannot read {path}: {res.err.strip()[-300:]}")
    return bytes(res.stdout)


def fetch_kubeconfig(config: InstallConfig, master: Host, dest: Path, *, accept_new_host_keys: bool = False) -> Path:
    try:
        data = read_remote_file(config, master, hostlayout.ADMIN_KUBECONFIG, accept_new_host_keys=accept_new_host_keys)
    except SSHError as exc:
        raise VerifyError(f"host {master.display_name}: {exc.message}") from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    tmp.replace(dest)
    return dest


def _ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class _Api:
    """Just enough of a Kubernetes client: GET JSON with the kubeconfig's CA and token."""

    def __init__(self, kubeconfig: Path) -> None:
        import yaml

        doc = yaml.safe_load(kubeconfig.read_text())
        cluster = doc["clusters"][0]["cluster"]
        self.url = str(cluster["server"]).rstrip("/")
        self._token = str(doc["users"][0]["user"]["token"])
        self._ssl = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())

    def get(self, path: str) -> dict[str, Any]:
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self._token}",
                                                               "Accept": "application/json"})
        with urllib.request.urlopen(req, context=self._ssl, timeout=10) as resp:
            data = json.loads(resp.read())
        return data if isinstance(data, dict) else {}


def api_reader(kubeconfig: Path) -> _Api:
    """GET access to the API with a kubeconfig's CA and token (what the install asks the API)."""
    return _Api(kubeconfig)


def verify_api(kubeconfig: Path, expected_nodes: list[str], *, timeout: float = 180.0) -> VerifyResult:
    """Wait (up to `timeout`) until every expected Node is Ready and the CRDs are served."""
    api = _Api(kubeconfig)
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            crds = [c for c in api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
                    .get("items", []) if c["spec"]["group"] == REQUIRED_CRD_GROUP]
            served = sorted(c["metadata"]["name"] for c in crds)
            kinds = {c["spec"]["names"]["kind"] for c in crds}
            missing_kinds = [k for k in REQUIRED_KINDS if k not in kinds]
            nodes = {n["metadata"]["name"]: _ready(n) for n in api.get("/api/v1/nodes").get("items", [])}
            missing = [n for n in expected_nodes if not nodes.get(n)]
            if not missing and not missing_kinds:
                return VerifyResult(api_url=api.url, nodes=nodes, crds=served)
            last = (f"nodes not Ready: {', '.join(missing)} (seen: "
                    f"{', '.join(f'{k}={v}' for k, v in sorted(nodes.items())) or 'none'})" if missing else
                    f"CRDs not served: {', '.join(missing_kinds)}")
        except Exception as exc:  # the API may still be starting: retry until the deadline
            last = f"the API at {api.url} did not answer: {type(exc).__name__}: {str(exc)[:200]}"
        if time.monotonic() > deadline:
            raise VerifyError(f"after {timeout:.0f} s: {last}")
        time.sleep(1.0)
