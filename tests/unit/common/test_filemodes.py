"""Private modes in the data directory (controlplane.common.filemodes)."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from controlplane.common.filemodes import check_tree, create_private_file, make_private_dirs, secure_tree


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_directories_and_files_are_private(tmp_path: Path) -> None:
    make_private_dirs(tmp_path / "a" / "b" / "c")
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3
    create_private_file(tmp_path / "d" / "state.db")
    assert mode(tmp_path / "d") == 0o700 and mode(tmp_path / "d" / "state.db") == 0o600


def test_secure_tree_narrows_what_is_open_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "data"
    (root / "pki").mkdir(parents=True, mode=0o755)
    root.chmod(0o700)
    (root / "pki").chmod(0o755)
    for name, m in (("state.db", 0o644), ("pki/ca.key", 0o640), ("pki/ca.crt", 0o644), ("dvcr.json", 0o644),
                    ("run.sh", 0o755)):
        (root / name).write_text("x")
        (root / name).chmod(m)
    with caplog.at_level(logging.WARNING):
        fixes = secure_tree(root)
    assert {str(f.path.relative_to(root)) for f in fixes} == {"pki", "state.db", "pki/ca.key", "run.sh"}
    assert mode(root / "state.db") == 0o600 and mode(root / "pki/ca.key") == 0o600 and mode(root / "pki") == 0o700
    assert mode(root / "run.sh") == 0o700, "owner bits are kept"
    assert mode(root / "pki/ca.crt") == 0o644 and mode(root / "dvcr.json") == 0o644, "certificates stay readable"
    assert f"{root / 'state.db'} was 0644, now 0600" in caplog.text
    assert check_tree(root) == []
