"""The single file (packaging/onefile.py) and its build stamp: build.spec's validation of
DVP_BUILD_VERSION / DVP_BUILD_FEATURES, a restamped binary that the launcher unpacks under its
own hash with the new stamp in place, and controlplane.common.version reading a stamp."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from controlplane.common import version
from tests.support.dist import _onefile

onefile = _onefile()


@pytest.mark.parametrize(
    ("version", "features", "want"),
    [
        ("", "", None),
        ("0.2.0", "", {"version": "0.2.0", "features": []}),
        ("", " upgrade-test, a ,upgrade-test", {"features": ["a", "upgrade-test"]}),
    ],
    ids=["none", "version", "features-deduplicated-sorted"],
)
def test_build_stamp(version: str, features: str, want: dict[str, object] | None) -> None:
    assert onefile.build_stamp(version=version, features=features) == want


@pytest.mark.parametrize(
    ("version", "features", "message"),
    [("1.0 beta", "", "is not a version string"), ("", "Upgrade_Test", "names are lower-case letters")],
    ids=["version", "feature"],
)
def test_build_stamp_refuses(version: str, features: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        onefile.build_stamp(version=version, features=features)


def test_restamp_writes_a_new_binary_with_the_stamp(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    common = bundle / "_internal" / "controlplane" / "common"
    common.mkdir(parents=True)
    (common / "py.typed").write_text("")
    program = bundle / "dvp"
    program.write_text(f'#!/bin/sh\ncat "$(dirname "$0")/_internal/controlplane/common/{onefile.STAMP_NAME}"\n')
    program.chmod(0o755)
    a, b = tmp_path / "a", tmp_path / "b"
    hash_a = onefile.write_onefile(a, onefile.pack_bundle(bundle))
    hash_b = onefile.restamp(a, b, onefile.build_stamp(version="0.2.0", features="upgrade-test"))
    assert hash_a != hash_b
    env = {**os.environ, "DVP_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([str(b)], capture_output=True, text=True, env=env, check=True, timeout=60)
    assert json.loads(out.stdout) == {"version": "0.2.0", "features": ["upgrade-test"]}
    assert (tmp_path / "cache" / hash_b).is_dir()
    # restamping again replaces the stamp; no stamp at all removes it
    hash_c = onefile.restamp(b, tmp_path / "c", onefile.build_stamp(version="0.3.0"))
    out = subprocess.run([str(tmp_path / "c")], capture_output=True, text=True, env=env, check=True, timeout=60)
    assert json.loads(out.stdout) == {"version": "0.3.0", "features": []}
    assert hash_c not in (hash_a, hash_b)
    onefile.restamp(b, tmp_path / "d", None)
    out = subprocess.run([str(tmp_path / "d")], capture_output=True, text=True, env=env, check=False, timeout=60)
    assert out.returncode != 0 and onefile.STAMP_NAME in out.stderr


def test_version_reads_a_stamp(tmp_path: Path) -> None:
    assert version._read_stamp(str(tmp_path / "none.json")) == (None, frozenset())
    path = tmp_path / version.STAMP_NAME
    path.write_text(json.dumps({"version": "0.2.0", "features": ["upgrade-test"]}))
    assert version._read_stamp(str(path)) == ("0.2.0", frozenset({"upgrade-test"}))
    path.write_text(json.dumps({"features": "upgrade-test"}))
    with pytest.raises(RuntimeError, match="not a build stamp"):
        version._read_stamp(str(path))


def test_stamp_names_agree() -> None:
    assert version.STAMP_NAME == onefile.STAMP_NAME
