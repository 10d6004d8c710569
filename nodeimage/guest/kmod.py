"""Kernel modules for the guest's initramfs: which ones, in which order.

Second step of the guest image build. Debian's kernel packages ship without `modules.dep`
(depmod runs at install time, which we skip), so dependencies are read from each module's
own `.modinfo` ELF section (`depends=`, `softdep=pre:`). Starting from the drivers a flavour
needs (see `FLAVOUR_MODULES`), the closure is computed and ordered so that `insmod` can load
them one by one in the guest, dependencies first. Modules built into the kernel
(`modules.builtin`) are simply skipped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

# Drivers the guest's init needs, by flavour (the order is the load order among peers).
_COMMON = [
    "virtio_pci",  # virtio devices on PCI (q35 and i440fx)
    "virtio_blk",  # boot disk and NoCloud seed as virtio disks
    "virtio_net",  # the NIC
    "virtio_scsi",  # the seed as a SCSI cdrom (virtio-scsi controller)
    "virtio_console",  # virtio-serial channels (qemu-guest-agent's channel shows up)
    "sd_mod",
    "sr_mod",  # cdroms
    "isofs",  # ISO9660 seed
    "vfat",  # vfat seed
    "nls_cp437",
    "nls_ascii",
    "nls_utf8",
    "button",  # ACPI power button -> input event
    "evdev",  # /dev/input/event* that acpid reads
]
FLAVOUR_MODULES: dict[str, list[str]] = {
    # linux-image-cloud-amd64: paravirtual devices only (no AHCI, no e1000 in this kernel)
    "cloud": _COMMON,
    # linux-image-amd64: also emulated hardware, for domains with paravirtualization off
    "generic": [*_COMMON, "ahci", "ata_piix", "e1000", "e1000e"],
}


class ModuleError(RuntimeError):
    """A module the guest needs is missing from the kernel package."""


@dataclass
class ModuleInfo:
    name: str
    path: Path
    depends: list[str] = field(default_factory=list)


def read_modinfo(path: Path) -> dict[str, list[str]]:
    """The key=value strings of an ELF64 module's `.modinfo` section (values per key, in order)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ModuleError(f"{path}: not a little-endian ELF64 kernel module")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        base = shoff + index * shentsize
        name_off = struct.unpack_from("<I", data, base)[0]
        offset, size = struct.unpack_from("<QQ", data, base + 24)
        return name_off, offset, size

    _, str_off, str_size = section(shstrndx)
    names = data[str_off : str_off + str_size]
    for i in range(shnum):
        name_off, offset, size = section(i)
        end = names.index(b"\0", name_off)
        if names[name_off:end] == b".modinfo":
            info: dict[str, list[str]] = {}
            for item in data[offset : offset + size].split(b"\0"):
                key, sep, value = item.decode("utf-8", "replace").partition("=")
                if sep:
                    info.setdefault(key, []).append(value)
            return info
    return {}


def _soft_pre(softdep: str) -> list[str]:
    """Module names after `pre:` in a `softdep=` value such as `pre: crc32c post: foo`."""
    names: list[str] = []
    mode = ""
    for token in softdep.split():
        if token.endswith(":"):
            mode = token
        elif mode == "pre:":
            names.append(token)
    return names


def _norm(name: str) -> str:
    return name.replace("-", "_")


def index_modules(moddir: Path) -> tuple[dict[str, Path], set[str]]:
    """Module name -> file under `moddir` (`lib/modules/<version>`), and the built-in names."""
    files = {_norm(p.name.split(".ko")[0]): p for p in moddir.glob("kernel/**/*.ko*")}
    builtin_list = moddir / "modules.builtin"
    builtin = set()
    if builtin_list.exists():
        for line in builtin_list.read_text().splitlines():
            builtin.add(_norm(Path(line.strip()).name.split(".ko")[0]))
    return files, builtin


def resolve_modules(moddir: Path, wanted: list[str]) -> list[ModuleInfo]:
    """The modules to load for `wanted`, dependencies first, built-ins left out."""
    files, builtin = index_modules(moddir)
    ordered: list[ModuleInfo] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = _norm(name)
        if name in seen or name in builtin:
            return
        if name in chain:
            raise ModuleError(f"module dependency cycle: {' -> '.join((*chain, name))}")
        path = files.get(name)
        if path is None:
            needed_by = f" (needed by {chain[-1]})" if chain else ""
            raise ModuleError(f"kernel module {name}{needed_by} is neither in {moddir} nor built in")
        if path.suffix != ".ko":
            raise ModuleError(f"{path}: compressed modules are not supported (kernel config changed?)")
        info = read_modinfo(path)
        deps = [d for v in info.get("depends", []) for d in v.split(",") if d]
        pre = [d for v in info.get("softdep", []) for d in _soft_pre(v)]
        for dep in [*pre, *deps]:
            if _norm(dep) in files or _norm(dep) in builtin:
                visit(dep, (*chain, name))
            elif dep in deps:
                raise ModuleError(f"kernel module {dep} (needed by {name}) is missing from {moddir}")
        seen.add(name)
        ordered.append(ModuleInfo(name=name, path=path, depends=deps))

    for want in wanted:
        visit(want, ())
    return ordered
