"""cpu_share.claim: the nice value of a process and of its session's CPU group, on this kernel,
in a child started in a session of its own (as the supervisor starts each component)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from controlplane.common import cpu_share
from controlplane.nodehandler.config import AgentConfig, ConfigError

_CHILD = """
import json, os
from pathlib import Path
from controlplane.common.cpu_share import claim
done = claim({nice})
group = Path("/proc/self/autogroup")
print(json.dumps({{"done": done, "nice": os.getpriority(os.PRIO_PROCESS, 0),
                   "group": group.read_text().strip() if group.exists() else None}}))
"""


def _claim_in_child(nice: int) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _CHILD.format(nice=nice)], capture_output=True, text=True,
                         check=True, start_new_session=True, cwd=Path(__file__).resolve().parents[3])
    doc: dict[str, object] = json.loads(out.stdout)
    return doc


def test_claim_sets_the_process_and_its_session_group() -> None:
    """(As root, as the services run: a negative value needs CAP_SYS_NICE.)"""
    got = _claim_in_child(-4)
    assert got["nice"] == -4
    if got["group"] is None:  # no autogroup in this kernel: only the process's value is claimed
        assert got["done"] == ["nice -4"]
    else:
        assert str(got["group"]).endswith("nice -4"), got
        assert got["done"] == ["nice -4", "session group nice -4"]


def test_zero_changes_nothing() -> None:
    got = _claim_in_child(0)
    assert got["done"] == [] and got["nice"] == os.getpriority(os.PRIO_PROCESS, 0)


def test_a_refused_group_is_logged_and_the_process_runs_on(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "setpriority", lambda *_: None)  # this test must not renice pytest itself
    group = tmp_path / "autogroup"
    group.mkdir()  # exists, and writing to it fails as a refusal would
    with caplog.at_level(logging.WARNING, logger="controlplane.common.cpu_share"):
        done = cpu_share.claim(-5, autogroup=group)
    assert done == ["nice -5"]
    assert len(caplog.records) == 1, "one warning per process"
    assert "not raised to nice -5 (its session's CPU group's: Is a directory)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="controlplane.common.cpu_share"):
        cpu_share.claim(-5, autogroup=group, quiet=True)  # a component: the supervisor has warned
    assert caplog.records == []


def test_the_agent_refuses_a_nice_value_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cpu-nice: 25 is not a nice value"):
        AgentConfig(kubeconfig=tmp_path / "k", pki_dir=tmp_path, cpu_nice=25).validate()
    assert AgentConfig(kubeconfig=tmp_path / "k", pki_dir=tmp_path).cpu_nice == cpu_share.DEFAULT_NICE
