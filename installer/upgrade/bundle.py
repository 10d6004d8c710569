"""What the bundle given to `dvp upgrade --bundle` really is, found out before it is copied
anywhere: an executable file that answers `--version` as dvp does, its data version and build
features (`BUNDLE version -o json`), its size and SHA-256 (compared with `--sha256` if given).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from installer.upgrade.versions import Version, VersionError

_DVP_VERSION = re.compile(r"^dvp, version (\S+)\s*$")


class BundleError(Exception):
    """The bundle is not a usable dvp binary; the message says what was observed and the fix."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    version: str
    data_version: int
    sha256: str
    size: int
    features: tuple[str, ...] = field(default=())


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _run(path: Path, *args: str, timeout: float) -> str:
    try:
        done = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
    except subprocess.TimeoutExpired:
        raise BundleError(f"{path}: `{path.name} {' '.join(args)}` did not answer within {timeout:.0f} s: "
                          "is it a dvp binary for this machine?") from None
    except OSError as exc:
        raise BundleError(f"{path}: cannot run it ({exc.strerror or exc}): give the `dvp` single binary "
                          "(dist/dvp)") from None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise BundleError(f"{path}: `{path.name} {' '.join(args)}` failed: {tail[:300]}")
    return done.stdout


def inspect_bundle(path: Path, *, expected_sha256: str | None = None, timeout: float = 120) -> Bundle:
    """Check `path` is a dvp binary (and matches `expected_sha256`); raises `BundleError`."""
    if not path.exists():
        raise BundleError(f"{path}: no such file")
    if not path.is_file():
        raise BundleError(f"{path}: not a file; give the `dvp` single binary")
    digest = sha256_of(path)
    if expected_sha256 is not None and digest != expected_sha256.strip().lower():
        raise BundleError(f"{path}: SHA-256 is {digest}, expected {expected_sha256.strip().lower()} (--sha256): "
                          "the file is damaged or not the release you meant; download it again")
    if not os.access(path, os.X_OK):
        raise BundleError(f"{path}: not executable (chmod +x it)")
    out = _run(path, "--version", timeout=timeout).strip()
    m = _DVP_VERSION.match(out.splitlines()[-1] if out else "")
    if m is None:
        raise BundleError(f"{path}: `--version` printed {out[:120]!r}, not `dvp, version X.Y.Z`: "
                          "this is not a dvp binary")
    try:
        Version.parse(m.group(1))
    except VersionError as exc:
        raise BundleError(f"{path}: {exc}") from None
    try:
        info = json.loads(_run(path, "version", "-o", "json", timeout=timeout))["client"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path}: `version -o json` gave no client version ({exc}): too old to be upgraded "
                          "to by this installer") from None
    if info.get("version") != m.group(1):
        raise BundleError(f"{path}: `--version` says {m.group(1)} but `version -o json` says {info.get('version')}")
    return Bundle(path=path, version=m.group(1), data_version=int(info.get("dataVersion", 1)), sha256=digest,
                  size=path.stat().st_size, features=tuple(info.get("features", ())))
