"""systemd's readiness protocol (sd_notify) without libsystemd: one datagram to
$NOTIFY_SOCKET. `dvp server` sends READY=1 once every component serves and STOPPING=1 when it
shuts down, so a `Type=notify` unit is "active" exactly when the platform is."""

from __future__ import annotations

import contextlib
import os
import socket


def notify(message: str) -> bool:
    """Send `message` (e.g. "READY=1") when systemd asked for it; False when it did not or
    the socket is gone (never fatal: systemd then falls back to its start timeout)."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
        return True
    return False
