"""A platform installed on lab hosts, for the upgrade's acceptance tests and `bench/upgrade`.

Each lab host (`tests/support/hostlab.py`: netns, own PID namespace, real sshd) gets private
copies of the directories of the on-host layout (`installer/hostlayout.py`: /usr/local/bin,
/etc/dvp, /var/lib/dvp, /run/dvp, /var/log/dvp, /etc/init.d) and of libvirt's, bind-mounted in
its mount namespace, and runs its own libvirtd + virtlogd there: VMs' tap devices then join the
host's own VM bridge in its netns, QEMU runs in its PID namespace, and everything dies with the
host. The directories are plain folders under the lab's work directory, so a test reads the
host's files from outside (`LabNode.path("/var/lib/dvp/server/kubeconfig")`).

`install_by_hand()` installs a `dvp` binary exactly as the layout says (the binary, the service
init script rendered from the playbooks' own template, the agent config, the service started);
`install_config()` writes the install config `dvp upgrade --config` reads. `/var/cache/dvp`
(where the single binary unpacks itself) is private too, and `binary_env()` gives the binaries
run by the test a cache directory of their own: the install tests clean the real one.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from installer import hostlayout
from tests.services.libvirtd import prepare_host
from tests.services.processes import RUN_DIR, locked
from tests.support.hostlab import HostLab, LabHost

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = {
    "/etc": ("dvp", "init.d", "libvirt/qemu"), "/var/lib": ("dvp", "libvirt"), "/var/log": ("dvp", "libvirt"),
    "/run": ("dvp", "libvirt"), "/var/cache": ("dvp", "libvirt"),
}
"""Parents overlaid in the host's mount namespace, with these children private (opaque, empty at
first). Overlaying the parent, not bind-mounting the child, matters: other test runs on this
machine may delete a real /etc/dvp or /var/lib/dvp, and deleting a directory that is a mount
point in another namespace silently detaches that mount there."""
BINDS = {hostlayout.BIN_DIR: "bin"}
"""Directories nobody deletes, replaced by private ones."""
HOSTLAB_FILES = ("hosts", "passwd", "shadow", "group", "sudoers")


@dataclass
class LabNode:
    host: LabHost
    root: Path
    role: str

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def node(self) -> str:
        return self.host.hostname

    def path(self, inside: str) -> Path:
        """Where a path of the host's layout lives as seen from the test."""
        for prefix, name in BINDS.items():
            if inside == prefix or inside.startswith(prefix + "/"):
                return self.root / name / inside[len(prefix):].lstrip("/")
        for parent, children in OVERLAYS.items():
            for child in children:
                prefix = f"{parent}/{child}"
                if inside == prefix or inside.startswith(prefix + "/"):
                    return self.root / "ov" / parent.strip("/").replace("/", "-") / "upper" / inside[len(parent):].lstrip("/")
        raise ValueError(f"{inside} is not in a private directory of the lab host")

    def write(self, inside: str, data: bytes, *, mode: int = 0o644) -> None:
        """Write a file through the host's own view (an overlay's upper directory must not be
        changed behind the overlay's back)."""
        done = subprocess.run(self.host.nsenter("/bin/sh", "-c", f"cat > {inside} && chmod {mode:o} {inside}"),
                              input=data, capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: writing {inside} failed: {done.stderr.decode(errors='replace')}")

    def sh(self, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.host.nsenter("/bin/sh", "-c", script), capture_output=True, text=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"{self.name}: `{script}` failed: {done.stderr.strip() or done.stdout.strip()}")
        return done


class UpgradeLab:
    def __init__(self, *, workers: int = 0, lan: bool | None = None, fresh: bool = False) -> None:
        self.fresh = fresh
        """dvp's own directories absent at first (overlay whiteouts), as on a host nobody installed on
        (the install's preflight refuses leftovers); otherwise empty, as `install_by_hand` expects."""
        self.lab = HostLab(prefix=None, lan=workers > 0 if lan is None else lan)  # a cluster's hosts share a LAN
        self.nodes: list[LabNode] = []
        try:
            with locked(RUN_DIR / "libvirt" / "ctl.lock"):
                prepare_host()  # the qemu.conf every test libvirtd runs with (root, no security driver)
            self.nodes.append(self._node("m", "master"))
            for i in range(workers):
                self.nodes.append(self._node(f"w{i}", "worker"))
        except BaseException:
            self.close()
            raise

    @property
    def master(self) -> LabNode:
        return self.nodes[0]

    def add_worker(self, short: str) -> LabNode:
        """One more lab host with role worker (for a later install run to join)."""
        with locked(RUN_DIR / "libvirt" / "ctl.lock"):
            prepare_host()
        node = self._node(short, "worker")
        self.nodes.append(node)
        return node

    def _node(self, short: str, role: str) -> LabNode:
        host = self.lab.add_host(short, hostname=f"upg-{short}-{self.lab.prefix[-4:]}")
        root = self.lab.workdir / short / "root"
        mounts = []
        for parent, children in OVERLAYS.items():
            ov = root / "ov" / parent.strip("/").replace("/", "-")
            (ov / "work").mkdir(parents=True)
            for child in children:
                (ov / "upper" / child).parent.mkdir(parents=True, exist_ok=True)
                if self.fresh and child == "dvp":
                    os.mknod(ov / "upper" / child, stat.S_IFCHR | 0o600, os.makedev(0, 0))  # a whiteout: absent
                    continue
                (ov / "upper" / child).mkdir()
                os.setxattr(ov / "upper" / child, "trusted.overlay.opaque", b"y")
            mounts.append(f"mount -t overlay overlay -o lowerdir={parent},upperdir={ov / 'upper'},"
                          f"workdir={ov / 'work'} {parent}")
        for name in HOSTLAB_FILES:  # hostlab's own binds, hidden by the /etc overlay: put them back
            mounts.append(f"mount --bind {host.dir / 'etc' / name} /etc/{name}")
        for inside, name in BINDS.items():
            (root / name).mkdir(parents=True, exist_ok=True)
            mounts.append(f"mount --bind {root / name} {inside}")
        node = LabNode(host, root, role)
        node.sh(" && ".join(mounts))
        node.sh("virtlogd -d -p /run/libvirt/virtlogd.pid && libvirtd -d -p /run/libvirt/libvirtd.pid")
        sock = node.path("/run/libvirt/libvirt-sock")
        deadline = time.monotonic() + 30
        while not sock.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"libvirtd of lab host {short} did not start")
            time.sleep(0.1)
        node.sh("until virsh -c qemu:///system -q list >/dev/null 2>&1; do sleep 0.2; done")
        return node

    # -- installing a version by hand, per installer/hostlayout.py ---------------------------------
    def _init_script(self, name: str, args: str) -> str:
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        template = env.from_string((REPO / "playbooks/roles/dvp_service/templates/dvp.init.j2").read_text())
        return template.render(ansible_managed="written by tests/support/upgradelab.py", dvp_service_name=name,
                               dvp_service_args=args,
                               dvp_layout={"binary": hostlayout.BINARY, "run_dir": hostlayout.RUN_DIR,
                                           "log_dir": hostlayout.LOG_DIR})

    def install_by_hand(self, binary: Path) -> None:
        m = self.master
        for n in self.nodes:
            target = n.path(hostlayout.BINARY)
            target.write_bytes(binary.read_bytes())
            target.chmod(0o755)
        agent = {"node-ip": m.host.address, "state-dir": hostlayout.STATE_DIR, "run-dir": hostlayout.RUN_DIR}
        m.write(hostlayout.AGENT_CONFIG, yaml.safe_dump(agent).encode())
        args = (f"server --data-dir {hostlayout.SERVER_DATA_DIR} --listen 0.0.0.0:6443 --advertise-address "
                f"{m.host.address} --dvcr-listen 0.0.0.0:5443 --agent-config {hostlayout.AGENT_CONFIG}")  # as server.yaml.j2
        m.write(hostlayout.service_paths("dvp-server").init_script, self._init_script("dvp-server", args).encode(),
                mode=0o755)
        m.sh(hostlayout.service_command("dvp-server", "start"))
        self.wait_ready(m)
        if len(self.nodes) > 1:
            raise NotImplementedError("agent hosts are joined by `dvp install`")

    def wait_ready(self, node: LabNode, timeout: float = 120) -> None:
        kubeconfig = node.path(hostlayout.ADMIN_KUBECONFIG)
        deadline = time.monotonic() + timeout
        log = node.path(hostlayout.service_paths("dvp-server").log_file)
        while True:
            if kubeconfig.exists() and "dvp agent: node" in (log.read_text(errors="replace") if log.exists() else ""):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"dvp-server on {node.name} not ready; log:\n"
                                   f"{log.read_text(errors='replace')[-3000:] if log.exists() else '(none)'}")
            time.sleep(0.2)

    def install_config(self, path: Path, *, nodes: list[LabNode] | None = None,
                       checks: dict[str, Any] | None = None) -> Path:
        """The install config naming `nodes` (default: every host of the lab)."""
        known = self.lab.workdir / "known_hosts"
        known.write_text(self.lab.known_hosts())
        doc: dict[str, Any] = {
            "apiVersion": "dvp.deckhouse.io/v1alpha1", "kind": "InstallConfig", "target": "embedded",
            "ssh": {"user": "root", "privateKeyFiles": [str(self.lab.client_key)], "useAgent": False,
                    "knownHostsFile": str(known)},
            "hosts": [{"address": n.host.address, "name": n.name, "role": n.role} for n in (nodes or self.nodes)],
            "cluster": {"internalNetworkCIDRs": [str(self.lab.subnet)], "podSubnetCIDR": "172.30.0.0/16",
                        "serviceSubnetCIDR": "172.31.0.0/16"},  # the lab's 10.200-250.x.0/24 may hit the defaults
            "virtualization": {"virtualMachineCIDRs": ["10.66.0.0/16"]},
        }
        if checks is not None:
            doc["checks"] = checks
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def binary_env(self) -> dict[str, str]:
        cache = self.lab.workdir / "dvp-cache"
        cache.mkdir(exist_ok=True)
        return {**os.environ, "DVP_CACHE_DIR": str(cache)}

    @property
    def kubeconfig(self) -> Path:
        return self.master.path(hostlayout.ADMIN_KUBECONFIG)

    def boot_vms(self, image: Path, count: int, *, namespace: str = "bench", timeout: float = 300) -> list[str]:
        """`count` VMs (volume + instance each) on the master, booted and answering HTTP; their IPs."""
        from controlplane.common.kube.client import NAMESPACES, KubeClient
        from controlplane.nodehandler.context import INSTANCES, VOLUMES
        from tests.integration.nodehandler.support import instance, volume, wait_for

        kube = KubeClient.from_kubeconfig(self.kubeconfig)
        if kube.get_or_none(NAMESPACES, namespace) is None:
            kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        node, ips = self.master.node, []
        for i in range(count):
            name, ip, mac = f"vm-{i}", f"10.66.0.{40 + i}", f"52:54:00:6b:00:{i:02x}"
            kube.create(VOLUMES, volume(f"{name}-root", node, "64Mi", image_ref=f"file://{image}", namespace=namespace))
            kube.create(INSTANCES, instance(name, node, namespace=namespace, disks=[{"name": "root", "volume": {
                "name": f"{name}-root"}}], nics=[{"name": "default", "mac": mac, "ip": ip}]))
            ips.append(ip)
        wait_for(lambda: all(self.uptimes(self.master, ips).values()), timeout=timeout, every=1,
                 what=f"{count} guests answering")
        return ips

    def probe(self, node: LabNode, ips: list[str], *, every: float = 0.1) -> subprocess.Popen[bytes]:
        """Probe the guests from inside the host until the returned process's stdin is closed."""
        return subprocess.Popen(node.host.nsenter("env", f"PYTHONPATH={REPO}", str(REPO / ".venv/bin/python"), "-m",
                                                  "tests.support.guestprobe", "--every", str(every), *ips),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def uptimes(self, node: LabNode, ips: list[str]) -> dict[str, float | None]:
        done = subprocess.run(node.host.nsenter("env", f"PYTHONPATH={REPO}", str(REPO / ".venv/bin/python"), "-m",
                                                "tests.support.guestprobe", "--count", "1", "--timeout", "5", *ips),
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"guest probe failed: {done.stderr.strip()[-500:]}")
        return {d["ip"]: d["uptime"] for d in map(json.loads, done.stdout.splitlines())}

    def close(self) -> None:
        self.lab.close()  # PID namespaces end: sshd, dvp, libvirtd and QEMU of every host die with them
