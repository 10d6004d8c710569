"""Lab hosts between which domains migrate live: the upgrade lab's hosts (own namespaces, own
libvirtd + virtlogd, private /var/lib/dvp and libvirt directories), each libvirtd also listening
on `qemu+tls://<host address>:16514` as the install makes it (docs/live-migration.md): a server and
a client certificate per host from a lab CA (controlplane/common/libvirt_pki.py, the code
`dvp libvirt-cert` runs), only node certificates admitted, the same pairs as QEMU's migration TLS
(so migrations here are `VIR_MIGRATE_TLS`, as on installed hosts); and every two hosts joined by a direct
veth link with /32 routes, so they reach each other's address the way hosts of one lab network
do (the root namespace does not forward).

`boot_domain()` starts on one host the very domain XML the node handler builds for an instance
(domainxml.py): a volume copied from the guest image, an empty data volume, the NoCloud seed in
the instance directory, serial log and VNC socket at the layout's paths — everything a migration
has to carry.

Each host's certificates live in a directory of the lab (`pki_dir(node)`), the same path inside
the host's namespaces and for the test: the source libvirtd opens the migration URI itself
(peer-to-peer), and the test, as a node handler, opens the same URI. The test's own connections
(`uri(node)`) use a client certificate of the lab CA too (`client_pki`).
"""

from __future__ import annotations

import shlex
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt

from controlplane.api.instance import parse_instance
from controlplane.api.internal import DomainType
from controlplane.common import pki
from controlplane.common.libvirt_pki import LibvirtPki, copy_for_qemu, ensure_libvirt_pki
from controlplane.nodehandler.cloudinit_seed import SeedData, build_seed
from controlplane.nodehandler.domainxml import DomainInputs, ResolvedDisk, build_domain_xml
from controlplane.nodehandler.layout import Layout
from controlplane.nodehandler.migration import LIBVIRT_TLS_PORT, target_uri
from controlplane.nodehandler.network import gateway_mac
from tests.support.hostlab import _run
from tests.support.upgradelab import LabNode, UpgradeLab

LAYOUT = Layout(state_dir=Path("/var/lib/dvp"), run_dir=Path("/run/dvp"))
PREFIX = "dvp-"
BRIDGE = "dvpmig0"
BRIDGE_GATEWAY = "10.77.0.1"


@dataclass
class LabDomain:
    uid: str
    name: str
    node: LabNode
    xml: str
    volumes: tuple[str, ...]

    @property
    def serial_log(self) -> str:
        return str(LAYOUT.serial_log(self.uid))


class MigrateLab(UpgradeLab):
    def __init__(self, *, hosts: int = 2) -> None:
        super().__init__(workers=hosts - 1)
        try:
            self.ca = pki.ensure_ca(self.lab.workdir / "libvirt-ca", common_name="dvp-migratelab-ca")
            self.client_pki = self.lab.workdir / "client-pki"
            ensure_libvirt_pki(self.ca, self.client_pki, node_name="migratelab-test", address="")
            for node in self.nodes:
                self._listen(node)
            for i, a in enumerate(self.nodes):
                for b in self.nodes[i + 1:]:
                    self._link(a, b)
        except BaseException:
            self.close()
            raise

    def pki_dir(self, node: LabNode) -> Path:
        """The host's libvirt certificates (libvirt's pkipath: cacert.pem, client and server pairs)."""
        return node.root / "pki" / "libvirt"

    def qemu_pki_dir(self, node: LabNode) -> Path:
        """The same certificates under QEMU's names: qemu.conf's migrate_tls_x509_cert_dir (the
        lab host's own copy of qemu.conf: written inside its /etc overlay), so migrations run with
        `VIR_MIGRATE_TLS` as installed hosts' do."""
        return node.root / "pki" / "qemu-migration"

    def _listen(self, node: LabNode) -> None:
        """Restart the host's libvirtd listening on TLS at the host's address, with QEMU's
        migration TLS, as the install does."""
        ensure_libvirt_pki(self.ca, self.pki_dir(node), node_name=node.node, address=node.host.address)
        copy_for_qemu(self.pki_dir(node), self.qemu_pki_dir(node))
        line = f'migrate_tls_x509_cert_dir = "{self.qemu_pki_dir(node)}"'
        node.sh(r"sed -i '/^\s*migrate_tls_x509_cert_dir\s*=/d' /etc/libvirt/qemu.conf && "
                f"echo {shlex.quote(line)} >> /etc/libvirt/qemu.conf")
        conf = node.host.dir / "libvirtd-tls.conf"
        conf.write_text(f'listen_tls = 1\nlisten_tcp = 0\nlisten_addr = "{node.host.address}"\n'
                        f'tls_port = "{LIBVIRT_TLS_PORT}"\n' + LibvirtPki(self.pki_dir(node)).conf_lines())
        node.sh("pid=$(cat /run/libvirt/libvirtd.pid); kill $pid; while kill -0 $pid 2>/dev/null; do sleep 0.1; done; "
                f"libvirtd -d --listen -f {conf} -p /run/libvirt/libvirtd.pid")
        deadline = time.monotonic() + 30
        while True:
            try:
                libvirt.open(self.uri(node)).close()
                return
            except libvirt.libvirtError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _link(self, a: LabNode, b: LabNode) -> None:
        name = f"{self.lab.prefix}{a.name}{b.name}"[:13]
        _run("ip", "link", "add", f"{name}a", "type", "veth", "peer", "name", f"{name}b")
        for end, node, other in ((f"{name}a", a, b), (f"{name}b", b, a)):
            _run("ip", "link", "set", end, "netns", node.host.netns)
            _run("ip", "-n", node.host.netns, "link", "set", end, "up")
            _run("ip", "-n", node.host.netns, "route", "add", f"{other.host.address}/32", "dev", end, "src",
                 node.host.address)

    def uri(self, node: LabNode) -> str:
        return target_uri(node.host.address, pki_dir=self.client_pki)

    def conn(self, node: LabNode) -> libvirt.virConnect:
        return libvirt.open(self.uri(node))

    # -- a node handler's domain -----------------------------------------------------------------
    def bridge(self, node: LabNode, *, dhcp: dict[str, str] | None = None) -> None:
        """The VM bridge on `node` (same name, gateway and MAC on every host), with dnsmasq handing out
        `dhcp` (MAC -> IP) when given."""
        node.sh(f"ip link add {BRIDGE} address {gateway_mac(BRIDGE_GATEWAY)} type bridge && "
                f"ip addr add {BRIDGE_GATEWAY}/24 dev {BRIDGE} && "
                f"ip link set {BRIDGE} up")
        if dhcp:
            hosts = " ".join(f"--dhcp-host={mac},{ip}" for mac, ip in dhcp.items())
            node.host.spawn("dnsmasq", "-k", "--conf-file=/dev/null", f"--interface={BRIDGE}", "--except-interface=lo",
                            "--bind-dynamic", "--port=0", "--user=root", "--group=root",
                            f"--dhcp-range={BRIDGE_GATEWAY.rsplit('.', 1)[0]}.0,static,255.255.255.0,12h",
                            "--dhcp-authoritative", f"--dhcp-leasefile={node.host.dir / 'leases'}",
                            f"--log-facility={node.host.dir / 'dnsmasq.log'}", "--log-dhcp", *hosts.split())

    def boot_domain(self, node: LabNode, image: Path, *, name: str = "vm", namespace: str = "mig",
                    memory: str = "128Mi", data_size: str = "32M", data_fill_mib: int = 0, user_data: str = "",
                    nic: tuple[str, str] | None = None, data_snapshot: bool = False) -> LabDomain:
        """A domain as the node handler builds it; `data_fill_mib` MiB of pattern written into the data
        volume (a copy has real bytes to move); `nic`: (MAC, IP) on the lab bridge; `data_snapshot`:
        the data volume an overlay on a snapshot's file holding that pattern (volume_chain.py)."""
        uid = str(uuid.uuid4())
        root = LAYOUT.volume(namespace, f"{name}-root", str(uuid.uuid4()))
        data = LAYOUT.volume(namespace, f"{name}-data", str(uuid.uuid4()))
        fill = f" && qemu-io -f qcow2 -c 'write -P 0x5a 0 {data_fill_mib}M' {data} >/dev/null" if data_fill_mib else ""
        if data_snapshot:
            snap = LAYOUT.volume(namespace, f"{name}-snap", str(uuid.uuid4()))
            fill += f" && mv {data} {snap} && qemu-img create -q -f qcow2 -F qcow2 -b {snap} {data}"
        node.sh(f"mkdir -p {root.parent} && qemu-img convert -O qcow2 {image} {root} && "
                f"qemu-img create -q -f qcow2 {data} {data_size}{fill}")
        raw: dict[str, Any] = {"nodeName": node.node, "cpu": {"cores": 1}, "memory": {"size": memory},
                                "disks": [{"name": "root", "volume": {"name": f"{name}-root"}},
                                          {"name": "data", "volume": {"name": f"{name}-data"}}]}
        if nic:
            raw["nics"] = [{"name": "default", "mac": nic[0], "ip": nic[1]}]
        obj = {"metadata": {"name": name, "namespace": namespace, "uid": uid}, "spec": raw}
        spec = parse_instance(obj)
        with tempfile.TemporaryDirectory() as tmp:
            seed = build_seed(SeedData(instance_id=uid, local_hostname=name, user_data=user_data), Path(tmp) / "seed")
            node.sh(f"mkdir -p {LAYOUT.instance_dir(uid)} {LAYOUT.run_dir / 'vnc'}")
            node.write(str(LAYOUT.seed(uid)), seed.read_bytes())
        xml = build_domain_xml(DomainInputs(
            name=f"{PREFIX}{namespace}_{name}", uid=uid, namespace=namespace, instance=name, node=node.node,
            generation=1, domain_type=DomainType.QEMU, spec=spec,
            disks=(ResolvedDisk(spec=spec.disks[0], path=root, format="qcow2"),
                   ResolvedDisk(spec=spec.disks[1], path=data, format="qcow2")),
            bridges={"default": BRIDGE}, seed=LAYOUT.seed(uid), serial_log=LAYOUT.serial_log(uid), vnc_socket=LAYOUT.vnc_socket(uid),
            cpu_quota=False))
        conn = self.conn(node)
        try:
            conn.createXML(xml, 0)
            conn.defineXML(xml)
        finally:
            conn.close()
        return LabDomain(uid=uid, name=f"{PREFIX}{namespace}_{name}", node=node, xml=xml,
                         volumes=(str(root), str(data)))

    def wait_marker(self, dom: LabDomain, node: LabNode, *, timeout: float = 180) -> str:
        path = node.path(dom.serial_log)
        deadline = time.monotonic() + timeout
        while True:
            text = path.read_text(errors="replace") if path.exists() else ""
            if "DVP-GUEST-READY" in text:
                return text
            if time.monotonic() > deadline:
                raise TimeoutError(f"guest of {dom.name} not ready on {node.name} in {timeout:.0f}s:\n{text[-1500:]}")
            time.sleep(0.3)

    def exists(self, node: LabNode, path: str) -> bool:
        return node.sh(f"test -e {path}", check=False).returncode == 0
