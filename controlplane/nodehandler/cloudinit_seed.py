"""NoCloud seed images: the disk through which cloud-init user data reaches a VM.

The node handler attaches one to every domain that has cloud-init data, as KubeVirt does: a
small ISO9660 image labelled `cidata` holding `meta-data` (instance-id, local-hostname),
`user-data` and, when given, `network-config` (cloud-init's NoCloud datasource). A vfat
variant is offered as well (NoCloud accepts both). The guest test image reads the same seeds
(docs/guest-image.md). This module has no dependencies besides the standard library and the
`genisoimage` (or `xorriso`) / `mkfs.fat` + `mcopy` tools; it never logs the user data, which
may hold secrets.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SEED_LABEL = "cidata"
SeedFormat = Literal["iso9660", "vfat"]

# RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, 253 chars max.
_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


class SeedError(ValueError):
    """Bad seed input (the message names the field) or a seed tool that failed."""


@dataclass(frozen=True)
class SeedData:
    """What goes on a NoCloud seed."""

    instance_id: str
    local_hostname: str
    user_data: str = ""
    network_config: str | None = None

    def validate(self) -> None:
        if not self.instance_id or any(c.isspace() for c in self.instance_id) or ":" in self.instance_id:
            raise SeedError(
                f"meta-data instance-id {self.instance_id!r} is invalid: expected a non-empty "
                "string without spaces or ':' (e.g. the VM's UID)"
            )
        name = self.local_hostname
        if len(name) > 253 or not all(_HOST_LABEL.match(label) for label in name.split(".")):
            raise SeedError(
                f"meta-data local-hostname {name!r} is not a valid host name: expected "
                "dot-separated labels of letters, digits and inner hyphens (RFC 1123)"
            )

    def meta_data(self) -> str:
        """The `meta-data` file: YAML, one `key: value` per line."""
        return f"instance-id: {self.instance_id}\nlocal-hostname: {self.local_hostname}\n"

    def files(self) -> dict[str, bytes]:
        files = {"meta-data": self.meta_data().encode(), "user-data": self.user_data.encode()}
        if self.network_config is not None:
            files["network-config"] = self.network_config.encode()
        return files


def _run(cmd: list[str], *, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SeedError(
            f"`{cmd[0]}` failed building a NoCloud seed (exit {done.returncode}): {done.stderr.strip()}"
        )


def iso_tool() -> list[str]:
    """The mkisofs-compatible command on this host: genisoimage, else xorriso's mkisofs mode."""
    if path := shutil.which("genisoimage"):
        return [path]
    if path := shutil.which("xorriso"):
        return [path, "-as", "mkisofs"]
    raise SeedError("neither genisoimage nor xorriso is installed: install one (Debian package genisoimage)")


def build_seed(data: SeedData, out: Path, *, fmt: SeedFormat = "iso9660") -> Path:
    """Write the seed image for `data` to `out` (replaced atomically) and return `out`."""
    data.validate()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seed-", dir=out.parent) as tmp:
        staging = Path(tmp) / "files"
        staging.mkdir()
        for name, content in data.files().items():
            (staging / name).write_bytes(content)
            (staging / name).chmod(0o644)
        image = Path(tmp) / "seed.img"
        if fmt == "iso9660":
            # Joliet + Rock Ridge keep the dashed long names cloud-init looks for
            _run(
                [
                    *iso_tool(),
                    "-quiet",
                    "-output",
                    str(image),
                    "-volid",
                    SEED_LABEL,
                    "-joliet",
                    "-rock",
                    str(staging),
                ]
            )
        elif fmt == "vfat":
            _build_vfat(staging, image)
        else:
            raise SeedError(f"seed format {fmt!r} is not supported: expected 'iso9660' or 'vfat'")
        image.chmod(0o644)
        os.replace(image, out)
    return out


def _build_vfat(staging: Path, image: Path) -> None:
    payload = sum(p.stat().st_size for p in staging.iterdir())
    size_kib = max(1024, -(-(payload * 2 + 512 * 1024) // 1024))  # ample room for FAT metadata
    _run(["mkfs.fat", "-C", "-n", SEED_LABEL.upper(), str(image), str(size_kib)])
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    for path in sorted(staging.iterdir()):
        _run(["mcopy", "-i", str(image), str(path), f"::/{path.name}"], env=env)
