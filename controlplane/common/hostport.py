"""`HOST:PORT` as every listener flag of dvp takes it (`--listen`, `--dvcr-listen`,
`console-listen`, the metrics address, `dvp vnc --listen`): one parser, so a port out of range
is refused everywhere instead of being wrapped by the socket layer (99999 bound 34463)."""

from __future__ import annotations

MAX_PORT = 65535


def split_host_port(value: str, *, default_host: str | None = "0.0.0.0") -> tuple[str, int]:
    """(host, port) of `HOST:PORT` or `[v6]:PORT`; port 0 asks for a free one. An empty host is
    `default_host`, or an error when that is None. ValueError naming the value otherwise."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or int(port) > MAX_PORT or (not host and default_host is None):
        raise ValueError(f"{value!r} is not HOST:PORT with a port from 0 to {MAX_PORT}")
    return host or str(default_host), int(port)
