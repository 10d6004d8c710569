"""The playbooks' own modules (playbooks/library/): `dvp_write_files` writes a file when its
content differs (atomically, with its mode), only sets its mode when just that differs, and
leaves an unchanged file alone, so a second install reports nothing changed; `dvp_config_lines`
edits settings as `lineinfile` did per key; both replace files through `module_utils/dvp_atomic`, which
leaves the old file whole when a write fails."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from installer.install.binary import playbooks_dir


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _module(name: str = "dvp_write_files") -> ModuleType:
    # as Ansible ships it with the module: playbooks/module_utils/ seen as ansible.module_utils
    utils = "ansible.module_utils.dvp_atomic"
    sys.modules[utils] = _load(utils, playbooks_dir() / "module_utils" / "dvp_atomic.py")
    return _load(name, playbooks_dir() / "library" / f"{name}.py")


def test_written_when_different_mode_fixed_alone_unchanged_left(tmp_path: Path) -> None:
    mod = _module()
    path = str(tmp_path / "agent-tls.key")
    uid, gid = os.getuid(), os.getgid()
    assert mod._differs(path, b"key\n", 0o600, uid, gid) == (True, False)  # missing
    mod.write_atomic(path, b"key\n", 0o600, uid, gid)
    assert Path(path).read_bytes() == b"key\n" and os.stat(path).st_mode & 0o7777 == 0o600
    assert mod._differs(path, b"key\n", 0o600, uid, gid) == (False, False)
    assert mod._differs(path, b"other\n", 0o600, uid, gid) == (True, False)
    os.chmod(path, 0o644)
    assert mod._differs(path, b"key\n", 0o600, uid, gid) == (False, True)
    assert [p.name for p in tmp_path.iterdir()] == ["agent-tls.key"]  # no temporary file left
    assert mod._wanted({"content_base64": "a2V5Cg=="}) == b"key\n" == mod._wanted({"content": "key\n"})


def test_config_lines_replace_the_last_match_or_append_as_lineinfile_per_key() -> None:
    mod = _module("dvp_config_lines")
    lines = ["#user = \"x\"", "user = \"qemu\"", "# other", "  group=\"kvm\""]
    out = mod.apply(lines, {"user": '"root"', "group": '"root"', "cgroup_controllers": "[ ]"})
    assert out == ["#user = \"x\"", "user = \"root\"", "# other", "group = \"root\"", "cgroup_controllers = [ ]"]
    assert mod.apply(out, {"user": '"root"', "group": '"root"', "cgroup_controllers": "[ ]"}) == out


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _module("dvp_config_lines")
    path = tmp_path / "qemu.conf"
    path.write_text("user = \"qemu\"\n")
    path.chmod(0o640)
    mod.write_atomic(str(path), b"user = \"root\"\n", 0o640, os.getuid(), os.getgid())
    assert path.read_text() == "user = \"root\"\n" and path.stat().st_mode & 0o7777 == 0o640

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        mod.write_atomic(str(path), b"half", 0o640, os.getuid(), os.getgid())
    assert path.read_text() == "user = \"root\"\n"
    assert [p.name for p in tmp_path.iterdir()] == ["qemu.conf"]
