"""NoCloud seeds: what cloud-init (and the guest test image) finds on them, and bad input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controlplane.nodehandler.cloudinit_seed import SeedData, SeedError, build_seed

DATA = SeedData(
    instance_id="0b1c6a1e-1f2d-4c5e-9a8b-7c6d5e4f3a2b",
    local_hostname="web-1.example",
    user_data="#cloud-config\npackages: [nginx]\n",
    network_config="version: 2\nethernets: {}\n",
)


def _iso_file(iso: Path, name: str) -> str:
    return subprocess.run(
        ["isoinfo", "-J", "-i", str(iso), "-x", f"/{name}"], capture_output=True, text=True, check=True
    ).stdout


def test_iso_seed_is_labelled_cidata_and_holds_the_files(tmp_path: Path) -> None:
    iso = build_seed(DATA, tmp_path / "seed.iso")
    header = subprocess.run(
        ["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True, check=True
    ).stdout
    assert "Volume id: cidata" in header
    assert _iso_file(iso, "meta-data") == f"instance-id: {DATA.instance_id}\nlocal-hostname: web-1.example\n"
    assert _iso_file(iso, "user-data") == DATA.user_data
    assert _iso_file(iso, "network-config") == DATA.network_config


def test_network_config_is_left_out_when_not_given(tmp_path: Path) -> None:
    iso = build_seed(SeedData(instance_id="i-1", local_hostname="a"), tmp_path / "seed.iso")
    listing = subprocess.run(
        ["isoinfo", "-J", "-f", "-i", str(iso)], capture_output=True, text=True, check=True
    ).stdout
    assert sorted(listing.split()) == ["/meta-data", "/user-data"]


def test_vfat_seed_is_labelled_cidata_and_holds_the_files(tmp_path: Path) -> None:
    img = build_seed(DATA, tmp_path / "seed.img", fmt="vfat")
    env = {"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}
    label = subprocess.run(
        ["mlabel", "-s", "-i", str(img), "::"], capture_output=True, text=True, env=env, check=True
    )
    assert "CIDATA" in label.stdout
    user_data = subprocess.run(
        ["mtype", "-i", str(img), "::/user-data"], capture_output=True, text=True, env=env, check=True
    )
    assert user_data.stdout == DATA.user_data


def test_rebuilding_replaces_the_seed(tmp_path: Path) -> None:
    out = tmp_path / "seed.iso"
    build_seed(DATA, out)
    build_seed(SeedData(instance_id="i-2", local_hostname="other"), out)
    assert _iso_file(out, "meta-data") == "instance-id: i-2\nlocal-hostname: other\n"
    assert [p.name for p in tmp_path.iterdir()] == ["seed.iso"], "no temporary files left behind"


@pytest.mark.parametrize(
    ("instance_id", "hostname", "field"),
    [
        ("", "a", "instance-id"),
        ("has space", "a", "instance-id"),
        ("i-1", "", "local-hostname"),
        ("i-1", "under_score", "local-hostname"),
        ("i-1", "-leading", "local-hostname"),
        ("i-1", "a" * 64, "local-hostname"),
        ("i-1", "trailing.", "local-hostname"),
        ("i-1", "new\nline", "local-hostname"),
    ],
    ids=[
        "empty-iid",
        "space-iid",
        "empty-host",
        "underscore",
        "leading-dash",
        "label-too-long",
        "trailing-dot",
        "newline",
    ],
)
def test_bad_meta_data_is_refused_naming_the_field(
    tmp_path: Path, instance_id: str, hostname: str, field: str
) -> None:
    with pytest.raises(SeedError, match=field):
        build_seed(SeedData(instance_id=instance_id, local_hostname=hostname), tmp_path / "seed.iso")
    assert not (tmp_path / "seed.iso").exists()


def test_missing_iso_tool_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)
    with pytest.raises(SeedError, match="genisoimage"):
        build_seed(DATA, tmp_path / "seed.iso")


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="format"):
        build_seed(DATA, tmp_path / "seed.bin", fmt="ext4")  # type: ignore[arg-type]
