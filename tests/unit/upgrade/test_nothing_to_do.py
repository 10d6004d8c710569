"""`dvp upgrade` to the very binary every host already runs is not an error: "nothing to do",
exit 0, dry run or not, with no refusal and no upgrade record. Any difference (another
binary of the same version, components on different versions) still goes to the preflight."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controlplane.common.clusterversions import ClusterVersions
from installer.upgrade import run as runmod
from installer.upgrade.bundle import Bundle
from installer.upgrade.preflight import Refusal

SHA = "ab" * 32


@dataclass
class FakeSession:
    sha: str

    def sha256(self, path: str) -> str:
        return self.sha


@dataclass
class FakeHost:
    name: str
    session: FakeSession

    def s(self) -> FakeSession:
        return self.session


@dataclass
class FakePlatform:
    hosts: list[FakeHost]


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {"gathered": 0}
    bundle = Bundle(path=tmp_path / "dvp", version="0.3.0", data_version=2, sha256=SHA, size=1)
    monkeypatch.setattr(runmod, "inspect_bundle", lambda path, expected_sha256=None: bundle)
    monkeypatch.setattr(runmod, "cluster_versions", lambda kube: ClusterVersions(server="0.3.0", data_version=2))

    def gather(*args: Any, **kwargs: Any) -> list[Refusal]:
        seen["gathered"] += 1
        return [Refusal("versions.jump", "the platform already runs 0.3.0: nothing to upgrade", "-")]

    monkeypatch.setattr(runmod, "gather", gather)
    return seen


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
def test_the_same_binary_is_nothing_to_do(patched: dict[str, Any], tmp_path: Path, dry_run: bool,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    platform = FakePlatform([FakeHost("m", FakeSession(SHA)), FakeHost("w", FakeSession(SHA))])
    request = runmod.UpgradeRequest(bundle=tmp_path / "dvp", dry_run=dry_run, output="json")
    run = runmod.Run(platform, request, tmp_path)  # type: ignore[arg-type]
    assert run.start(kube=None, store=None) == runmod.EXIT_OK  # type: ignore[arg-type]
    assert json.loads(capsys.readouterr().out) == {"result": "nothing-to-do", "version": "0.3.0"}
    assert patched["gathered"] == 0


def test_another_binary_of_the_same_version_still_goes_to_the_preflight(patched: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    platform = FakePlatform([FakeHost("m", FakeSession("cd" * 32))])
    request = runmod.UpgradeRequest(bundle=tmp_path / "dvp", dry_run=True, output="json")
    run = runmod.Run(platform, request, tmp_path)  # type: ignore[arg-type]
    assert run.start(kube=None, store=None) == runmod.EXIT_REFUSED  # type: ignore[arg-type]
    assert patched["gathered"] == 1
