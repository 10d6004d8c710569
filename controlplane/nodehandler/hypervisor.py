"""The truthful hypervisor decision: KVM only when the hardware and the kernel really offer it.

`gather_facts(root)` reads the host under `root` (normally `/`; unit tests point it at recorded
files): `proc/cpuinfo` (vendor, model, `vmx`/`svm`, `hypervisor` flags), `proc/meminfo`,
`sys/module/*` (which kvm modules are loaded, and their `nested` parameter) and `dev/kvm`.
`decide(facts)` is pure: domain type `kvm` only when the CPU has vmx/svm, `kvm_intel` or
`kvm_amd` is loaded and `/dev/kvm` is usable; otherwise `qemu` (software emulation, TCG),
with a reason and a message that says what was observed and how to get KVM. A `/dev/kvm`
alone proves nothing: the `kvm_pvm` module provides one that runs only PVM-built guests.

The node handler publishes the decision on its Node (label `virtualization.deckhouse.io/kvm`,
condition `KVM`) and in every instance's `status.emulation`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from controlplane.api.internal import DomainType, KVMReason

KVM_GET_API_VERSION = 0xAE00
KVM_API_VERSION = 12
VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}


@dataclass(frozen=True)
class HostFacts:
    vendor: str
    """Intel, AMD, Hygon or the raw vendor_id."""
    model: str
    cpus: int
    memory_bytes: int
    flags: frozenset[str]
    modules: frozenset[str]
    """Loaded kernel modules among kvm, kvm_intel, kvm_amd, kvm_pvm."""
    nested: bool | None
    """The loaded kvm_intel/kvm_amd module's `nested` parameter (None when not loaded)."""
    kvm_device: str
    """`usable`, `absent`, or `unusable: <why>`."""

    @property
    def hardware_flag(self) -> str:
        return "vmx" if "vmx" in self.flags else "svm" if "svm" in self.flags else ""

    @property
    def is_virtual_machine(self) -> bool:
        return "hypervisor" in self.flags


@dataclass(frozen=True)
class Decision:
    domain_type: DomainType
    reason: KVMReason
    message: str
    nested: bool | None

    @property
    def kvm(self) -> bool:
        return self.domain_type is DomainType.KVM


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _cpuinfo(text: str) -> tuple[str, str, frozenset[str], int]:
    vendor = model = ""
    flags: frozenset[str] = frozenset()
    cpus = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            cpus += 1
        elif key == "vendor_id" and not vendor:
            vendor = value
        elif key == "model name" and not model:
            model = value
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return VENDORS.get(vendor, vendor or "unknown"), model or "unknown", flags, cpus


def _meminfo(text: str) -> int:
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            return int(parts[1]) * 1024
    return 0


def _nested(root: Path, modules: frozenset[str]) -> bool | None:
    for mod in ("kvm_intel", "kvm_amd"):
        if mod in modules:
            value = _read(root / "sys/module" / mod / "parameters/nested").strip()
            return value in ("Y", "y", "1")
    return None


def _kvm_device(path: Path) -> str:
    try:
        st = path.stat()
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        return f"unusable: {exc.strerror}"
    if stat.S_ISREG(st.st_mode):
        return "usable"  # a recorded host: a plain file stands for a working device
    if not stat.S_ISCHR(st.st_mode):
        return "unusable: not a character device"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return f"unusable: cannot open it read-write ({exc.strerror})"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as exc:
        return "unusable: KVM_GET_API_VERSION failed" + ("" if exc.errno == errno.ENOTTY else f" ({exc.strerror})")
    finally:
        os.close(fd)
    return "usable" if version == KVM_API_VERSION else f"unusable: KVM API version {version}, expected 12"


def gather_facts(root: Path = Path("/")) -> HostFacts:
    vendor, model, flags, cpus = _cpuinfo(_read(root / "proc/cpuinfo"))
    modules = frozenset(m for m in ("kvm", "kvm_intel", "kvm_amd", "kvm_pvm") if (root / "sys/module" / m).is_dir())
    return HostFacts(
        vendor=vendor, model=model, cpus=cpus or (os.cpu_count() or 1), memory_bytes=_meminfo(_read(root / "proc/meminfo")),
        flags=flags, modules=modules, nested=_nested(root, modules), kvm_device=_kvm_device(root / "dev/kvm"),
    )


def decide(facts: HostFacts, *, forced: str = "auto") -> Decision:
    """Domain type for this host, with the reason (see the module docstring)."""
    emu = DomainType.QEMU
    if forced == "qemu":
        return Decision(emu, KVMReason.EMULATION_FORCED, "software emulation was chosen by configuration "
                        "(domain-type: qemu)", facts.nested)
    flag = facts.hardware_flag
    cpu = facts.model if facts.vendor.lower() in facts.model.lower() else f"{facts.vendor} {facts.model}"
    module = "kvm_intel" if flag == "vmx" else "kvm_amd" if flag == "svm" else ""
    if "kvm_pvm" in facts.modules and (not flag or module not in facts.modules):
        return Decision(emu, KVMReason.PVM_ONLY, (
            f"/dev/kvm is provided by the kvm_pvm module, which runs only guests built for PVM; the CPU "
            f"({cpu}) {'has no vmx/svm flag' if not flag else f'has {flag} but {module} is not loaded'}"
            ": running guests with software emulation (TCG)"), facts.nested)
    if not flag:
        where = (" This host is itself a virtual machine (cpu flag 'hypervisor'): enable nested "
                 "virtualization on the outer hypervisor so it passes vmx/svm through.") if facts.is_virtual_machine \
            else " Enable VT-x/AMD-V in the firmware (BIOS/UEFI) settings."
        return Decision(emu, KVMReason.NO_CPU_FLAGS, (
            f"the CPU ({cpu}) has no vmx or svm flag in /proc/cpuinfo: running guests "
            f"with software emulation (TCG).{where}"), facts.nested)
    if module not in facts.modules:
        return Decision(emu, KVMReason.NO_MODULE, (
            f"the CPU has {flag} but the {module} module is not loaded: run `modprobe {module}`; "
            "running guests with software emulation (TCG) until then"), facts.nested)
    if facts.kvm_device == "absent":
        return Decision(emu, KVMReason.NO_DEVICE, (
            f"{module} is loaded but /dev/kvm does not exist (in a container: pass the device in); "
            "running guests with software emulation (TCG)"), facts.nested)
    if facts.kvm_device != "usable":
        return Decision(emu, KVMReason.DEVICE_NOT_USABLE, (
            f"/dev/kvm is {facts.kvm_device}: running guests with software emulation (TCG)"), facts.nested)
    nested = {True: "nested virtualization enabled", False: "nested virtualization disabled",
              None: "nested virtualization unknown"}[facts.nested]
    if forced == "kvm" or forced == "auto":
        return Decision(DomainType.KVM, KVMReason.HARDWARE_VIRTUALIZATION,
                        f"{facts.vendor} {flag} with {module} and a usable /dev/kvm ({nested})", facts.nested)
    raise ValueError(f"domain type {forced!r} is not one of auto, kvm, qemu")


class KVMUnavailable(RuntimeError):
    """`domain-type: kvm` was required but the host cannot run KVM guests."""


def decide_required(facts: HostFacts, forced: str) -> Decision:
    decision = decide(facts, forced=forced)
    if forced == "kvm" and not decision.kvm:
        raise KVMUnavailable(f"domain-type kvm was required, but {decision.message} (reason {decision.reason})")
    return decision
