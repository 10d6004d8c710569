"""The install phase engine: validate → preflight → prepare → bootstrap → controlplane → verify.

One entry point for both front ends: the CLI (`dvp install --config`) and the TUI call
`run_install()` (the TUI from a worker thread) with an `EventSink`. Every phase records its
outcome in the run directory (installer/install/rundir.py) as soon as it ends, so
`--resume` continues from the first phase that did not finish, and running the same install
again changes nothing (every task is idempotent; the phases report what they changed).
"""

from __future__ import annotations

import json
import shlex
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer.config.loader import dump_config
from installer.config.models import InstallConfig
from installer.install import binary as binmod
from installer.install.events import (
    PHASES,
    EventSink,
    InstallResult,
    LogLine,
    PhaseFinished,
    PhaseName,
    PhaseStarted,
)
from installer.install.interrupt import Interrupt, close_control_masters, control_dir
from installer.install.inventory import ansible_env, build_inventory, masters, playbook_vars
from installer.install.plan import HostPlan, plan_hosts
from installer.install.rundir import RunDir, RunDirError, default_state_dir

PLAYBOOKS: dict[PhaseName, str] = {"prepare": "prepare.yml", "bootstrap": "bootstrap.yml",
                                   "controlplane": "controlplane.yml"}
# On hosts this state dir installed before, these checks see the platform itself (its files,
# its listening ports, its VM bridge's route) — not something in the way.
REINSTALL_SKIPS = ("leftovers.dvp", "network.ports", "network.cidr_routes")


@dataclass
class InstallOptions:
    state_dir: Path | None = None
    resume: bool = False
    dry_run: bool = False
    smoke: bool = False
    accept_new_host_keys: bool = False
    skip_checks: tuple[str, ...] = ()
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    """More playbook variables (overrides of role defaults, e.g. `dvp_extra_packages`)."""
    verify_timeout: float = 180.0
    interrupt: Interrupt | None = None
    """Set by SIGINT/SIGTERM (installer/install/interrupt.py): the phase ends as `interrupted`."""
    command: str = "dvp"
    """How the user started this dvp (for the exact `--resume` command printed)."""

    def resume_command(self, config_path: Path | None) -> str:
        """The exact command that continues this install."""
        parts = [self.command, "install", "--resume"]
        if config_path is not None:
            parts += ["--config", str(config_path.resolve())]
        if self.state_dir is not None:
            parts += ["--state-dir", str(self.state_dir.expanduser().resolve())]
        if self.accept_new_host_keys:
            parts.append("--accept-new-host-keys")
        for name in self.skip_checks:
            parts += ["--skip", name]
        if self.smoke:
            parts.append("--smoke")
        return " ".join(shlex.quote(p) for p in parts)

    def interrupted(self) -> bool:
        return self.interrupt is not None and self.interrupt.is_set()


class PhaseFailed(Exception):
    """A phase could not do its work; the message names host, task and reason."""


def plan_install(config: InstallConfig, options: InstallOptions) -> list[HostPlan]:
    """What the install would do on each host (for --dry-run); touches nothing."""
    return plan_hosts(config, extra_vars=dict(options.extra_vars))


class _Run:
    """One run's working state, shared by the phase functions."""

    def __init__(self, config: InstallConfig, options: InstallOptions, sink: EventSink, run: RunDir,
                 state_dir: Path, config_path: Path | None) -> None:
        self.config = config
        self.options = options
        self.run = run
        self.state_dir = state_dir
        self.config_path = config_path
        self.kubeconfig: Path | None = None
        self.api_url: str | None = None
        self.changed: dict[str, dict[str, int]] = {}
        self._sink = sink

    def emit(self, event: Any) -> None:
        self.run.append_event(event)
        try:
            self._sink(event)
        except Exception:  # a broken front end must not break the install
            self.run.log("event sink failed:\n" + traceback.format_exc())

    def log(self, phase: PhaseName, text: str, host: str | None = None) -> None:
        self.run.log(f"[{phase}]{f' {host}:' if host else ''} {text}")
        self.emit(LogLine(phase, text, host=host))


def run_install(config: InstallConfig, options: InstallOptions, sink: EventSink, *,
                config_path: Path | None = None) -> InstallResult:
    """Run (or resume) the install; never raises for a failing phase — the result says."""
    state_dir = (options.state_dir or default_state_dir()).expanduser()
    try:
        run = RunDir.latest(state_dir) if options.resume else RunDir.create(state_dir)
    except (RunDirError, OSError) as exc:
        return InstallResult(ok=False, run_dir=state_dir, failed_phase="validate", message=str(exc))
    ctx = _Run(config, options, sink, run, state_dir, config_path)
    resume_from = run.first_unfinished() if options.resume else None
    if options.resume:
        run.log(f"resuming from phase {resume_from or '(all done)'}")
    for phase in PHASES:
        if options.dry_run and phase != "validate":
            break
        if options.resume and phase != "validate" and run.phase_status(phase) == "ok" and (
                resume_from is None or PHASES.index(phase) < PHASES.index(resume_from)):
            ctx.emit(PhaseFinished(phase, "done-before", 0.0, "recorded as done in " + str(run.path)))
            continue
        if options.interrupted():
            return _interrupted(ctx, phase, 0.0)
        hosts = tuple(h.display_name for h in _phase_hosts(config, phase))
        ctx.emit(PhaseStarted(phase, hosts))
        run.mark_started(phase)
        t0 = time.monotonic()
        try:
            message = PHASE_FUNCTIONS[phase](ctx)
        except PhaseFailed as exc:
            if options.interrupted():
                return _interrupted(ctx, phase, time.monotonic() - t0)
            return _failed(ctx, phase, time.monotonic() - t0, str(exc))
        except Exception as exc:  # an installer bug: still recorded, resumable
            run.log(f"[{phase}] internal error:\n{traceback.format_exc()}")
            return _failed(ctx, phase, time.monotonic() - t0, f"internal error: {type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - t0
        if options.interrupted() and phase != "validate":  # a phase cut short may look finished
            return _interrupted(ctx, phase, elapsed)
        run.record_phase(phase, "ok", elapsed=elapsed, message=message, changed=ctx.changed.get(phase))
        ctx.emit(PhaseFinished(phase, "ok", elapsed, message))
    if options.dry_run:
        return InstallResult(ok=True, run_dir=run.path, message="dry run: nothing was changed")
    return InstallResult(ok=True, run_dir=run.path, kubeconfig=ctx.kubeconfig, api_url=ctx.api_url,
                         message="the platform is installed", next_steps=_next_steps(ctx),
                         changed=_changed_totals(run))


def _interrupted(ctx: _Run, phase: PhaseName, elapsed: float) -> InstallResult:
    signal_name = ctx.options.interrupt.signal_name if ctx.options.interrupt else "a signal"
    message = f"interrupted by {signal_name} during phase {phase}; nothing after it ran"
    ctx.run.record_phase(phase, "interrupted", elapsed=elapsed, message=message, changed=ctx.changed.get(phase))
    ctx.run.log(f"[{phase}] INTERRUPTED: {message}")
    ctx.emit(PhaseFinished(phase, "interrupted", elapsed, message))
    return InstallResult(ok=False, run_dir=ctx.run.path, failed_phase=phase, message=message, interrupted=True,
                         next_steps=[ctx.options.resume_command(ctx.config_path)], changed=_changed_totals(ctx.run))


def _failed(ctx: _Run, phase: PhaseName, elapsed: float, message: str) -> InstallResult:
    ctx.run.record_phase(phase, "failed", elapsed=elapsed, message=message, changed=ctx.changed.get(phase))
    ctx.run.log(f"[{phase}] FAILED: {message}")
    ctx.emit(PhaseFinished(phase, "failed", elapsed, message))
    return InstallResult(ok=False, run_dir=ctx.run.path, failed_phase=phase, message=message,
                         next_steps=[f"fix the cause, then: {ctx.options.resume_command(ctx.config_path)}"],
                         changed=_changed_totals(ctx.run))


def _changed_totals(run: RunDir) -> dict[str, int]:
    """Changed Ansible tasks per host, over this run's phases."""
    totals: dict[str, int] = {}
    for entry in run.state.get("phases", {}).values():
        for host, n in (entry.get("changed") or {}).items():
            totals[host] = totals.get(host, 0) + int(n)
    return totals


def _phase_hosts(config: InstallConfig, phase: PhaseName) -> list[Any]:
    if phase in ("bootstrap", "verify"):
        return masters(config) or config.hosts[:1]
    return list(config.hosts)


# -- phases ------------------------------------------------------------------------------------------
def _validate(ctx: _Run) -> str:
    from installer.config.errors import ConfigInvalid
    from installer.config.secrets import SecretError
    from installer.ssh.target import targets_from_config

    config = ctx.config
    if not masters(config):
        raise PhaseFailed("hosts: no host has role master (the API server needs one)")
    if config.target == "embedded" and len(masters(config)) > 1:
        raise PhaseFailed("hosts: the embedded target runs one API server: give exactly one host role master")
    try:
        targets_from_config(config, accept_new_host_keys=ctx.options.accept_new_host_keys)
    except (SecretError, ConfigInvalid) as exc:
        raise PhaseFailed(str(exc)) from exc
    previous = ctx.run.path / "config.yaml"
    text = dump_config(config)
    if previous.is_file() and previous.read_text() != text:
        ctx.run.write_text("config.previous.yaml", previous.read_text())
        ctx.log("validate", "the config differs from the one this run started with (kept as config.previous.yaml)")
    ctx.run.write_text("config.yaml", text)
    ctx.run.state["hosts"] = sorted(h.address for h in config.hosts)
    ctx.run.state["target"] = config.target
    if ctx.config_path is not None:
        ctx.run.state["config_path"] = str(ctx.config_path)
    ctx.run.save()
    if ctx.options.dry_run:
        for plan in plan_install(config, ctx.options):
            for line in plan.lines():
                ctx.log("validate", line, host=plan.host)
    return f"{len(config.hosts)} host(s), target {config.target}"


def _installed_here_before(ctx: _Run) -> set[str]:
    """Addresses of this config's hosts that an earlier run in this state dir got past the
    preflight on (a host added since is checked in full)."""
    current = {h.address for h in ctx.config.hosts}
    done: set[str] = set()
    for other in RunDir.all_runs(ctx.state_dir):
        if other.path == ctx.run.path:
            continue
        if other.phase_status("prepare") is not None:
            done.update(set(other.state.get("hosts") or ()) & current)
    return done


def _preflight(ctx: _Run) -> str:
    from installer.checks.ansible_facts import write_fact_cache
    from installer.checks.model import Status
    from installer.checks.runner import run_preflight

    skip = set(ctx.options.skip_checks)
    before = _installed_here_before(ctx)
    if ctx.options.resume:
        before = {h.address for h in ctx.config.hosts}
    if before:
        names = sorted(h.display_name for h in ctx.config.hosts if h.address in before)
        ctx.log("preflight", f"installed from this state directory before: {', '.join(names)}: not checking "
                             f"{', '.join(REINSTALL_SKIPS)} there")
    report_run = run_preflight(ctx.config, skip=sorted(skip), accept_new_host_keys=ctx.options.accept_new_host_keys,
                               skip_for=dict.fromkeys(before, REINSTALL_SKIPS))
    ctx.run.write_text("preflight.json", json.dumps(report_run.report.to_json(), indent=1))
    write_fact_cache(report_run.states, ctx.run.facts_dir)
    problems = []
    for host in report_run.report.hosts:
        for r in host.results:
            if r.is_error:
                problems.append(f"host {host.name}: {r.name}: {r.observed or r.message} (expected {r.expected})"
                                + (f"; fix: {r.fix}" if r.fix else ""))
            elif r.status == Status.FAILED:
                ctx.log("preflight", f"warning: {r.name}: {r.observed}", host=host.name)
    if problems:
        raise PhaseFailed("preflight failed: " + " | ".join(problems[:8])
                          + (f" (+{len(problems) - 8} more)" if len(problems) > 8 else "")
                          + "; skip a check by name with --skip NAME")
    from installer.checks.render import summary_line

    _check_removed_hosts(ctx)
    return f"{len(report_run.report.hosts)} host(s): {summary_line(report_run.report)}"


def _check_removed_hosts(ctx: _Run) -> None:
    """Refuse to drop a host that an earlier run joined while VMs run there (installer/install/removal.py)."""
    from installer.install.removal import notes, refusal, removed_nodes

    kubeconfig = ctx.state_dir / "kubeconfig"
    if ctx.config.target != "embedded" or not kubeconfig.is_file():
        return  # a first install: nothing joined before
    try:
        removed = removed_nodes(kubeconfig, _expected_nodes(ctx))
    except Exception as exc:  # the platform may be down (this run is to repair it): nothing to compare with
        ctx.log("preflight", f"warning: could not ask the API which hosts left the config: {type(exc).__name__}: {exc}")
        return
    problem = refusal(removed)
    if problem:
        raise PhaseFailed(problem)
    for line in notes(removed):
        ctx.log("preflight", line)


def _ansible_phase(phase: PhaseName) -> Callable[[_Run], str]:
    def run_phase(ctx: _Run) -> str:
        if not ctx.run.facts_dir.is_dir():
            raise PhaseFailed(f"no preflight facts in {ctx.run.facts_dir}: run the preflight first")
        work = ctx.run.path / "bin"
        work.mkdir(exist_ok=True)
        extra = dict(ctx.options.extra_vars)
        if phase == "bootstrap" and ctx.config.target == "dkp":
            from installer.install.dhctl import write_documents

            config_file, connection_file = write_documents(ctx.config, ctx.run.path / "dkp")
            extra.update(dvp_dhctl_config=str(config_file), dvp_dhctl_connection_config=str(connection_file))
        inventory, secrets = build_inventory(ctx.config, accept_new_host_keys=ctx.options.accept_new_host_keys)
        sockets = control_dir()
        try:
            outcome = _playbook(ctx, phase, work, extra, inventory, secrets, sockets)
        finally:
            close_control_masters(sockets)
        ctx.changed[phase] = outcome.changed
        if not outcome.ok:
            raise PhaseFailed(outcome.message)
        total = sum(outcome.changed.values())
        return f"{total} change(s)" + (f": {', '.join(outcome.changed_tasks[:6])}" if outcome.changed_tasks else "")
    return run_phase


def _playbook(ctx: _Run, phase: PhaseName, work: Path, extra: dict[str, Any], inventory: dict[str, Any],
              secrets: dict[str, str], sockets: Path) -> Any:
    from installer.install.ansible_phase import run_playbook

    return run_playbook(
        phase,
        binmod.playbooks_dir() / PLAYBOOKS[phase],
        private_dir=ctx.run.ansible_dir,
        inventory=inventory,
        extravars=playbook_vars(ctx.config, binary=binmod.installable_binary(work), extra=extra),
        envvars=ansible_env(facts_dir=ctx.run.facts_dir, secrets=secrets, control_dir=sockets),
        binary=binmod.ansible_playbook_wrapper(work),
        fact_cache=ctx.run.facts_dir,
        sink=ctx.emit,
        log=ctx.run.log,
        cancel=ctx.options.interrupted,
    )


def _verify(ctx: _Run) -> str:
    from installer.install.verify import VerifyError, fetch_kubeconfig, verify_api

    master = masters(ctx.config)[0]
    try:
        kubeconfig = fetch_kubeconfig(ctx.config, master, ctx.state_dir / "kubeconfig",
                                      accept_new_host_keys=ctx.options.accept_new_host_keys)
        ctx.kubeconfig = kubeconfig
        result = verify_api(kubeconfig, _expected_nodes(ctx), timeout=ctx.options.verify_timeout)
    except VerifyError as exc:
        raise PhaseFailed(f"host {master.display_name}: {exc}") from exc
    ctx.api_url = result.api_url
    ready = ", ".join(sorted(n for n, ok in result.nodes.items() if ok))
    summary = f"API {result.api_url} answers; Ready: {ready}; {len(result.crds)} virtualization CRDs"
    if ctx.options.smoke and not ctx.options.dry_run:
        from installer.install.smoke import SmokeError, run_smoke

        try:
            summary += "; " + run_smoke(kubeconfig, log=lambda line: ctx.log("verify", line, host=master.display_name))
        except SmokeError as exc:
            raise PhaseFailed(f"host {master.display_name}: {exc}") from exc
    return summary


def _expected_nodes(ctx: _Run) -> list[str]:
    """Node names the hosts register with: their host names, as the preflight saw them."""
    names = []
    for host in ctx.config.hosts:
        try:
            facts = json.loads((ctx.run.facts_dir / host.display_name).read_text())
            names.append(str(facts.get("ansible_nodename") or facts.get("ansible_hostname")).lower())
        except (OSError, ValueError):
            continue
    return names


def _next_steps(ctx: _Run) -> list[str]:
    kc = ctx.kubeconfig
    return [
        f"export KUBECONFIG={kc}",
        "kubectl get nodes",
        "dvp examples quickstart | kubectl apply -f -  # a VirtualImage, a VirtualDisk from it, a VirtualMachine",
        "kubectl get vi,vd,vm -w",
        "dvp v console linux-vm",
        "dvp docs install  # more: `dvp docs`; to remove it all again: dvp uninstall --dry-run",
    ]


PHASE_FUNCTIONS: dict[PhaseName, Callable[[_Run], str]] = {
    "validate": _validate,
    "preflight": _preflight,
    "prepare": _ansible_phase("prepare"),
    "bootstrap": _ansible_phase("bootstrap"),
    "controlplane": _ansible_phase("controlplane"),
    "verify": _verify,
}

__all__ = ["InstallOptions", "PhaseFailed", "plan_install", "run_install", "RunDirError", "default_state_dir"]
