"""The copy of a disk a running domain uses: the guest's filesystems frozen before the backup job
begins and thawed right after it (not after the copy), only that disk backed up, a failed freeze
refusing a copy that requires consistency before anything starts, and a failed backup job
reported. libvirt's domain is a stand-in recording the calls; the files are real qcow2."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import libvirt
import pytest

from controlplane.nodehandler.storage import VolumeError
from controlplane.nodehandler.volume_copy import InconsistentCopy, copy_in_use

MI = 2**20


class FakeDomain:
    def __init__(self, source: Path, *, agent: bool, job_fails: bool = False, polls_running: int = 0) -> None:
        self.source, self.agent, self.job_fails = source, agent, job_fails
        self.polls_running = polls_running
        """How many times jobInfo still answers that the backup runs."""
        self.calls: list[str] = []
        self.backup_xml = ""

    def name(self) -> str:
        return "ns_vm"

    def XMLDesc(self, _flags: int) -> str:  # noqa: N802 - libvirt's name
        return (f"<domain><devices><disk><source file='{self.source}'/><target dev='vda'/></disk>"
                "<disk><source file='/other.qcow2'/><target dev='vdb'/></disk></devices></domain>")

    def fsFreeze(self, _mounts: Any, _flags: int) -> int:  # noqa: N802
        self.calls.append("freeze")
        if not self.agent:
            raise libvirt.libvirtError("QEMU guest agent is not configured")
        return 2

    def fsThaw(self, _mounts: Any, _flags: int) -> int:  # noqa: N802
        self.calls.append("thaw")
        return 2

    def backupBegin(self, xml: str, _checkpoint: Any, _flags: int) -> None:  # noqa: N802
        self.calls.append("backup")
        self.backup_xml = xml
        target = ET.fromstring(xml).find("disks/disk/target")
        assert target is not None
        subprocess.run(["qemu-img", "convert", "-q", "-U", "-O", "qcow2", str(self.source), target.get("file", "")],
                       check=True)

    def jobInfo(self) -> list[int]:  # noqa: N802
        self.calls.append("poll")
        if self.polls_running > 0:
            self.polls_running -= 1
            return [libvirt.VIR_DOMAIN_JOB_BOUNDED]
        return [libvirt.VIR_DOMAIN_JOB_NONE]

    def jobStats(self, _flags: int) -> dict[str, Any]:  # noqa: N802
        return {"type": libvirt.VIR_DOMAIN_JOB_FAILED if self.job_fails else libvirt.VIR_DOMAIN_JOB_COMPLETED,
                "errmsg": "no space left"}

    def abortJob(self) -> None:  # noqa: N802
        self.calls.append("abort")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1M", str(path)], check=True, capture_output=True)
    return path


def test_frozen_only_while_the_backup_begins_and_only_that_disk(source: Path, tmp_path: Path) -> None:
    dom = FakeDomain(source, agent=True)
    target = tmp_path / "copy.qcow2"
    result = copy_in_use(dom, source, target, 32 * MI, require_consistency=True)
    assert dom.calls == ["freeze", "backup", "thaw", "poll"] and result.consistent
    disks = ET.fromstring(dom.backup_xml).findall("disks/disk")
    assert [(d.get("name"), d.get("backup")) for d in disks] == [("vda", None), ("vdb", "no")]
    out = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x5a 0 1M", str(target)],
                         capture_output=True, text=True, check=True)
    assert "Pattern verification failed" not in out.stdout
    info = subprocess.run(["qemu-img", "info", str(target)], capture_output=True, text=True, check=True).stdout
    assert "virtual size: 32 MiB" in info, "grown to the requested size"
    assert not (tmp_path / ".copy.qcow2.partial").exists()


def test_no_agent_refuses_a_required_consistent_copy_before_anything_starts(source: Path, tmp_path: Path) -> None:
    dom = FakeDomain(source, agent=False)
    with pytest.raises(InconsistentCopy, match="qemu-guest-agent"):
        copy_in_use(dom, source, tmp_path / "copy.qcow2", 16 * MI, require_consistency=True)
    assert dom.calls == ["freeze"] and not (tmp_path / "copy.qcow2").exists()


def test_no_agent_gives_an_unfrozen_copy_when_consistency_is_not_required(source: Path, tmp_path: Path) -> None:
    dom = FakeDomain(source, agent=False)
    result = copy_in_use(dom, source, tmp_path / "copy.qcow2", 16 * MI, require_consistency=False)
    assert dom.calls == ["freeze", "backup", "poll"] and not result.consistent and "unfrozen" in result.method


def test_a_failed_backup_job_leaves_no_file(source: Path, tmp_path: Path) -> None:
    dom = FakeDomain(source, agent=True, job_fails=True)
    with pytest.raises(VolumeError, match="no space left"):
        copy_in_use(dom, source, tmp_path / "copy.qcow2", 16 * MI, require_consistency=True)
    assert dom.calls == ["freeze", "backup", "thaw", "poll"]
    assert not (tmp_path / "copy.qcow2").exists() and not (tmp_path / ".copy.qcow2.partial").exists()


def test_the_job_is_asked_soon_after_it_begins_then_less_often(source: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("controlplane.nodehandler.job_wait.time.sleep", slept.append)
    dom = FakeDomain(source, agent=True, polls_running=12)
    copy_in_use(dom, source, tmp_path / "copy.qcow2", 16 * MI, require_consistency=True, poll=0.2)
    assert dom.calls.count("poll") == 13, "asked until the job is gone, and not after"
    assert slept[0] <= 0.01, "a small copy is seen done within milliseconds"
    assert slept == sorted(slept) and max(slept) == 0.2, "then less often, up to the poll interval"


def test_a_backup_past_its_timeout_is_aborted(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("controlplane.nodehandler.job_wait.time.sleep", lambda _s: None)
    dom = FakeDomain(source, agent=True, polls_running=10**6)
    with pytest.raises(VolumeError, match="not done within"):
        copy_in_use(dom, source, tmp_path / "copy.qcow2", 16 * MI, require_consistency=True, timeout=0.0)
    assert dom.calls[-1] == "abort" and not (tmp_path / "copy.qcow2").exists()
