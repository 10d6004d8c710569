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
    dvcr_address: str = ""
    """host:port of DVCR, used in image references (`<address>/cvi/<name>:latest`)."""
    dvcr_auth_file: str = ""
    """Credentials the importer and uploader use to push into DVCR (never logged)."""
    dvcr_ca_file: str = ""
    default_node_selector: dict[str, str] = field(default_factory=dict)

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(c, strict=False) for c in self.virtual_machine_cidrs]
