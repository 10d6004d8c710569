"""`HOST:PORT` as every listener flag of dvp takes it (`--listen`, `--dvcr-listen`,
`console-listen`, the metrics address, `dvp vnc --listen`): one parser, so a port out of range
is refused everywhere instead of being wrapped by the socket layer (99999 bound 34463). And
the names a certificate or kubeconfig will carry (`--advertise-address`, `--tls-san`)."""

from __future__ import annotations

import ipaddress
import re

MAX_PORT = 65535
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def split_host_port(value: str, *, default_host: str | None = "0.0.0.0") -> tuple[str, int]:
    """(host, port) of `HOST:PORT` or `[v6]:PORT`; port 0 asks for a free one. An empty host is
    `default_host`, or an error when that is None. ValueError naming the value otherwise."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or int(port) > MAX_PORT or (not host and default_host is None):
        raise ValueError(f"{value!r} is not HOST:PORT with a port from 0 to {MAX_PORT}")
    return host or str(default_host), int(port)


def check_host(value: str, *, wildcard: bool = False) -> str:
    """An IP address or a DNS name (RFC 1123, as the install config takes host addresses; `*.`
    first when `wildcard`), as given; ValueError naming the value otherwise (`999.1.1.1` is
    neither: a name of digits and dots only must be an IPv4 address)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    name = value.lower().removeprefix("*.") if wildcard else value.lower()
    labels = name.rstrip(".").split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels) or all(
            label.isdigit() for label in labels):
        raise ValueError(f"{value!r} is neither an IP address nor a DNS name")
    return value
