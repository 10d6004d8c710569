"""MAC arithmetic of IPAM: lease names (DVP's `mac-aa-bb-cc-dd-ee-ff`), the normal form of an
address, the OUI a prefix or cluster UID gives (DVP's rule), and picking a free address under
the platform's prefix. One address, one lease: the lease's name is the address, so the API
server refuses a second claim of it."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

PREFIX = "mac-"
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_UUID = re.compile(r"^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$")
SPACE = 1 << 24  # addresses under one OUI


def normal(address: str) -> str | None:
    """`AA-BB-...` or `aa:bb:...` as `aa:bb:cc:dd:ee:ff`; None if not a MAC address."""
    address = address.strip()
    return address.lower().replace("-", ":") if _MAC.match(address) else None


def lease_name(address: str) -> str:
    return PREFIX + address.lower().replace(":", "-")


def address_of_lease(name: str) -> str | None:
    return normal(name[len(PREFIX):]) if name.startswith(PREFIX) else None


_OUI = re.compile(r"^([0-9a-f]{2})[:.-]?([0-9a-f]{2})[:.-]?([0-9a-f]{2})$")


def oui(prefix: str) -> str:
    """The three octets of a configured prefix (`02:d8:76`, `02-d8-76`, `02d876`), as `aa:bb:cc`;
    a multicast prefix (the first octet odd) is refused: no NIC can have such an address."""
    match = _OUI.match(prefix.strip().lower())
    if not match:
        raise ValueError(f"MAC prefix {prefix!r} must be three octets, e.g. 02:d8:76")
    if int(match.group(1), 16) & 1:
        raise ValueError(f"MAC prefix {prefix!r} is a multicast prefix (its first octet is odd): a NIC needs a "
                         "unicast address, e.g. 02:d8:76")
    return ":".join(match.groups())


def oui_of_cluster(uid: str) -> str:
    """DVP's OUI from a cluster UUID: the first byte pair whose second hex digit makes it a
    locally administered unicast address (2, 6, a, e) starts it; failing that, the UID's first
    three bytes with that digit forced to 2."""
    if not _UUID.match(uid):
        raise ValueError(f"{uid!r} is not a UUID")
    clean = uid.replace("-", "").lower()
    for i in range(len(clean) // 2):
        if clean[2 * i + 1] in "26ae":
            part = clean[2 * i:2 * i + 6]
            part += clean[:6 - len(part)]
            return oui(part)
    return oui(clean[0] + "2" + clean[2:6])


def pick(prefix: str, taken: Callable[[str], bool], *, rng: random.Random | None = None,
         tries: int = 4096) -> str | None:
    """A random free address under the prefix's OUI (DVP draws the last three octets at random);
    after `tries` random misses, the lowest free one, so a nearly full OUI still finds a gap."""
    head, rng = oui(prefix), rng or random.Random()
    for _ in range(tries):
        n = rng.randrange(SPACE)
        address = f"{head}:{n >> 16:02x}:{(n >> 8) & 0xff:02x}:{n & 0xff:02x}"
        if not taken(address):
            return address
    for n in range(SPACE):
        address = f"{head}:{n >> 16:02x}:{(n >> 8) & 0xff:02x}:{n & 0xff:02x}"
        if not taken(address):
            return address
    return None
