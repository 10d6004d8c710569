"""DVCR's filesystem driver removes folders a delete leaves empty, up to its root; a write into a
new folder under the same parent at that moment must still land (seen as a 500 "No such file or
directory" when an image and a cluster image pushed from one snapshot started their uploads while
another upload was removed)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from controlplane.dvcr import fsdriver
from controlplane.dvcr.fsdriver import FilesystemDriver


def test_a_write_whose_new_folder_loses_its_parent_to_a_prune_is_retried(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    driver = FilesystemDriver(tmp_path / "storage")
    real = fsdriver.make_private_dirs
    calls: list[Path] = []

    def pruned_meanwhile(folder: Path) -> None:
        calls.append(folder)
        if len(calls) == 1:  # as os.mkdir answers when a concurrent prune removed the parent
            raise FileNotFoundError(2, "No such file or directory", str(folder))
        real(folder)

    monkeypatch.setattr(fsdriver, "make_private_dirs", pruned_meanwhile)
    driver.put("uploads/u1/info", b"{}")
    assert (tmp_path / "storage/uploads/u1/info").read_bytes() == b"{}" and len(calls) == 2


def test_uploads_started_while_others_are_removed_all_land(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path / "storage")
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            for _ in range(100):
                name = f"uploads/{uuid.uuid4()}"
                driver.put(f"{name}/info", b"{}")
                driver.put(f"{name}/data", b"")
                driver.delete(f"{name}/data")
                driver.delete(f"{name}/info")  # prunes the session's folder, and uploads/ when it is empty
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
