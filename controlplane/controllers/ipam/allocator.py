"""Address arithmetic of IPAM: lease names, the usable range of each subnet, and picking a
free address. Never handed out: a subnet's network and broadcast addresses (its first and
last), and its first host address, which the node handlers' VM bridge uses as the guests'
gateway and DHCP server."""

from __future__ import annotations

import ipaddress
import threading
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


def candidates(networks: Iterable[Network], start: int = 0) -> Iterable[str]:
    """The usable addresses in order, from the `start`-th on."""
    for net in networks:
        first, last = int(net.network_address) + 2, int(net.broadcast_address) - 1
        if start > last - first:
            start -= last - first + 1
            continue
        for n in range(first + start, last + 1):
            yield str(ipaddress.ip_address(n))
        start = 0


def pick_from(networks: list[Network], taken: Callable[[str], bool], start: int = 0, *,
              limit: int = 1 << 20) -> tuple[str | None, int]:
    """The lowest address from the `start`-th candidate on that no lease holds, and its position."""
    for i, address in enumerate(candidates(networks, start), start):
        if i >= limit:
            break
        if not taken(address):
            return address, i
    return None, start


def pick(networks: list[Network], taken: Callable[[str], bool], *, limit: int = 1 << 20) -> str | None:
    """The lowest address no lease holds."""
    return pick_from(networks, taken, 0, limit=limit)[0]


class LowestFree:
    """Where the search for the lowest free address may start: every candidate before it was
    found taken or handed out, and stays so until a lease is deleted (`forget`). Picking thus
    costs O(1) per allocation instead of a scan of every leased address, and two workers never
    draw the same address while the first one's lease is not yet in their cache (a lost claim
    and a retry later). An address handed out whose claim then failed for another reason is
    only drawn again after the next `forget`."""

    def __init__(self) -> None:
        self._start = 0
        self._lock = threading.Lock()

    def pick(self, networks: list[Network], taken: Callable[[str], bool]) -> str | None:
        with self._lock:  # cache lookups only: cheap enough to hold the lock while searching
            address, i = pick_from(networks, taken, self._start)
            if address is None and self._start:
                address, i = pick_from(networks, taken, 0)
            if address is not None:
                self._start = i + 1
            return address

    def forget(self) -> None:
        """A lease went away: lower addresses may be free again."""
        with self._lock:
            self._start = 0
