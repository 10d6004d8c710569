"""Hand the facts the preflight gathered to the Ansible phase (issue 7) so it need not gather
them again: `to_ansible_facts()` maps `HostFacts` onto the names Ansible's setup module uses,
and `write_fact_cache()` writes them in the layout of Ansible's `jsonfile` fact cache (one
JSON file per inventory host name). With `fact_caching = jsonfile`,
`fact_caching_connection = <dir>` and `gathering = smart`, plays use these instead of running
setup. The full preflight facts ride along under `dvp_preflight`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from installer.checks.context import HostState
from installer.checks.facts import HostFacts

_OS_FAMILY = {"debian": "Debian", "ubuntu": "Debian", "astra": "Debian", "rhel": "RedHat", "centos": "RedHat",
              "rocky": "RedHat", "almalinux": "RedHat", "fedora": "RedHat", "redos": "RedHat", "altlinux": "Altlinux"}
_PKG_MGR = {"apt-get": "apt", "dnf": "dnf", "yum": "yum", "zypper": "zypper"}


def to_ansible_facts(facts: HostFacts) -> dict[str, Any]:
    os_id = facts.os_field("ID")
    version = facts.os_field("VERSION_ID")
    pkg = next((_PKG_MGR[c] for c in ("apt-get", "dnf", "yum", "zypper") if facts.command(c)), "unknown")
    ipv4 = [a.split("/")[0] for a in facts.addresses if "." in a and not a.startswith("127.")]
    ipv6 = [a.split("/")[0] for a in facts.addresses if ":" in a and a != "::1/128" and not a.startswith("fe80")]
    vm = facts.vm_evidence
    return {
        "ansible_hostname": facts.hostname.split(".")[0],
        "ansible_nodename": facts.hostname,
        "ansible_system": "Linux",
        "ansible_kernel": facts.kernel,
        "ansible_architecture": facts.arch,
        "ansible_distribution": facts.os_field("NAME").split(" ")[0] if facts.os_field("NAME") else "",
        "ansible_distribution_version": version,
        "ansible_distribution_major_version": version.split(".")[0] if version else "",
        "ansible_distribution_release": facts.os_field("VERSION_CODENAME"),
        "ansible_os_family": _OS_FAMILY.get(os_id, os_id.capitalize()),
        "ansible_pkg_mgr": pkg,
        "ansible_service_mgr": "systemd" if facts.systemd_booted else (facts.pid1 or "unknown"),
        "ansible_processor_vcpus": facts.cpu.count,
        "ansible_memtotal_mb": (facts.mem_total_bytes or 0) // (1024 * 1024),
        "ansible_all_ipv4_addresses": ipv4,
        "ansible_all_ipv6_addresses": ipv6,
        "ansible_virtualization_role": "guest" if vm else "host",
        "ansible_python": {"executable": facts.command("python3"), "version_string": facts.python_version},
        "dvp_preflight": facts.to_dict(),
        # what `gathering = smart` looks for to know a host's facts are already gathered
        "module_setup": True,
    }


def write_fact_cache(states: Iterable[HostState], directory: Path) -> list[Path]:
    """One `<inventory name>` JSON file per host whose facts were gathered."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for st in states:
        if st.facts is None:
            continue
        path = directory / st.target.name
        path.write_text(json.dumps(to_ansible_facts(st.facts), indent=1, sort_keys=True))
        written.append(path)
    return written
