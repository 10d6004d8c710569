"""What the preflight learned about a host, parsed from the gather script's output.

`HostFacts` is gathered once per host and kept: the checks evaluate it, the report can show
it, and the install phase (issue 7) reuses it instead of gathering again — `to_dict()` is its
JSON form and `installer.checks.ansible_facts` maps it onto Ansible's fact names.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from installer.checks import settings


@dataclass(frozen=True)
class Cpu:
    count: int = 0
    vendor: str = ""
    model: str = ""
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Device:
    path: str
    char: bool
    readable: bool
    writable: bool


@dataclass(frozen=True)
class Route:
    destination: str  # CIDR, or "default"
    device: str = ""


@dataclass(frozen=True)
class Disk:
    path: str = ""  # the existing directory df measured (data dir or its nearest parent)
    free_bytes: int | None = None
    total_bytes: int | None = None
    mount: str = ""


@dataclass(frozen=True)
class Modules:
    """Where each kernel module could come from."""

    proc_modules: bool = False  # /proc/modules exists (kernel with module support)
    loaded: frozenset[str] = frozenset()  # /proc/modules
    sysfs: frozenset[str] = frozenset()  # /sys/module (loaded or built in with parameters)
    builtin: frozenset[str] = frozenset()  # modules.builtin
    on_disk: frozenset[str] = frozenset()  # modules.dep: loadable with modprobe
    module_files_read: bool = False
    kconfig: tuple[tuple[str, str], ...] = ()  # (symbol, value) e.g. ("CONFIG_TUN", "y")

    def config(self, symbol: str) -> str | None:
        return dict(self.kconfig).get(symbol)

    def state(self, name: str) -> str:
        """loaded / built-in / loadable / missing / unknown."""
        if name in self.loaded:
            return "loaded"
        value = self.config(settings.MODULE_KCONFIG.get(name, ""))
        if name in self.builtin or value == "y":
            return "built-in"
        if name in self.sysfs:
            # in /sys/module but not in /proc/modules: compiled into the kernel
            return "built-in"
        if name in self.on_disk:
            return "loadable"
        if value == "m" and self.proc_modules:
            return "loadable"
        if value == "n" or (self.kconfig and value is None):
            return "missing"
        if self.module_files_read or not self.proc_modules:
            return "missing"
        return "unknown"

    def present(self, name: str) -> bool:
        """Loaded or built in: usable right now."""
        return self.state(name) in ("loaded", "built-in")


@dataclass(frozen=True)
class HostFacts:
    """Facts about one host (see the gather script for where each comes from)."""

    host_root: str = "/"
    arch: str = ""
    kernel: str = ""
    os_release: tuple[tuple[str, str], ...] = ()
    cpu: Cpu = field(default_factory=Cpu)
    mem_total_bytes: int | None = None
    modules: Modules = field(default_factory=Modules)
    nested: tuple[tuple[str, str], ...] = ()  # (module, raw parameter value)
    devices: tuple[Device, ...] = ()
    dmi_vendor: str = ""
    dmi_product: str = ""
    detect_virt: str = ""  # systemd-detect-virt --vm (live hosts only)
    iommu_groups: int = 0
    cmdline: str = ""
    systemd_booted: bool = False
    pid1: str = ""
    commands: tuple[tuple[str, str], ...] = ()  # (name, path or "")
    python_version: str = ""
    hostname: str = ""
    resolve_self: tuple[str, ...] = ()
    resolve_localhost: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()  # interface addresses with prefix, e.g. 10.0.0.5/24
    routes: tuple[Route, ...] = ()
    listening: tuple[tuple[str, int], ...] = ()  # (address, port) of listening TCP sockets
    processes: frozenset[str] = frozenset()
    leftovers: tuple[str, ...] = ()
    disk: Disk = field(default_factory=Disk)
    complete: bool = False  # the script ran to its end

    # -- derived views --------------------------------------------------------------------
    def os_field(self, key: str) -> str:
        return dict(self.os_release).get(key, "")

    def command(self, name: str) -> str:
        return dict(self.commands).get(name, "")

    def device(self, path: str) -> Device | None:
        return next((d for d in self.devices if d.path == path), None)

    @property
    def kernel_version(self) -> tuple[int, int] | None:
        match = re.match(r"^(\d+)\.(\d+)", self.kernel)
        return (int(match.group(1)), int(match.group(2))) if match else None

    @property
    def hw_virt_flag(self) -> str | None:
        for flag in ("vmx", "svm"):
            if flag in self.cpu.flags:
                return flag
        return None

    @property
    def kvm_pvm(self) -> bool:
        return "kvm_pvm" in self.modules.loaded or "kvm_pvm" in self.modules.sysfs

    @property
    def vm_evidence(self) -> str | None:
        """Why we think the host is itself a virtual machine, or None."""
        if self.detect_virt and self.detect_virt != "none":
            return f"systemd-detect-virt: {self.detect_virt}"
        if "hypervisor" in self.cpu.flags:
            return "CPU flag 'hypervisor'"
        vendors = ("QEMU", "VMware", "innotek", "Xen", "Microsoft Corporation", "Amazon EC2", "Google", "Red Hat", "Parallels", "BHYVE", "OpenStack")
        for v in vendors:
            if self.dmi_vendor.startswith(v) or self.dmi_product.startswith(v):
                return f"DMI: {self.dmi_vendor} {self.dmi_product}".strip()
        return None

    def nested_value(self, module: str) -> str | None:
        return dict(self.nested).get(module)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (sets become sorted lists)."""

        def fix(value: Any) -> Any:
            if isinstance(value, frozenset | set):
                return sorted(value)
            if isinstance(value, dict):
                return {k: fix(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [fix(v) for v in value]
            return value

        return fix(asdict(self))  # type: ignore[no-any-return]


# -- parsing -------------------------------------------------------------------------------

def split_sections(output: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith("@@"):
            current = sections.setdefault(line[2:].strip(), [])
        elif current is not None and line.strip():
            current.append(line.rstrip())
    return sections


def _kv(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _hex_addr(text: str) -> tuple[str, int]:
    """/proc/net/tcp's `0100007F:1F90` -> ('127.0.0.1', 8080) (also IPv6)."""
    addr_hex, port_hex = text.split(":")
    raw = bytes.fromhex(addr_hex)
    # the kernel prints each 32-bit word in host (little-endian) order
    fixed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(fixed)), int(port_hex, 16)


def _number(text: str) -> int | None:
    """The whole number a fact starts with (`16`, `16384 kB`), None when it does not (a host's
    shell or a tool printed something else there: the checks then say the fact is unknown)."""
    match = re.match(r"\s*(\d+)(\s|$)", text)
    return int(match.group(1)) if match else None


def _module_name(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(".ko")[0].replace("-", "_")


def parse_facts(output: str) -> HostFacts:
    sec = split_sections(output)
    cpu = _kv(sec.get("cpuinfo", []))
    mem = {k: v for k, v in (ln.split(":", 1) for ln in sec.get("meminfo", []) if ":" in ln)}
    mem_kib = _number(mem.get("MemTotal", ""))
    mem_total = None if mem_kib is None else mem_kib * 1024
    proc_mod = sec.get("proc-modules", ["absent"])
    module_files = sec.get("module-files", [])
    kconfig = []
    for line in sec.get("kconfig", []):
        if line.startswith("# CONFIG_") and line.endswith(" is not set"):
            kconfig.append((line[2:].split()[0], "n"))
        elif line.startswith("CONFIG_") and "=" in line:
            key, value = line.split("=", 1)
            kconfig.append((key, value))
    modules = Modules(
        proc_modules=bool(proc_mod) and proc_mod[0] == "present",
        loaded=frozenset(proc_mod[1:]) if proc_mod and proc_mod[0] == "present" else frozenset(),
        sysfs=frozenset(sec.get("sys-module", [])),
        builtin=frozenset(_module_name(ln.split(":", 1)[1]) for ln in module_files if ln.startswith("modules.builtin:")),
        on_disk=frozenset(_module_name(ln.split(":", 1)[1]) for ln in module_files if ln.startswith("modules.dep:")),
        module_files_read=any(ln.startswith("file=") for ln in module_files),
        kconfig=tuple(kconfig),
    )
    devices = []
    for line in sec.get("devices", []):
        path, _, rest = line.partition(" ")
        attrs = _kv(rest.split())
        devices.append(Device(path, attrs.get("type") == "char", attrs.get("read") == "yes", attrs.get("write") == "yes"))
    os_release = []
    for line in sec.get("os-release", []):
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            os_release.append((key.strip(), value.strip().strip('"')))
    addresses = []
    for line in sec.get("addresses", []):
        parts = line.split()
        if len(parts) >= 4 and parts[2] in ("inet", "inet6"):
            addresses.append(parts[3])
    routes = []
    for line in sec.get("routes", []):
        parts = line.split()
        if not parts or parts[0] in ("broadcast", "local", "unreachable", "blackhole", "prohibit", "throw"):
            continue
        dev = parts[parts.index("dev") + 1] if "dev" in parts[:-1] else ""
        routes.append(Route(parts[0], dev))
    listening = []
    for line in sec.get("listen", []):
        try:
            listening.append(_hex_addr(line.strip()))
        except ValueError:
            continue
    disk_kv = _kv([ln for ln in sec.get("disk", []) if ln.startswith("path=")])
    disk = Disk(path=disk_kv.get("path", ""))
    df_lines = [ln for ln in sec.get("disk", []) if not ln.startswith("path=")]
    if df_lines:
        cols = df_lines[-1].split()
        if len(cols) >= 6 and cols[3].isdigit() and cols[1].isdigit():
            disk = Disk(disk.path, free_bytes=int(cols[3]) * 1024, total_bytes=int(cols[1]) * 1024, mount=cols[5])
    iommu = _kv(sec.get("iommu", []))
    init = _kv(sec.get("init", []))
    dmi = _kv(sec.get("dmi", []))
    return HostFacts(
        host_root=(sec.get("root") or ["/"])[0],
        arch=(sec.get("arch") or [""])[0],
        kernel=(sec.get("osrelease") or [""])[0].strip(),
        os_release=tuple(os_release),
        cpu=Cpu(
            count=_number(cpu.get("count", "")) or 0,
            vendor=cpu.get("vendor", ""),
            model=cpu.get("model", ""),
            flags=frozenset(cpu.get("flags", "").split()),
        ),
        mem_total_bytes=mem_total,
        modules=modules,
        nested=tuple(sorted(_kv(sec.get("nested", [])).items())),
        devices=tuple(devices),
        dmi_vendor=dmi.get("sys_vendor", ""),
        dmi_product=dmi.get("product_name", ""),
        detect_virt=(sec.get("detect-virt") or [""])[0].strip(),
        iommu_groups=_number(iommu.get("groups", "")) or 0,
        cmdline=iommu.get("cmdline", ""),
        systemd_booted=init.get("systemd_booted") == "yes",
        pid1=init.get("pid1", ""),
        commands=tuple(sorted(_kv(sec.get("commands", [])).items())),
        python_version=(sec.get("python") or [""])[0].removeprefix("Python ").strip(),
        hostname=(sec.get("hostname") or [""])[0].strip(),
        resolve_self=tuple(ln.split()[0] for ln in sec.get("resolve-self", []) if ln.split()),
        resolve_localhost=tuple(ln.split()[0] for ln in sec.get("resolve-localhost", []) if ln.split()),
        addresses=tuple(addresses),
        routes=tuple(routes),
        listening=tuple(sorted(set(listening))),
        processes=frozenset(sec.get("processes", [])),
        leftovers=tuple(sec.get("leftovers", [])),
        disk=disk,
        complete="end" in sec,
    )
