"""The supervisor's start order with stand-in components (a small Python script per process that
reports ready over the pipe after a delay): a step marked `with_previous` starts together with
the step before it, the next step waits for both, and a failure in a group names its step and
stops what already runs."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from controlplane.embedded.config import ServerFlags
from controlplane.embedded.supervisor import ChildSpec, ComponentError, Supervisor

COMPONENT = """
import json, os, sys, time
name, fd = sys.argv[2], int(sys.argv[sys.argv.index("--ready-fd") + 1])
def note(event):
    with open(os.environ["STAGES_LOG"], "a") as f:
        f.write(json.dumps({"name": name, "event": event, "t": time.monotonic()}) + "\\n")
note("start")
time.sleep(float(os.environ.get("STAGES_DELAY_" + name, "0.3")))
ok = name != "bad"
note("ready" if ok else "failed")
os.write(fd, (json.dumps({"ready": ok, "url": name, "error": "boom"}) + "\\n").encode())
if ok:
    time.sleep(60)
"""


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         specs: list[ChildSpec]) -> tuple[dict[tuple[str, str], float], str, Supervisor]:
    """Run the supervisor until every component is ready (or it fails), then stop it:
    (name, event) -> monotonic time, the start error ("" if none), the supervisor."""
    log, script = tmp_path / "events.jsonl", tmp_path / "component.py"
    script.write_text(COMPONENT)
    monkeypatch.setenv("STAGES_LOG", str(log))
    sup = Supervisor(ServerFlags(data_dir=tmp_path / "data", port=0), specs, command=[sys.executable, str(script)])

    async def main() -> str:
        task = asyncio.ensure_future(sup.run())
        for _ in range(200):
            if task.done() or all(c.state == "ready" for c in sup.children):
                break
            await asyncio.sleep(0.05)
        sup.stopping.set()
        try:
            await task
        except ComponentError as exc:
            return str(exc)
        return ""

    error = asyncio.run(main())
    events = [json.loads(line) for line in log.read_text().splitlines()]
    return {(e["name"], e["event"]): e["t"] for e in events}, error, sup


def test_a_with_previous_step_starts_alongside_the_one_before_and_the_next_waits_for_both(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # b is slow to be ready, so c (started alongside) is seen starting before it even when an
    # interpreter takes long to start on a busy machine (0.4 s more for c than for b was seen)
    monkeypatch.setenv("STAGES_DELAY_b", "2.5")
    t, error, sup = _run(tmp_path, monkeypatch, [
        ChildSpec("a", "A"), ChildSpec("b", "B"), ChildSpec("c", "C", with_previous=True), ChildSpec("d", "D")])
    assert error == ""
    assert t[("b", "start")] > t[("a", "ready")]
    assert t[("c", "start")] > t[("a", "ready")] and t[("c", "start")] < t[("b", "ready")]  # together
    assert t[("d", "start")] > max(t[("b", "ready")], t[("c", "ready")])
    assert [c.state for c in sup.children] == ["stopped"] * 4


def test_a_failure_in_a_group_names_its_step_and_stops_what_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t, error, sup = _run(tmp_path, monkeypatch, [
        ChildSpec("a", "A"), ChildSpec("b", "B"), ChildSpec("bad", "the bad one", with_previous=True),
        ChildSpec("d", "D")])
    assert error == "starting the bad one: boom"
    assert ("d", "start") not in t
    procs: list[Any] = [c.proc for c in sup.children if c.proc is not None]
    assert len(procs) == 3 and all(p.returncode is not None for p in procs)
