"""The single binary for tests: `built_dvp()` builds `dist/dvp` with PyInstaller once and
caches it under `.cache/dist/<source hash>-<version>/dvp`. Another version or feature set
(`DVP_BUILD_FEATURES`) is the default binary restamped (packaging/onefile.py: its build stamp
replaced and the payload repacked, seconds), not a second PyInstaller build.

The key is a hash of everything that goes into the binary (our packages, playbooks, build.spec,
packaging/, pyproject.toml) plus the version override, so a test session builds at most once
per version, and a later session reuses the binary until the sources change. Builds run under
a file lock (one at a time per checkout, even across overlapping pytest runs), niced, each in
its own work directory; a failed build raises with the tail of PyInstaller's log.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "dist"
_INPUTS = ("installer", "controlplane", "nodeimage", "playbooks", "packaging", "docs", "examples", "build.spec", "pyproject.toml")


def source_hash() -> str:
    digest = hashlib.sha256()
    for name in _INPUTS:
        top = ROOT / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


_STAMPED_ENV = {"DVP_BUILD_FEATURES"}  # build environment a restamp can stand in for


def _onefile() -> ModuleType:
    """packaging/onefile.py, loaded by path (`packaging` is also a PyPI package)."""
    spec = importlib.util.spec_from_file_location("dvp_onefile", ROOT / "packaging" / "onefile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def built_dvp(*, version: str | None = None, extra_env: dict[str, str] | None = None) -> Path:
    """Path of a `dvp` single binary built from this checkout (reporting `version` if given;
    `extra_env` is build environment, e.g. DVP_BUILD_FEATURES)."""
    digest = source_hash()
    binary = CACHE / _key(digest, version, extra_env) / "dvp"
    if binary.is_file():
        os.utime(binary.parent)  # in use: see PRUNE_AFTER
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".build.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.is_file():
            return binary
        if (version or extra_env) and set(extra_env or {}) <= _STAMPED_ENV:
            base = CACHE / _key(digest, None, None) / "dvp"
            if not base.is_file():
                _build(base, version=None, extra_env=None)
            onefile = _onefile()
            stamp = onefile.build_stamp(version=version or "", features=(extra_env or {}).get("DVP_BUILD_FEATURES", ""))
            binary.parent.mkdir(parents=True, exist_ok=True)
            onefile.restamp(base, binary, stamp)
        else:
            _build(binary, version=version, extra_env=extra_env)
    return binary


def _key(digest: str, version: str | None, extra_env: dict[str, str] | None) -> str:
    extra = "-" + hashlib.sha256(repr(sorted((extra_env or {}).items())).encode()).hexdigest()[:8] if extra_env else ""
    return f"{digest}-{version or 'default'}{extra}"


def _build(binary: Path, *, version: str | None, extra_env: dict[str, str] | None) -> None:
    """One PyInstaller build into `binary` (the caller holds the build lock)."""
    out_dir = binary.parent
    work = CACHE / f".work-{out_dir.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, **(extra_env or {}), "DVP_DIST_OUT": str(work / "dvp")}
    env.pop("DVP_BUILD_VERSION", None)
    if version:
        env["DVP_BUILD_VERSION"] = version
    log = work / "build.log"
    with log.open("wb") as f:
        done = subprocess.run(
            ["nice", "-n", "10", str(Path(sys.executable).with_name("pyinstaller")), "--noconfirm",
             "--log-level", "WARN", "--workpath", str(work / "build"), "--distpath", str(work / "dist"),
             str(ROOT / "build.spec")],
            cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    if done.returncode != 0 or not (work / "dvp").is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"building dist/dvp failed (exit {done.returncode}); {log}:\n{tail}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (work / "dvp").replace(binary)
    shutil.rmtree(work, ignore_errors=True)
    _prune(keep=out_dir)


PRUNE_AFTER = 6 * 3600.0
"""A build of another source state is dropped once unused this long: checkouts sharing one cache
(worktrees) must not delete each other's binaries while their tests run them."""


def _prune(*, keep: Path) -> None:
    """Drop cached builds of other source states not used for PRUNE_AFTER seconds."""
    prefix = keep.name.split("-", 1)[0]
    cutoff = time.time() - PRUNE_AFTER
    for entry in CACHE.iterdir():
        if entry.is_dir() and not entry.name.startswith((prefix, ".")) and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)
