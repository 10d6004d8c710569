"""The importer against real things: an HTTPS server with its own CA (redirects,
checksums), CNCF Distribution as a source registry with a pull secret, and DVCR. Each
disk format (qcow2, raw, iso, vmdk, vdi) plain, gzip'd and xz'd; what lands in DVCR is
pulled back with `pull_disk` and compared byte for byte, virtual sizes with qemu-img."""

from __future__ import annotations

import bz2
import json
import shutil
import struct
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.dvcr.client import RegistryClient
from controlplane.dvcr.importer import artifact
from controlplane.dvcr.importer.errors import ImportFailed
from controlplane.dvcr.importer.pipeline import ImportResult, import_image
from controlplane.dvcr.importer.progress import Progress
from controlplane.dvcr.importer.sink import RegistrySink
from controlplane.dvcr.importer.sources import HttpSource, RegistrySource
from controlplane.dvcr.pull import PullError, pull_disk
from tests.integration.dvcr.helpers import Api, DiskImage, oci_layout, qemu_virtual_size, run, skopeo, tar_of
from tests.services.dvcr import DistributionProcess, DvcrProcess, TlsFileServer

pytestmark = pytest.mark.integration
KEYS = [f"{fmt}{ext}" for fmt in ("qcow2", "raw", "iso", "vmdk", "vdi") for ext in ("", ".gz", ".xz")]


async def do_import(dvcr: DvcrProcess, source: object, repo: str, **kw: object) -> ImportResult:
    conn = dvcr.connection("importer")
    async with RegistryClient(conn.url, ssl_context=conn.ssl_context(), username=conn.username,
                              password=conn.password) as client:
        return await import_image(source, RegistrySink(client), repo, **kw)  # type: ignore[arg-type]


async def check_stored(dvcr: DvcrProcess, repo: str, image: DiskImage, tmp_path: Path) -> None:
    """What DVCR holds is the unpacked disk, byte for byte, with the right annotations."""
    disk = await pull_disk(f"{repo}:latest", tmp_path / "pulled", connection=dvcr.connection("node"))
    assert disk.format == image.format
    assert disk.virtual_size == image.virtual_size == qemu_virtual_size(disk.path, image.format)
    assert disk.path.read_bytes() == image.disk.read_bytes()
    assert disk.annotations[artifact.A_COMPRESSION] == (image.compression or "none")
    assert int(disk.annotations[artifact.A_UNPACKED]) == image.disk.stat().st_size


@pytest.mark.parametrize("key", KEYS)
async def test_http_import_of_each_format_and_compression(dvcr: DvcrProcess, web: TlsFileServer,
                                                          disk_images: dict[str, DiskImage], key: str,
                                                          tmp_path: Path) -> None:
    image = disk_images[key]
    seen: list[Progress] = []
    repo = f"vi/http/{key.replace('.', '-')}"
    result = await do_import(dvcr, HttpSource(web.url(image.name), ca_bundle=web.ca_file), repo,
                             progress=seen.append)
    assert (result.format, result.compression) == (image.format, image.compression)
    assert result.virtual_size == image.virtual_size
    assert result.source_size == image.path.stat().st_size
    assert result.source == f"http: {web.url(image.name)}"
    assert seen and seen[-1].phase == "done" and seen[-1].average_speed > 0
    await check_stored(dvcr, repo, image, tmp_path)


async def test_http_import_follows_redirects(dvcr: DvcrProcess, web: TlsFileServer,
                                             disk_images: dict[str, DiskImage], tmp_path: Path) -> None:
    image = disk_images["qcow2.gz"]
    await do_import(dvcr, HttpSource(web.url(f"redirect/{image.name}"), ca_bundle=web.ca_file), "vi/http/redirect")
    await check_stored(dvcr, "vi/http/redirect", image, tmp_path)


async def test_http_import_needs_the_servers_ca(dvcr: DvcrProcess, web: TlsFileServer,
                                               disk_images: dict[str, DiskImage]) -> None:
    with pytest.raises(ImportFailed) as err:
        await do_import(dvcr, HttpSource(web.url(disk_images["raw"].name)), "vi/http/noca")
    assert err.value.reason == "SourceUnavailable"
    assert f"127.0.0.1:{web.port}" in err.value.message and "certificate" in err.value.message


@pytest.mark.parametrize("alg", ["md5", "sha1", "sha256", "sha512"])
async def test_checksum_of_each_algorithm(dvcr: DvcrProcess, web: TlsFileServer,
                                          disk_images: dict[str, DiskImage], alg: str) -> None:
    import hashlib

    image = disk_images["vdi.xz"]
    want = hashlib.new(alg, image.path.read_bytes()).hexdigest()
    result = await do_import(dvcr, HttpSource(web.url(image.name), ca_bundle=web.ca_file), f"vi/sum/{alg}",
                             checksums={alg: want})
    assert result.checksums == {alg: want}


@pytest.mark.parametrize("alg", ["streebog256", "streebog512"])
async def test_streebog_checksum_is_verified_or_refused(dvcr: DvcrProcess, web: TlsFileServer,
                                                        disk_images: dict[str, DiskImage], alg: str) -> None:
    """DVP's GOST checksums: checked when hashlib has them, else a clear refusal, never skipped."""
    import hashlib

    image = disk_images["vdi.xz"]
    try:
        want = hashlib.new(alg, image.path.read_bytes()).hexdigest()
    except ValueError:  # no GOST in this OpenSSL: the import must say so, not pass unchecked
        with pytest.raises(ImportFailed) as err:
            await do_import(dvcr, HttpSource(web.url(image.name), ca_bundle=web.ca_file), f"vi/gost/{alg}",
                            checksums={alg: "0" * (64 if alg == "streebog256" else 128)})
        assert err.value.reason == "InvalidSource" and f"checksum {alg}" in err.value.message
        assert "cannot be verified here" in err.value.message
        return
    result = await do_import(dvcr, HttpSource(web.url(image.name), ca_bundle=web.ca_file), f"vi/gost/{alg}",
                             checksums={alg: want})
    assert result.checksums == {alg: want}


def storage_snapshot(dvcr: DvcrProcess) -> set[str]:
    root = dvcr.storage
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "upload-tickets" not in p.parts}


@pytest.mark.parametrize("key", ["qcow2", "raw.gz"], ids=["streamed", "spooled"])
async def test_checksum_mismatch_fails_and_stores_nothing(dvcr: DvcrProcess, web: TlsFileServer,
                                                          disk_images: dict[str, DiskImage], key: str) -> None:
    image = disk_images[key]
    repo = f"vi/bad/{key.replace('.', '-')}"
    before = storage_snapshot(dvcr)
    with pytest.raises(ImportFailed) as err:
        await do_import(dvcr, HttpSource(web.url(image.name), ca_bundle=web.ca_file), repo,
                        checksums={"sha256": "0" * 64})
    assert err.value.reason == "ChecksumMismatch" and "sha256" in err.value.message
    assert storage_snapshot(dvcr) == before, "no blob, link, manifest or upload left behind"
    api = Api(dvcr.url, dvcr.ca_file, dvcr.creds("node"))
    assert api("GET", f"/v2/{repo}/manifests/latest").status_code == 404


@pytest.fixture(scope="module")
def not_disks(disk_images: dict[str, DiskImage]) -> dict[str, Path]:
    root = next(iter(disk_images.values())).path.parent
    out = {}
    with zipfile.ZipFile(root / "bundle.zip", "w") as z:
        z.writestr("disk.img", b"\0" * 4096)
    out["zip archive"] = root / "bundle.zip"
    shutil.copy("/bin/true", root / "program")
    out["ELF executable"] = root / "program"
    (root / "page.html").write_text("<!DOCTYPE html><html><body>Not found</body></html>\n")
    out["HTML page"] = root / "page.html"
    (root / "disk.qcow2.bz2").write_bytes(bz2.compress(disk_images["qcow2"].path.read_bytes()))
    out["bzip2-compressed"] = root / "disk.qcow2.bz2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(disk_images["qcow2"].path),
                    str(root / "overlay.qcow2")], check=True)
    out["backing file"] = root / "overlay.qcow2"
    # an image whose clusters live in another file: QEMU would read that file of the host it runs on
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"data_file={root / 'host-file.raw'}",
                    str(root / "data-file.qcow2"), "1M"], check=True)
    out["external data file"] = root / "data-file.qcow2"
    (root / "host-secret.raw").write_bytes(b"host data " * 100_000)
    out["extents its descriptor names"] = root / "extents.vmdk"
    out["extents its descriptor names"].write_bytes(_vmdk_reading(root / "host-secret.raw"))
    # the danger is real: qemu-img (what a node runs to convert a pulled vmdk) copies the named file
    subprocess.run(["qemu-img", "convert", "-f", "vmdk", "-O", "raw", str(root / "extents.vmdk"),
                    str(root / "copied.raw")], check=True)
    assert (root / "copied.raw").read_bytes().startswith(b"host data host data")
    return out


def _vmdk_reading(path: Path) -> bytes:
    """A hosted sparse VMDK with capacity 0 whose embedded descriptor names `path` as a flat extent."""
    desc = (f'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
            f'RW 2048 FLAT "{path}" 0\n').encode()
    head = bytearray(2048)
    head[0:4] = b"KDMV"
    struct.pack_into("<IIQQQQ", head, 4, 1, 3, 0, 128, 1, 2)  # version, flags, capacity 0, grain, descriptor at 1
    head[512:512 + len(desc)] = desc
    return bytes(head)


@pytest.mark.parametrize("named", ["zip archive", "ELF executable", "HTML page", "bzip2-compressed", "backing file",
                                   "external data file", "extents its descriptor names"])
async def test_unknown_content_is_refused_naming_what_it_is(dvcr: DvcrProcess, web: TlsFileServer,
                                                            not_disks: dict[str, Path], named: str) -> None:
    before = storage_snapshot(dvcr)
    with pytest.raises(ImportFailed) as err:
        await do_import(dvcr, HttpSource(web.url(not_disks[named].name), ca_bundle=web.ca_file), "vi/refused/x")
    assert err.value.reason == "UnsupportedFormat"
    assert named in err.value.message
    assert storage_snapshot(dvcr) == before


# --- from a registry ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def containerdisks(distribution: DistributionProcess, disk_images: dict[str, DiskImage],
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Each format as a containerDisk image in Distribution (gzip layers, as skopeo pushes them)."""
    work = tmp_path_factory.mktemp("containerdisks")
    certs = work / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(distribution.ca_file.read_bytes())  # type: ignore[attr-defined]
    refs = {}
    for fmt in ("qcow2", "raw", "iso", "vmdk", "vdi"):
        layer = tar_of({f"disk/image.{fmt}": disk_images[fmt].path.read_bytes()})
        oci_layout(work / fmt, layer)
        refs[fmt] = f"{distribution.registry}/containerdisks/{fmt}:v1"
        run(skopeo(), "copy", "--dest-cert-dir", str(certs), "--dest-creds",
            f"{distribution.user}:{distribution.password}", f"oci:{work / fmt}:latest", f"docker://{refs[fmt]}")
    yield refs


@pytest.mark.parametrize("fmt", ["qcow2", "raw", "iso", "vmdk", "vdi"])
async def test_registry_import_with_pull_secret(dvcr: DvcrProcess, distribution: DistributionProcess,
                                                containerdisks: dict[str, str], disk_images: dict[str, DiskImage],
                                                fmt: str, tmp_path: Path) -> None:
    secret = distribution.pull_secret(tmp_path / "pull-secret.json")
    source = RegistrySource(containerdisks[fmt], pull_secret=secret,
                            ca_bundle=distribution.ca_file)  # type: ignore[attr-defined]
    result = await do_import(dvcr, source, f"cvi/from-registry-{fmt}")
    assert result.source == f"registry: {containerdisks[fmt]}"
    await check_stored(dvcr, f"cvi/from-registry-{fmt}", disk_images[fmt], tmp_path)


async def test_registry_import_without_credentials_is_refused(dvcr: DvcrProcess, distribution: DistributionProcess,
                                                              containerdisks: dict[str, str]) -> None:
    source = RegistrySource(containerdisks["raw"], ca_bundle=distribution.ca_file)  # type: ignore[attr-defined]
    with pytest.raises(ImportFailed) as err:
        await do_import(dvcr, source, "cvi/no-secret")
    assert distribution.registry in err.value.message and "401" in err.value.message


async def test_import_from_dvcr_itself(dvcr: DvcrProcess, disk_images: dict[str, DiskImage], web: TlsFileServer,
                                       tmp_path: Path) -> None:
    """A VirtualImage from a ClusterVirtualImage: DVCR as the source registry."""
    await do_import(dvcr, HttpSource(web.url("disk.vmdk.xz"), ca_bundle=web.ca_file), "cvi/base")
    secret = tmp_path / "secret.json"
    secret.write_text(dvcr.authfile("node").read_text())
    await do_import(dvcr, RegistrySource(f"{dvcr.registry}/cvi/base:latest", pull_secret=secret,
                                         ca_bundle=dvcr.ca_file), "vi/prod/copy")
    await check_stored(dvcr, "vi/prod/copy", disk_images["vmdk"], tmp_path)  # stored unpacked: no compression


# --- the CLI -----------------------------------------------------------------------------------
def test_cli_imports_a_local_file_with_json_result(dvcr: DvcrProcess, disk_images: dict[str, DiskImage]) -> None:
    image = disk_images["vmdk.gz"]
    out = dvcr.dvp("import", str(image.path), "--to", "cvi/cli-local:v7", "-o", "json",
                   "--checksum", f"sha256:{__import__('hashlib').sha256(image.path.read_bytes()).hexdigest()}")
    doc = json.loads(out.stdout)
    assert doc["image"] == f"{dvcr.registry}/cvi/cli-local:v7"
    assert (doc["format"], doc["compression"], doc["virtualSize"]) == ("vmdk", "gzip", image.virtual_size)
    assert doc["unpackedSize"] == image.disk.stat().st_size and doc["source"] == "file: disk.vmdk.gz"
    assert set(doc) >= {"digest", "layerDigest", "storedSize", "sourceSize", "checksums", "durationSeconds",
                        "averageSpeed"}


def test_cli_import_failure_is_clear(dvcr: DvcrProcess, not_disks: dict[str, Path]) -> None:
    out = dvcr.dvp("import", str(not_disks["zip archive"]), "--to", "cvi/cli-bad", "-o", "json", check=False)
    assert out.returncode == 1
    assert json.loads(out.stdout)["error"]["reason"] == "UnsupportedFormat"
    assert "zip archive" in out.stderr and "Traceback" not in out.stderr


async def test_a_node_refuses_a_stored_image_that_names_a_host_file(dvcr: DvcrProcess, api: Api,
                                                                   tmp_path: Path) -> None:
    """An image DVCR took before the importer refused such content (an earlier version) is refused
    again by the node's pull, before qemu-img opens it: nothing of the host file reaches a disk."""
    secret = tmp_path / "host-secret.raw"
    secret.write_bytes(b"host data " * 100_000)
    disk = _vmdk_reading(secret)
    layer = artifact.tar_head("vmdk", len(disk)) + disk + artifact.tar_tail(len(disk))
    api.push_image("vi/old/evil", "latest", [layer], extra={"annotations": {
        artifact.A_FORMAT: "vmdk", artifact.A_VIRTUAL: str(2 << 20), artifact.A_UNPACKED: str(len(disk))}})
    dest = tmp_path / "pulled.qcow2"
    with pytest.raises(PullError, match="vi/old/evil:latest: not used on this node: the VMDK has no capacity"):
        await pull_disk("vi/old/evil:latest", dest, connection=dvcr.connection("node"), want_format="qcow2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host-secret.raw"], "no disk, partial or converted file"
