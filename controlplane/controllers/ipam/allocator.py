"""Address arithmetic of IPAM: lease names, the usable range of each subnet, and picking a
free address. Never handed out: a subnet's network and broadcast addresses (its first and
last), and its first host address, which the node handlers' VM bridge uses as the guests'
gateway and DHCP server."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def lease_name(address: str) -> str:
    """DVP's lease name for an address: `ip-10-66-0-5` (IPv6: colons become dashes)."""
    return "ip-" + address.replace(".", "-").replace(":", "-")


def address_of_lease(name: str) -> str | None:
    if not name.startswith("ip-"):
        return None
    parts = name[3:].split("-")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return ".".join(parts)
    return None


def usable(address: str, networks: list[Network]) -> Network | None:
    """The subnet that can hand out `address`, or None (outside, or first/last of a subnet)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    for net in networks:
        if ip in net and ip not in (net.network_address, net.broadcast_address, gateway(net)):
            return net
    return None


def gateway(net: Network) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The subnet's first host address: the VM bridge's own address on every node."""
    return net.network_address + 1


def candidates(networks: Iterable[Network]) -> Iterable[str]:
    for net in networks:
        first, last = int(net.network_address) + 2, int(net.broadcast_address) - 1
        for n in range(first, last + 1):
            yield str(ipaddress.ip_address(n))


def pick(networks: list[Network], taken: Callable[[str], bool], *, limit: int = 1 << 20) -> str | None:
    """The lowest address no lease holds."""
    for i, address in enumerate(candidates(networks)):
        if i >= limit:
            break
        if not taken(address):
            return address
    return None
