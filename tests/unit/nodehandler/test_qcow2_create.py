"""The node handler's own empty qcow2 files are the bytes `qemu-img create` writes (over sizes and
backing names), QEMU reads and writes them through a chain, `qemu-img check` finds nothing wrong,
and what the writer cannot make goes to qemu-img, whose error names the file (real qemu-img and
qemu-io)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controlplane.nodehandler import qcow2_create, storage, volume_chain

MI, GI, TI = 2**20, 2**30, 2**40
SIZES = (0, 1, 512, MI + 1, 512 * MI, 512 * MI + 1, 4 * GI, 100 * GI, 4 * TI + 1, 16 * TI)


def _qemu_img_create(path: Path, size: int, backing: str | None) -> None:
    extra = ["-F", "qcow2", "-u", "-b", backing] if backing else []
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *extra, str(path), str(size)], check=True)


def _qemu_io(path: Path, command: str) -> str:
    done = subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, str(path)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0 and "fail" not in done.stdout.lower(), done.stdout + done.stderr
    return done.stdout


def _check(path: Path) -> None:
    done = subprocess.run(["qemu-img", "check", "-q", "-f", "qcow2", str(path)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("backing", [None, "/var/lib/dvp/volumes/ns/base.qcow2", "relative name é.qcow2"])
def test_the_same_bytes_as_qemu_img_create(tmp_path: Path, backing: str | None) -> None:
    for size in SIZES:
        theirs, ours = tmp_path / f"theirs-{size}", tmp_path / f"ours-{size}"
        _qemu_img_create(theirs, size, backing)
        qcow2_create.write(ours, size, backing)
        assert ours.read_bytes() == theirs.read_bytes(), f"size {size}, backing {backing!r}"


def test_qemu_reads_and_writes_through_an_overlay_it_did_not_write(tmp_path: Path) -> None:
    base = tmp_path / "base.qcow2"
    qcow2_create.write(base, 64 * MI)
    _qemu_io(base, "write -P 0xab 1M 2M")
    top = tmp_path / "top.qcow2"
    qcow2_create.write(top, 96 * MI, str(base))
    _check(base)
    _check(top)
    _qemu_io(top, "read -P 0xab 1M 2M")  # the backing file's data, seen through the overlay
    _qemu_io(top, "read -P 0 80M 1M")  # past the base's end: zeros
    _qemu_io(top, "write -P 0xcd 2M 1M")
    _qemu_io(top, "read -P 0xcd 2M 1M")
    _qemu_io(base, "read -P 0xab 2M 1M")  # the base is untouched
    _check(top)
    assert volume_chain.backing(top) == base and storage.capacity(top) == 96 * MI


def test_an_empty_volume_and_an_overlay_are_made_without_qemu_img(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was run: {args}")

    monkeypatch.setattr(subprocess, "run", no_process)
    disk = tmp_path / "ns" / "disk.qcow2"
    storage.create_empty(disk, 8 * MI)
    volume_chain.overlay(disk, tmp_path / "ns" / "restored.qcow2", 4 * MI)  # grown to the base's size
    volume_chain.freeze(disk, tmp_path / "ns" / "snap.qcow2")
    monkeypatch.undo()
    assert storage.capacity(tmp_path / "ns" / "restored.qcow2") == 8 * MI
    assert volume_chain.backing(disk) == tmp_path / "ns" / "snap.qcow2"
    for path in (disk, tmp_path / "ns" / "restored.qcow2", tmp_path / "ns" / "snap.qcow2"):
        _check(path)


def test_what_the_writer_cannot_make_goes_to_qemu_img(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside what qcow2 holds"):
        qcow2_create.layout(3 * 2**50, None)
    with pytest.raises(storage.VolumeError, match="too large") as err:
        storage.create_empty(tmp_path / "ns" / "huge.qcow2", 3 * 2**50)
    assert "huge.qcow2" in str(err.value)
    base = tmp_path / "ns" / "base.qcow2"
    storage.create_empty(base, MI)
    long_named = tmp_path / "ns" / ("x" * 200) / ("y" * 200) / ("z" * 200) / ("w" * 200) / ("v" * 200) / "base.qcow2"
    long_named.parent.mkdir(parents=True)
    long_named.write_bytes(base.read_bytes())
    with pytest.raises(storage.VolumeError, match="creating an overlay of base.qcow2"):
        volume_chain.overlay(long_named, tmp_path / "ns" / "top.qcow2", MI)
    assert not list((tmp_path / "ns").glob("*top*"))  # no partial file left
