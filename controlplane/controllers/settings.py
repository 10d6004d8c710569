"""Platform settings the controllers act on (DVP's ModuleConfig `virtualization` settings,
as far as the embedded target has them). `dvp server` passes them from its flags;
`dvp controller` reads them from its flags or a YAML file."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PlatformSettings:
    virtual_machine_cidrs: tuple[str, ...] = ("10.66.0.0/16",)
    """Subnets VM addresses come from (first and last address of each are never handed out)."""
    namespace: str = "d8-virtualization"
    """Where the platform keeps its own objects (leader lease, settings)."""
    ip_lease_hold_seconds: float = 600.0
    """A released address stays reserved for its namespace this long (DVP: 10 minutes)."""
    mac_address_prefix: str = "02:d8:76"
    """OUI (three octets) automatic MAC addresses start with; locally administered (second hex
    digit 2, 6, a or e) as DVP's OUI is, so no vendor's card can clash with a guest's NIC."""
    upload_wait_seconds: float = 900.0
    """An upload not started within this time fails."""
    dvcr_url: str = ""
    """https://host:port of DVCR; image references are `<host:port>/cvi/<name>:latest`."""
    dvcr_ca_file: str = ""
    dvcr_importer_auth: str = ""
    """Docker-style auth file of DVCR's importer user (push: imports, upload URLs); never logged."""
    dvcr_admin_auth: str = ""
    """Auth file of DVCR's admin user (deleting images, garbage collection)."""
    default_node_selector: dict[str, str] = field(default_factory=dict)
    node_grace_seconds: float = 40.0
    """A node whose Lease is not seen renewed for this long becomes Ready=Unknown (kube's default)."""
    max_clock_skew_seconds: float = 30.0
    """A node's clock further than this from the control plane's: ClockSynchronized=False."""
    parallel_migrations: int = 4
    """Live migrations in flight in the whole cluster at most (besides one out and one in per node)."""
    operation_ttl_seconds: float = 86400.0
    """A finished VirtualMachineOperation or VirtualMachineSnapshotOperation is deleted this long
    after its creation (DVP's GC_VMOP_TTL, 24 h)."""
    operations_kept: int = 10
    """Of the younger finished operations of a VM (of a snapshot), the newest this many are kept
    (DVP's 10)."""

    @property
    def dvcr_address(self) -> str:
        return self.dvcr_url.split("://", 1)[-1].rstrip("/")

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(c, strict=False) for c in self.virtual_machine_cidrs]


def parse_mac_prefix(value: str) -> str:
    """The MAC prefix (OUI) checked and normalised: three octets, `aa:bb:cc` (ValueError says why)."""
    from controlplane.controllers.ipam.mac_allocator import oui

    return oui(value)


def parse_cidrs(values: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """virtualMachineCIDRs checked: each an IPv4 network (the VM network is IPv4: addresses, leases,
    routes), none overlapping another (ValueError says which)."""
    nets = []
    for v in values:
        try:
            nets.append(ipaddress.IPv4Network(v, strict=False))
        except ValueError as exc:
            raise ValueError(f"{v!r} is not an IPv4 CIDR ({exc})") from exc
    for i, a in enumerate(nets):
        for b in nets[i + 1:]:
            if a.overlaps(b):
                raise ValueError(f"{a} overlaps {b}")
    return tuple(str(n) for n in nets)
