"""The single file `dist/dvp`: the shell launcher (packaging/launcher.sh) followed by the
PyInstaller bundle directory as a tar.gz, and the bundle's build stamp.

build.spec writes the file with `write_onefile` once PyInstaller has collected the bundle.
`restamp` makes another binary from a built one without a second PyInstaller build: it copies the
payload, replaces the build stamp (`controlplane/common/build-stamp.json`, which
controlplane/common/version.py reads at import) and writes it under a new hash, so the launcher
unpacks it into its own cache directory. Two builds that differ only by version and features
(the upgrade tests' A and B) cost one PyInstaller build and one repack.

Standard library only: build.spec loads this file by path (the name `packaging` is taken by the
PyPI package PyInstaller itself imports), and so does tests/support/dist.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

LAUNCHER = Path(__file__).resolve().with_name("launcher.sh")
# PyInstaller's contents directory inside the bundle (sys._MEIPASS), then where the stamp goes:
# next to controlplane/common/version.py's frozen `__file__`
STAMP_DEST = "controlplane/common"
STAMP_NAME = "build-stamp.json"
_STAMP_MEMBER = f"dvp/_internal/{STAMP_DEST}/{STAMP_NAME}"
COMPRESSLEVEL = 6  # the release binary's payload
RESTAMP_COMPRESSLEVEL = 1  # measured on the full bundle: 6 s instead of 12 s, 85 MiB instead of 80


def build_stamp(*, version: str = "", features: str = "") -> dict[str, object] | None:
    """The stamp for DVP_BUILD_VERSION / DVP_BUILD_FEATURES (comma separated), None when both are empty.

    Raises ValueError when a value is not a version string or a feature name."""
    version = version.strip()
    names = sorted({f.strip() for f in features.split(",") if f.strip()})
    if version and not re.fullmatch(r"[0-9A-Za-z.+_-]{1,64}", version):
        raise ValueError(f"DVP_BUILD_VERSION={version!r} is not a version string")
    if not all(re.fullmatch(r"[a-z0-9-]{1,40}", f) for f in names):
        raise ValueError(f"DVP_BUILD_FEATURES={names!r}: names are lower-case letters, digits and '-'")
    if not version and not names:
        return None
    stamp: dict[str, object] = {"features": names}
    if version:
        stamp["version"] = version
    return stamp


def stamp_bytes(stamp: dict[str, object]) -> bytes:
    return (json.dumps(stamp, indent=2, sort_keys=True) + "\n").encode()


def write_onefile(out: Path, payload: bytes) -> str:
    """Write launcher + payload (a tar.gz whose top directory is `dvp/`) to `out` atomically; its hash."""
    digest = hashlib.sha256(payload).hexdigest()[:20]
    launcher = LAUNCHER.read_text().replace("@HASH@", digest)
    head = launcher.replace("@SKIP@", "0000000000")
    skip = len(head.encode()) + 1
    launcher = launcher.replace("@SKIP@", f"{skip:010d}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(launcher.encode())
        f.write(payload)
    tmp.chmod(0o755)
    tmp.replace(out)
    return digest


def pack_bundle(bundle: Path) -> bytes:
    """The payload: the bundle directory as a tar.gz with top directory `dvp/`."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz", compresslevel=COMPRESSLEVEL) as tar:
        tar.add(bundle, arcname="dvp")
    return archive.getvalue()


def read_payload(binary: Path) -> bytes:
    """The tar.gz after the launcher of a binary written by `write_onefile`."""
    data = binary.read_bytes()
    m = re.search(rb"^skip=(\d{10})$", data[:4096], re.MULTILINE)
    if not m:
        raise ValueError(f"{binary}: not a dvp single binary (no launcher `skip=` line)")
    return data[int(m.group(1)) - 1 :]


def restamp(
    binary: Path, out: Path, stamp: dict[str, object] | None, *, compresslevel: int = RESTAMP_COMPRESSLEVEL
) -> str:
    """Write `out`: `binary` with its build stamp replaced by `stamp` (removed if None); its hash.

    The payload is read as a stream and written again with the stamp as its last member (tar
    creates the directories it needs; the stamp's own directory is in the bundle anyway)."""
    archive = io.BytesIO()
    bundled = False  # the bundle has our package data where the stamp goes
    with (
        tarfile.open(fileobj=io.BytesIO(read_payload(binary)), mode="r|gz") as src,
        tarfile.open(fileobj=archive, mode="w:gz", compresslevel=compresslevel) as dst,
    ):
        for member in src:
            if member.name == _STAMP_MEMBER:
                continue
            bundled = bundled or member.name.startswith(_STAMP_MEMBER.rsplit("/", 2)[0] + "/")
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        if stamp is not None:
            data = stamp_bytes(stamp)
            info = tarfile.TarInfo(_STAMP_MEMBER)
            info.size, info.mode, info.mtime = len(data), 0o644, int(binary.stat().st_mtime)
            dst.addfile(info, io.BytesIO(data))
    if not bundled:
        raise ValueError(
            f"{binary}: no {_STAMP_MEMBER.rsplit('/', 2)[0]}/ in the bundle (PyInstaller layout changed?)"
        )
    return write_onefile(out, archive.getvalue())
