"""Debian packages the guest image is made of: resolve, download, verify, unpack.

First step of the guest image build (see `nodeimage.guest.build`). The kernel and busybox are
taken from Debian's archive with `apt-get download` (never installed on the host), checked
against the SHA256 apt knows, and unpacked with `dpkg -x` into a scratch directory the build
removes afterwards. The package versions
and hashes resolved here are part of the image's cache key.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class PackageError(RuntimeError):
    """A Debian package could not be resolved, downloaded or unpacked."""


@dataclass(frozen=True)
class DebPackage:
    """One concrete Debian package as apt's index describes it."""

    name: str
    version: str
    sha256: str

    def key(self) -> str:
        return f"{self.name}={self.version}@{self.sha256}"


def _run(cmd: list[str], *, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise PackageError(f"{cmd[0]} not found: install it (it is in .ci/apt-packages)") from exc
    if done.returncode != 0:
        raise PackageError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _show(names: list[str]) -> dict[str, dict[str, str]]:
    """apt's fields of the candidate version of each package, with one `apt-cache` call."""
    out = _run(["apt-cache", "show", "--no-all-versions", *names])
    stanzas: dict[str, dict[str, str]] = {}
    for block in out.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields.setdefault(key, value.strip())
        if "Package" in fields:
            stanzas.setdefault(fields["Package"], fields)
    for name in names:
        if name not in stanzas or "Version" not in stanzas[name]:
            raise PackageError(
                f"apt does not know package {name!r}: run `apt-get update` (checked `apt-cache show {name}`)"
            )
    return stanzas


def _is_kernel_metapackage(name: str) -> bool:
    return name.startswith("linux-image-") and not name[len("linux-image-") :][:1].isdigit()


def resolve(*names: str) -> list[DebPackage]:
    """The candidate version of each package; a kernel metapackage resolves to its image package.

    `linux-image-cloud-amd64` is a metapackage: the kernel lives in the versioned package it
    depends on (e.g. `linux-image-6.1.0-56-cloud-amd64`), which is what gets downloaded.
    """
    shown = _show(list(names))
    concrete: list[str] = []
    for name in names:
        if _is_kernel_metapackage(name):
            depends = [d.strip().split(" ")[0] for d in shown[name].get("Depends", "").split(",")]
            images = [d for d in depends if d.startswith("linux-image-")]
            if not images:
                raise PackageError(f"metapackage {name} has no linux-image dependency (Depends: {depends})")
            concrete.append(images[0])
        else:
            concrete.append(name)
    missing = [n for n in concrete if n not in shown]
    if missing:
        shown.update(_show(missing))
    result = []
    for name in concrete:
        fields = shown[name]
        if "SHA256" not in fields:
            raise PackageError(f"apt's index has no SHA256 for {name} {fields['Version']}")
        result.append(DebPackage(name=name, version=fields["Version"], sha256=fields["SHA256"]))
    return result


def installed_version(name: str) -> str:
    """Version of an installed host package (the boot loader and disk tools come from the host)."""
    out = _run(["dpkg-query", "-W", "-f", "${Version}", name]).strip()
    if not out:
        raise PackageError(f"Debian package {name} is not installed: run `make setup`")
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(pkg: DebPackage, debs_dir: Path) -> Path:
    """The verified .deb of `pkg` in `debs_dir`, downloaded with `apt-get download` if missing."""
    debs_dir.mkdir(parents=True, exist_ok=True)
    final = debs_dir / f"{pkg.name}_{pkg.sha256[:16]}.deb"
    if final.exists() and _sha256(final) == pkg.sha256:
        return final
    work = debs_dir / f".download-{pkg.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    work.chmod(0o777)  # lets apt's _apt user write here (else apt warns and downloads unsandboxed)
    try:
        _run(["apt-get", "download", "-q", f"{pkg.name}={pkg.version}"], cwd=work)
        got = list(work.glob("*.deb"))
        if len(got) != 1:
            raise PackageError(f"apt-get download {pkg.name}={pkg.version} produced {got}")
        actual = _sha256(got[0])
        if actual != pkg.sha256:
            raise PackageError(
                f"{got[0].name}: SHA256 {actual} does not match apt's index ({pkg.sha256}); "
                "run `apt-get update` and retry"
            )
        got[0].replace(final)
        for stale in debs_dir.glob(f"{pkg.name}_*.deb"):
            if stale != final:
                stale.unlink()  # an older version of the same package
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def unpack(deb: Path, dest: Path) -> None:
    """Unpack a .deb's files under `dest` with `dpkg -x` (nothing is installed on the host)."""
    dest.mkdir(parents=True, exist_ok=True)
    _run(["dpkg", "-x", str(deb), str(dest)])
