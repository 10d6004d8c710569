"""`dvp uninstall`'s host script removes the cross-host VM routes, their policy rules and the
VXLAN device of a host whose agent had `vm-routes` on, and nothing of anyone else's: run in a
throwaway network namespace set up as the node handler leaves a host (plus a foreign route in
the same table and a foreign rule), dry first, then for real."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer import hostlayout
from installer.uninstall.hostscript import host_script, parse_report


def ip(ns: str, *args: str) -> str:
    done = subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"ip {args}: {done.stderr}"
    return done.stdout


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"dvp-unrt-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        ip(name, "link", "set", "lo", "up")
        ip(name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
        ip(name, "addr", "add", "192.168.7.2/24", "dev", "eth0")
        for dev in ("eth0", "eth0p"):
            ip(name, "link", "set", dev, "up")
        ip(name, "link", "add", "dvpvx0", "type", "vxlan", "id", "166", "local", "192.168.7.2", "dstport", "4789",
           "nolearning")
        ip(name, "-4", "route", "add", "10.66.0.5/32", "via", "192.168.7.3", "proto", "166", "table", "166")
        ip(name, "-4", "route", "add", "10.66.9.0/24", "via", "192.168.7.9", "table", "166")  # someone else's
        ip(name, "-4", "rule", "add", "pref", "166", "to", "10.66.0.0/16", "lookup", "166")
        ip(name, "-4", "rule", "add", "pref", "167", "from", "10.66.0.0/16", "lookup", "166")
        ip(name, "-4", "rule", "add", "pref", "300", "from", "10.1.0.0/16", "lookup", "300")  # someone else's
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _run(ns: str, root: Path, *, dry_run: bool) -> str:
    script = host_script(dry_run=dry_run, keep_data=False, vm_storage_dir=f"{hostlayout.STATE_DIR}/volumes",
                         root=str(root))
    done = subprocess.run(["ip", "netns", "exec", ns, "sh", "-s"], input=script, capture_output=True, text=True,
                          check=True, timeout=60)
    return done.stdout


def test_uninstall_removes_our_routes_rules_and_tunnel_only(netns: str, tmp_path: Path) -> None:
    conf = tmp_path / hostlayout.AGENT_CONFIG.lstrip("/")
    conf.parent.mkdir(parents=True)
    conf.write_text("bridge: dvpnone0\nvm-routes: true  # route VMs of other nodes here\n")
    dry = parse_report("h", _run(netns, tmp_path, dry_run=True), dry_run=True)
    assert dry.deleted == ["routes table 166 proto 166", "rule 166", "rule 167", "tunnel dvpvx0"]
    assert "10.66.0.5" in ip(netns, "-4", "route", "show", "table", "166")  # a dry run changes nothing
    conf.write_text("bridge: dvpnone0\nvm-routes: true\n")
    real = parse_report("h", _run(netns, tmp_path, dry_run=False), dry_run=False)
    assert real.deleted == dry.deleted
    assert ip(netns, "-4", "route", "show", "table", "166").split() == ["10.66.9.0/24", "via", "192.168.7.9", "dev",
                                                                        "eth0"]
    rules = ip(netns, "-4", "rule", "show")
    assert "lookup 166" not in rules and "from 10.1.0.0/16 lookup 300" in rules
    assert "dvpvx0" not in ip(netns, "link", "show")


def test_without_vm_routes_the_script_leaves_routing_alone(netns: str, tmp_path: Path) -> None:
    conf = tmp_path / hostlayout.AGENT_CONFIG.lstrip("/")
    conf.parent.mkdir(parents=True)
    conf.write_text("bridge: dvpnone0\n")
    report = parse_report("h", _run(netns, tmp_path, dry_run=False), dry_run=False)
    assert report.deleted == []
    assert "10.66.0.5" in ip(netns, "-4", "route", "show", "table", "166") and "dvpvx0" in ip(netns, "link", "show")
