"""The node handler's whole on-disk layout, in one place.

```
STATE_DIR (default /var/lib/dvp)
├── volumes/<namespace>/<name>.<uid>.qcow2     one file per InternalVirtualDiskVolume
├── images/<key>.img + <key>.json               node image cache: pulled DVCR images (+ format, ref)
├── instances/<uid>/                            per-instance local state (deleted with the instance)
│   ├── seed.iso                                the NoCloud seed (cidata)
│   └── serial.log                              the serial console's output (virtlogd appends)
├── network/<bridge>/                           the VM network's dnsmasq
│   ├── dnsmasq.pid, dnsmasq.log, leases
│   └── dhcp-hosts                              MAC,IP bindings of this node's instances
└── pki/agent.crt, agent.key                    the console endpoint's certificate (when issued here)
    └── libvirt/cacert.pem, {server,client}{cert,key}.pem  libvirtd's migration listener and client
                                                (written by the install: common/libvirt_pki.py)

QEMU_MIGRATION_PKI (/etc/pki/qemu/dvp-migration)
└── ca-cert.pem, {server,client}-{cert,key}.pem  the same certificates under QEMU's names
                                                (qemu.conf migrate_tls_x509_cert_dir): the TLS of
                                                QEMU's migration stream and of the disks' NBD copy

RUN_DIR (default /run/dvp; short, for unix socket paths)
└── vnc/<uid>.sock                              each domain's VNC server (QEMU listens)
```

Volume file names carry the object's uid, so a volume re-created under the same name never
finds the old file. Partial files (`.<name>.partial`) are renamed into place when complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

QEMU_MIGRATION_PKI = Path("/etc/pki/qemu/dvp-migration")
"""Where the install puts QEMU's migration certificates (installer/hostlayout.py, the same path):
under /etc/pki/qemu, which libvirt's AppArmor profile for QEMU may read."""


@dataclass(frozen=True)
class Layout:
    state_dir: Path
    run_dir: Path
    qemu_migration_pki: Path = QEMU_MIGRATION_PKI
    """QEMU's x509 directory for the migration stream and the disks' NBD copy."""

    # -- volumes --------------------------------------------------------------------------------
    @property
    def volumes(self) -> Path:
        return self.state_dir / "volumes"

    def volume(self, namespace: str, name: str, uid: str) -> Path:
        return self.volumes / namespace / f"{name}.{uid}.qcow2"

    @staticmethod
    def partial(path: Path) -> Path:
        return path.with_name(f".{path.name}.partial")

    # -- image cache ----------------------------------------------------------------------------
    @property
    def images(self) -> Path:
        return self.state_dir / "images"

    # -- instances ------------------------------------------------------------------------------
    def instance_dir(self, uid: str) -> Path:
        return self.state_dir / "instances" / uid

    def seed(self, uid: str) -> Path:
        return self.instance_dir(uid) / "seed.iso"

    def serial_log(self, uid: str) -> Path:
        return self.instance_dir(uid) / "serial.log"

    def vnc_socket(self, uid: str) -> Path:
        return self.run_dir / "vnc" / f"{uid}.sock"

    # -- network --------------------------------------------------------------------------------
    def network_dir(self, bridge: str) -> Path:
        return self.state_dir / "network" / bridge

    # -- pki ------------------------------------------------------------------------------------
    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def libvirt_pki(self) -> Path:
        """libvirt's pkipath for migration (cacert.pem, clientcert.pem, clientkey.pem), written by
        the install; the same directory holds the host's libvirtd listener certificate."""
        return self.pki / "libvirt"

    def migration_stream_tls(self) -> bool:
        """The install set up QEMU's migration TLS on this host, so migrations are encrypted."""
        return (self.qemu_migration_pki / "ca-cert.pem").is_file()

    def create(self) -> None:
        for d in (self.volumes, self.images, self.state_dir / "instances", self.pki, self.run_dir / "vnc"):
            d.mkdir(parents=True, exist_ok=True)
        self.pki.chmod(0o700)
