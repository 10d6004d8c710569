"""The peer side of the VM benchmarks: the very domain XML our node handler ran, made fit for
a plain `virsh create` next to it (own name, no uuid or dvp metadata, its own serial log and
VNC socket), so both sides start the same machine."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path


def peer_domain_xml(xml: str, *, name: str, serial_log: Path, vnc_socket: str) -> str:
    root = ET.fromstring(xml)
    root.find("name").text = name  # type: ignore[union-attr]
    for tag in ("uuid", "metadata"):
        el = root.find(tag)
        if el is not None:
            root.remove(el)
    for log in root.iter("log"):
        log.set("file", str(serial_log))
    for g in root.iter("graphics"):
        g.set("socket", vnc_socket)
        for listen in g.iter("listen"):
            listen.set("socket", vnc_socket)
    return ET.tostring(root, encoding="unicode")
