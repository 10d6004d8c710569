"""Files the handler keeps on its node: the image cache (pulled through an ImageSource), volume
files made with qemu-img, and the console endpoint's certificate from the platform CA."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from controlplane.common import pki
from controlplane.nodehandler import storage, tls
from controlplane.nodehandler.config import AgentConfig
from controlplane.nodehandler.images import ImageCache, ImageError, LocalFileSource
from controlplane.nodehandler.layout import Layout


def _qcow2(path: Path, size: str = "8M") -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return path


def test_image_cache_owns_a_copy_and_checks_digests(tmp_path: Path) -> None:
    src = _qcow2(tmp_path / "src.qcow2")
    cache = ImageCache(tmp_path / "cache", [LocalFileSource()])
    ref = f"file://{src}"
    assert cache.get(ref) is None
    image = cache.ensure(ref)
    assert (image.format, image.virtual_size) == ("qcow2", 8 * 2**20)
    src.unlink()
    assert cache.ensure(ref).path == image.path and image.path.exists(), "served from the cache"
    other = _qcow2(tmp_path / "other.qcow2")
    with pytest.raises(ImageError, match="differs from sha256:0000"):
        cache.ensure(f"file://{other}", "sha256:" + "0" * 64)
    digest = "sha256:" + hashlib.sha256(other.read_bytes()).hexdigest()
    assert cache.ensure(f"file://{other}", digest).path.name == f"{digest[7:]}.img"
    assert not list((tmp_path / "cache").glob(".*partial")), "no partial files left behind"
    with pytest.raises(ImageError, match="DVCR is not configured"):
        cache.ensure("dvcr.example:5443/vi/ns/img:latest")


def test_volumes_copy_grow_and_refuse_a_too_small_size(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "cache", [LocalFileSource()])
    image = cache.ensure(f"file://{_qcow2(tmp_path / 'src.qcow2', '16M')}")
    vol = tmp_path / "v" / "ns" / "root.uid.qcow2"
    storage.create_from_image(vol, image, 32 * 2**20)
    assert storage.capacity(vol) == 32 * 2**20
    storage.resize_offline(vol, 64 * 2**20)
    assert storage.capacity(vol) == 64 * 2**20
    with pytest.raises(storage.VolumeError, match="smaller than the image"):
        storage.create_from_image(tmp_path / "v" / "ns" / "small.qcow2", image, 8 * 2**20)
    assert not Layout.partial(tmp_path / "v" / "ns" / "small.qcow2").exists()
    empty = tmp_path / "v" / "ns" / "data.uid.qcow2"
    storage.create_empty(empty, 2**30)
    assert storage.capacity(empty) == 2**30
    storage.delete(vol)
    storage.delete(empty)
    assert not (tmp_path / "v" / "ns").exists(), "the namespace directory goes once empty"


def test_console_certificate_is_issued_from_the_platform_ca_and_follows_it(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "state", tmp_path / "run")
    layout.create()
    ca1 = pki.ensure_ca(tmp_path / "ca1")
    config = AgentConfig(kubeconfig=Path("/k"), node_name="n1", pki_dir=tmp_path / "ca1")
    pair = tls.serving_pair(config, layout, "10.0.0.5")
    leaf = x509.load_pem_x509_certificate(pair.cert_pem())
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca1.cert_pem()))
    assert {"n1", "10.0.0.5", "127.0.0.1"} <= pki.cert_sans(pair.cert_path)
    # a new CA (a reinstalled control plane): the certificate is issued again from it
    ca2 = pki.ensure_ca(tmp_path / "ca2")
    pair2 = tls.serving_pair(AgentConfig(kubeconfig=Path("/k"), node_name="n1", pki_dir=tmp_path / "ca2"), layout,
                             "10.0.0.5")
    x509.load_pem_x509_certificate(pair2.cert_pem()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(ca2.cert_pem()))
    assert (pair2.key_path.stat().st_mode & 0o777) == 0o600
