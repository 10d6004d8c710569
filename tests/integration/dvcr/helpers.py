"""Helpers for DVCR integration tests: a raw HTTP client of the registry API, OCI image
layouts for skopeo to push, disk images made with qemu-img and genisoimage."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


class Api:
    """The registry API over HTTPS with one user's basic credentials (requests)."""

    def __init__(self, url: str, ca: Path, creds: tuple[str, str] | None) -> None:
        self.url = url
        self.ca = str(ca)
        self.s = requests.Session()
        self.s.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override `verify`
        if creds:
            self.s.auth = creds

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.s.request(method, self.url + path, allow_redirects=False, timeout=60, verify=self.ca, **kw)

    def push_blob(self, repo: str, data: bytes) -> str:
        d = sha256(data)
        r = self("POST", f"/v2/{repo}/blobs/uploads/", params={"digest": d}, data=data)
        assert r.status_code == 201, r.text
        return d

    def push_manifest(self, repo: str, ref: str, doc: dict[str, Any], media_type: str = OCI_MANIFEST) -> str:
        body = json.dumps(doc).encode()
        r = self("PUT", f"/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media_type})
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == sha256(body)
        return sha256(body)

    def push_image(self, repo: str, ref: str, layers: list[bytes], *, media_type: str = OCI_MANIFEST,
                   extra: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
                            ).encode()
        docker = media_type == DOCKER_MANIFEST
        doc: dict[str, Any] = {
            "schemaVersion": 2, "mediaType": media_type,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json" if docker else
                       "application/vnd.oci.image.config.v1+json", "digest": self.push_blob(repo, config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar" if docker else
                        "application/vnd.oci.image.layer.v1.tar", "digest": self.push_blob(repo, layer),
                        "size": len(layer)} for layer in layers],
            **(extra or {}),
        }
        return self.push_manifest(repo, ref, doc, media_type), doc

    @staticmethod
    def error_code(r: requests.Response) -> str:
        return str(r.json()["errors"][0]["code"])


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        dirs = sorted({n.split("/")[0] for n in files if "/" in n})
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            t.addfile(ti)
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def oci_layout(root: Path, layer: bytes, *, tag: str = "latest", gzip_layer: bool = False) -> str:
    """A one-layer OCI image layout skopeo can copy (`oci:ROOT:TAG`); returns the manifest digest."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        d = sha256(data)
        (blobs / d.split(":")[1]).write_bytes(data)
        return d

    diff_id = sha256(layer)
    stored = gzip.compress(layer, compresslevel=1, mtime=0) if gzip_layer else layer
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
                        ).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzip_layer else ""),
                    "digest": put(stored), "size": len(stored)}],
    }).encode()
    md = put(manifest)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": md, "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return md


@dataclass(frozen=True)
class DiskImage:
    format: str
    compression: str | None
    path: Path          # the file as served / uploaded
    disk: Path          # the unpacked disk, what DVCR must store byte for byte
    virtual_size: int

    @property
    def name(self) -> str:
        return self.path.name


def qemu_virtual_size(path: Path, fmt: str) -> int:
    out = subprocess.run(["qemu-img", "info", "--output=json", "-f", "raw" if fmt == "iso" else fmt, str(path)],
                         check=True, capture_output=True, text=True).stdout
    return int(json.loads(out)["virtual-size"])


def make_disk_images(root: Path) -> dict[str, DiskImage]:
    """qcow2, raw, iso, vmdk, vdi, each plain, .gz and .xz; keyed like 'vmdk.xz'."""
    root.mkdir(parents=True, exist_ok=True)
    raw = root / "disk.raw"
    data = bytearray(6 << 20)
    data[510:512] = b"\x55\xaa"                               # an MBR boot signature
    data[1 << 20:(1 << 20) + 65536] = os.urandom(65536)      # some incompressible data
    data[3 << 20:(3 << 20) + 4096] = b"dvcr test data " * 273 + b"\0"
    raw.write_bytes(bytes(data))
    plain = {"raw": raw}
    for fmt in ("qcow2", "vmdk", "vdi"):
        plain[fmt] = root / f"disk.{fmt}"
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", fmt, str(raw), str(plain[fmt])], check=True)
    iso_dir = root / "iso-content"
    iso_dir.mkdir(exist_ok=True)
    (iso_dir / "README.TXT").write_bytes(b"dvp test cd\n" * 1000)
    plain["iso"] = root / "disk.iso"
    subprocess.run(["genisoimage", "-quiet", "-V", "DVPTEST", "-o", str(plain["iso"]), str(iso_dir)], check=True)
    out: dict[str, DiskImage] = {}
    for fmt, path in plain.items():
        vsize = qemu_virtual_size(path, fmt)
        out[fmt] = DiskImage(fmt, None, path, path, vsize)
        gz = path.with_name(path.name + ".gz")
        gz.write_bytes(gzip.compress(path.read_bytes(), compresslevel=6))
        out[f"{fmt}.gz"] = DiskImage(fmt, "gzip", gz, path, vsize)
        xz = path.with_name(path.name + ".xz")
        xz.write_bytes(lzma.compress(path.read_bytes(), preset=1))
        out[f"{fmt}.xz"] = DiskImage(fmt, "xz", xz, path, vsize)
    return out


def skopeo() -> str:
    exe = shutil.which("skopeo")
    assert exe, "skopeo missing: run `make setup` (Debian package skopeo)"
    return exe


def run(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result
