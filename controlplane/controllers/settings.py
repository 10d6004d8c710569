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

    @property
    def dvcr_address(self) -> str:
        return self.dvcr_url.split("://", 1)[-1].rstrip("/")

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(c, strict=False) for c in self.virtual_machine_cidrs]


def parse_cidrs(values: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """virtualMachineCIDRs checked: each a network, none overlapping another (ValueError says which)."""
    nets = []
    for v in values:
        try:
            nets.append(ipaddress.ip_network(v, strict=False))
        except ValueError as exc:
            raise ValueError(f"{v!r} is not a CIDR ({exc})") from exc
    for i, a in enumerate(nets):
        for b in nets[i + 1:]:
            if a.overlaps(b):
                raise ValueError(f"{a} overlaps {b}")
    return tuple(str(n) for n in nets)
