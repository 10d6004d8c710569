"""The install engine without hosts: Ansible events become install events with host, task and
reason; phases are recorded in the run dir and `--resume` continues from the first unfinished
one; the inventory carries no secrets; `dvp server --config` takes flags as YAML keys."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from installer import hostlayout
from installer.config import parse_config
from installer.install import engine
from installer.install.ansible_phase import EventTranslator
from installer.install.events import PHASES, LogLine, PhaseFinished, TaskProgress
from installer.install.inventory import build_inventory, layout_vars
from installer.install.rundir import RunDir

CONFIG = """apiVersion: dvp.deckhouse.io/v1alpha1
kind: InstallConfig
ssh: {user: admin, sudoPassword: {fromEnv: TEST_SUDO_PW}, password: {fromEnv: TEST_SSH_PW}}
hosts:
  - {address: 192.168.10.11, role: master}
  - {address: 192.168.10.12, role: worker, name: w1}
virtualization: {virtualMachineCIDRs: [10.66.10.0/24]}
"""


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEST_SUDO_PW", "sudo-Secret-1")
    monkeypatch.setenv("TEST_SSH_PW", "ssh-Secret-2")
    return parse_config(CONFIG, check_files=False)


def _ev(event: str, **data: object) -> dict[str, object]:
    return {"event": event, "event_data": data}


def test_translator_counts_and_names_failures() -> None:
    out: list[object] = []
    logged: list[str] = []
    tr = EventTranslator("prepare", out.append, logged.append)
    tr(_ev("playbook_on_task_start", task="Install QEMU"))
    tr(_ev("runner_on_ok", host="h1", task="Install QEMU", res={"changed": True}))
    tr(_ev("runner_on_ok", host="h1", task="Dirs", res={"changed": False}))
    tr(_ev("runner_on_skipped", host="h1", task="systemd only", res={}))
    tr(_ev("runner_on_failed", host="h1", task="Install pkg", res={"msg": "No package matching 'x' is available"}))
    tr(_ev("runner_on_failed", host="h1", task="ignored", ignore_errors=True, res={"msg": "meh"}))
    tr(_ev("runner_on_failed", host="h2", task="Shell", res={"msg": "non-zero return code", "stderr": "a\nmodprobe: FATAL"}))
    tr(_ev("runner_on_unreachable", host="h3", task="Gathering Facts", res={"msg": "ssh: connect refused"}))
    tr(_ev("runner_on_failed", host="h4", task="secret", res={"censored": "the output has been hidden"}))
    tr(_ev("playbook_on_stats", changed={"h1": 1}))
    progress = [e for e in out if isinstance(e, TaskProgress)]
    assert progress[4] == TaskProgress("prepare", "h1", "ignored", ok=2, changed=1, failed=1, skipped=1)
    assert tr.failures == [
        "host h1: task 'Install pkg' failed: No package matching 'x' is available",
        "host h2: task 'Shell' failed: non-zero return code: modprobe: FATAL",
        "host h3: task 'Gathering Facts' unreachable: ssh: connect refused",
        "host h4: task 'secret' failed: the output has been hidden",
    ]
    assert tr.stats_changed == {"h1": 1}
    assert any(isinstance(e, LogLine) and e.text == "changed: Install QEMU" for e in out)


def test_inventory_has_no_secret_values(config) -> None:  # type: ignore[no-untyped-def]
    inventory, env = build_inventory(config)
    text = json.dumps(inventory)
    assert "sudo-Secret-1" not in text and "ssh-Secret-2" not in text
    assert sorted(env.values()) == ["ssh-Secret-2", "ssh-Secret-2", "sudo-Secret-1", "sudo-Secret-1"]
    master = inventory["all"]["children"]["master"]["hosts"]["192.168.10.11"]
    assert master["ansible_become_password"].startswith("{{ lookup('env', 'DVP_ANSIBLE_BECOME_")
    assert "w1" in inventory["all"]["children"]["worker"]["hosts"]
    assert layout_vars()["binary"] == hostlayout.BINARY and layout_vars()["admin_kubeconfig"] == hostlayout.ADMIN_KUBECONFIG


def test_resume_continues_from_the_first_unfinished_phase(config, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    fail_at = {"bootstrap"}

    def fake(phase: str):  # type: ignore[no-untyped-def]
        def run(ctx: object) -> str:
            calls.append(phase)
            if phase in fail_at:
                raise engine.PhaseFailed(f"host h: task 't' failed: broken {phase}")
            return "done"
        return run

    monkeypatch.setattr(engine, "PHASE_FUNCTIONS", {p: fake(p) for p in PHASES})
    events: list[object] = []
    options = engine.InstallOptions(state_dir=tmp_path)
    result = engine.run_install(config, options, events.append)
    assert not result.ok and result.failed_phase == "bootstrap" and "broken bootstrap" in result.message
    assert calls == ["validate", "preflight", "prepare", "bootstrap"]
    run = RunDir.latest(tmp_path)
    assert run.first_unfinished() == "bootstrap"

    fail_at.clear()
    calls.clear()
    events.clear()
    result = engine.run_install(config, engine.InstallOptions(state_dir=tmp_path, resume=True), events.append)
    assert result.ok and result.run_dir == run.path
    assert calls == ["validate", "bootstrap", "controlplane", "verify"]
    finished = {e.phase: e.status for e in events if isinstance(e, PhaseFinished)}
    assert finished == {"validate": "ok", "preflight": "done-before", "prepare": "done-before", "bootstrap": "ok",
                        "controlplane": "ok", "verify": "ok"}
    lines = (run.path / "events.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["type"] == "PhaseFinished"


def test_resume_without_an_earlier_run_says_so(config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = engine.run_install(config, engine.InstallOptions(state_dir=tmp_path, resume=True), lambda e: None)
    assert not result.ok and "nothing to resume" in result.message


def test_dry_run_plan_per_host(config) -> None:  # type: ignore[no-untyped-def]
    plans = engine.plan_install(config, engine.InstallOptions(extra_vars={"dvp_extra_packages": ["htop"]}))
    assert [p.host for p in plans] == ["192.168.10.11", "w1"]
    assert "qemu-system-x86" in plans[0].packages and "htop" in plans[1].packages
    assert hostlayout.SERVER_CONFIG in plans[0].files and any("dvp-server" in s for s in plans[0].services)
    assert any("dvp-agent" in s for s in plans[1].services)


def test_server_config_file_keys_are_flags_and_flags_win(tmp_path: Path) -> None:
    from controlplane.embedded.cmd import server

    f = tmp_path / "server.yaml"
    f.write_text("data-dir: /srv/dvp\nlisten: 0.0.0.0:6443\nvm-cidr: [10.66.10.0/24]\n")
    ctx = server.make_context("server", ["--config", str(f), "--listen", "127.0.0.1:7443"])
    assert ctx.params["data_dir"] == Path("/srv/dvp")
    assert ctx.params["listen"] == "127.0.0.1:7443"
    assert ctx.params["vm_cidrs"] == ("10.66.10.0/24",)
    f.write_text("data-dir: /srv/dvp\nlisen: 1\n")
    with pytest.raises(click.BadParameter, match="lisen: unknown setting"):
        server.make_context("server", ["--config", str(f)])
