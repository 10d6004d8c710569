"""The single binary's launcher (packaging/launcher.sh, assembled as build.spec does) keeps its
unpack cache small: after unpacking a new version, only it and the one unpacked before it (the
previous version, which an upgrade's rollback runs) stay; older ones are removed."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _launcher(tmp_path: Path, digest: str) -> Path:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        script = b"#!/bin/sh\necho unpacked-program \"$@\"\n"
        info = tarfile.TarInfo("dvp/dvp")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    text = (ROOT / "packaging" / "launcher.sh").read_text().replace("@HASH@", digest)
    head = text.replace("@SKIP@", "0000000000")
    text = text.replace("@SKIP@", f"{len(head.encode()) + 1:010d}")
    path = tmp_path / f"dvp-{digest}"
    path.write_bytes(text.encode() + archive.getvalue())
    path.chmod(0o755)
    return path


def test_cache_keeps_this_version_and_the_previous_one(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "DVP_CACHE_DIR": str(cache)}
    for n, digest in enumerate(("aaaa", "bbbb", "cccc")):
        out = subprocess.run([str(_launcher(tmp_path, digest)), "--version"], capture_output=True, text=True,
                             env=env, check=True, timeout=60)
        assert out.stdout.strip() == "unpacked-program --version"
        stamp = time.time() - 100 + n  # unpack order, whatever the clock's resolution
        os.utime(cache / digest, (stamp, stamp))
    assert sorted(p.name for p in cache.iterdir()) == ["bbbb", "cccc"]
    subprocess.run([str(_launcher(tmp_path, "cccc")), "x"], env=env, check=True, capture_output=True, timeout=60)
    assert sorted(p.name for p in cache.iterdir()) == ["bbbb", "cccc"]  # a warm start prunes nothing
