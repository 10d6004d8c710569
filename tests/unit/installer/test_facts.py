"""Parsing the gather script's output into HostFacts, and where kernel modules come from."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from installer.checks.facts import Modules, _hex_addr, parse_facts
from installer.checks.gather_script import gather_script

SAMPLE = """
@@root
/srv/recorded
@@osrelease
6.1.0-18-amd64
@@os-release
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
ID=debian
@@cpuinfo
count=8
vendor=GenuineIntel
model=Intel(R) Xeon(R) E-2236 CPU @ 3.40GHz
flags=fpu vme vmx ept
@@meminfo
MemTotal:       32768000 kB
@@proc-modules
present
kvm_intel
kvm
@@sys-module
kvm
kvm_intel
@@nested
kvm_intel=Y
@@module-files
file=modules.dep
modules.dep:/kvm-intel.ko
modules.dep:/vhost_net.ko
@@devices
/dev/kvm type=char read=yes write=yes
/dev/net/tun type=char read=yes write=no
@@listen
0100007F:1F90
00000000000000000000000000000000:193B
@@addresses
2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever
@@routes
default via 10.0.0.1 dev eth0
10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.5
@@disk
path=/var/lib
/dev/sda1 100000 40000 60000 40% /
@@end
"""


def test_parse_sample() -> None:
    f = parse_facts(SAMPLE)
    assert f.complete and f.host_root == "/srv/recorded"
    assert f.kernel_version == (6, 1)
    assert f.os_field("ID") == "debian"
    assert f.cpu.count == 8 and f.hw_virt_flag == "vmx"
    assert f.mem_total_bytes == 32768000 * 1024
    assert f.nested_value("kvm_intel") == "Y"
    kvm = f.device("/dev/kvm")
    assert kvm is not None and kvm.char and kvm.writable
    tun = f.device("/dev/net/tun")
    assert tun is not None and not tun.writable
    assert f.listening == (("127.0.0.1", 8080), ("::", 6459))
    assert f.addresses == ("10.0.0.5/24",)
    assert [r.destination for r in f.routes] == ["default", "10.0.0.0/24"]
    assert f.disk.free_bytes == 60000 * 1024 and f.disk.mount == "/"
    assert f.vm_evidence is None


def test_incomplete_output_is_flagged() -> None:
    assert not parse_facts(SAMPLE.split("@@end")[0]).complete


@pytest.mark.parametrize(
    ("modules", "name", "state"),
    [
        (Modules(proc_modules=True, loaded=frozenset({"kvm"})), "kvm", "loaded"),
        (Modules(proc_modules=True, sysfs=frozenset({"kvm"})), "kvm", "built-in"),
        (Modules(proc_modules=False, kconfig=(("CONFIG_TUN", "y"),)), "tun", "built-in"),
        (Modules(proc_modules=False, kconfig=(("CONFIG_VHOST_NET", "n"),)), "vhost_net", "missing"),
        (Modules(proc_modules=True, on_disk=frozenset({"vhost_net"}), module_files_read=True), "vhost_net", "loadable"),
        (Modules(proc_modules=True, kconfig=(("CONFIG_OVERLAY_FS", "m"),)), "overlay", "loadable"),
        (Modules(proc_modules=True, module_files_read=True), "overlay", "missing"),
        (Modules(proc_modules=True), "overlay", "unknown"),
    ],
    ids=["proc-modules", "sysfs-only", "kconfig-y", "kconfig-n", "modules-dep", "kconfig-m", "not-in-dep", "no-evidence"],
)
def test_module_state(modules: Modules, name: str, state: str) -> None:
    assert modules.state(name) == state


def test_hex_addresses() -> None:
    assert _hex_addr("0100007F:0050") == ("127.0.0.1", 80)
    assert _hex_addr("00000000000000000000000001000000:1F90") == ("::1", 8080)


def test_gather_script_runs_on_a_recorded_root(tmp_path: Path) -> None:
    """The real script under /bin/sh against a small file tree (no SSH): host files come from
    the root, live state from this machine."""
    root = tmp_path / "root"
    (root / "proc" / "sys" / "kernel").mkdir(parents=True)
    (root / "proc" / "sys" / "kernel" / "osrelease").write_text("5.10.0-9-amd64\n")
    (root / "proc" / "cpuinfo").write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu svm\n\nprocessor\t: 1\n")
    (root / "etc" / "kubernetes").mkdir(parents=True)
    (root / "etc" / "kubernetes" / "admin.conf").write_text("x")
    out = subprocess.run(
        ["/bin/sh", "-s"], input=gather_script(data_dir="/var/lib/dvp/volumes"), capture_output=True, text=True,
        env={"DVP_HOST_ROOT": str(root), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, check=True,
    ).stdout
    f = parse_facts(out)
    assert f.complete
    assert f.kernel == "5.10.0-9-amd64"
    assert f.cpu.count == 2 and f.hw_virt_flag == "svm"
    assert f.leftovers == ("/etc/kubernetes/admin.conf",)
    assert f.modules.proc_modules is False
    assert f.disk.path == str(root)  # nearest existing parent of the data dir, under the root
    assert f.detect_virt == ""  # never asked with a recorded root


def test_facts_handed_to_ansible(tmp_path: Path) -> None:
    import json

    from installer.checks.ansible_facts import to_ansible_facts

    f = parse_facts(SAMPLE + "\n@@hostname\nnode-1\n@@commands\napt-get=/usr/bin/apt-get\nsystemctl=\n@@end\n")
    facts = to_ansible_facts(f)
    assert facts["ansible_pkg_mgr"] == "apt"
    assert facts["ansible_os_family"] == "Debian"
    assert facts["ansible_processor_vcpus"] == 8
    assert facts["ansible_memtotal_mb"] == 32000
    assert facts["ansible_all_ipv4_addresses"] == ["10.0.0.5"]
    assert facts["ansible_hostname"] == "node-1"
    assert facts["dvp_preflight"]["cpu"]["flags"] == ["ept", "fpu", "vme", "vmx"]
    json.dumps(facts)  # JSON-ready as it is


@pytest.mark.parametrize(("old", "new"), [
    ("count=8\n", "count=eight\n"),
    ("MemTotal:       32768000 kB", "MemTotal:       lots"),
    ("count=8\n", "count=\x00\n"),
])
def test_a_fact_that_is_not_a_number_is_unknown_not_a_crash(old: str, new: str) -> None:
    """Found by mutating the gathered output: each was a ValueError out of the preflight."""
    assert old in SAMPLE
    f = parse_facts(SAMPLE.replace(old, new))
    assert f.complete
    if "count" in old:
        assert f.cpu.count == 0
    else:
        assert f.mem_total_bytes is None
