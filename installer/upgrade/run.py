"""One `dvp upgrade` run from start to end: run directory, connections, an unfinished upgrade
found on the server host (finished with the same bundle, rolled back otherwise), the bundle,
the preflight, the plan (printed alone with `--dry-run`), the engine, and the summary.
Returns the exit status (see `installer.upgrade.cli`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from controlplane.common.kube.client import KubeClient
from installer.platform_kinds import INSTANCES
from installer.upgrade.bundle import Bundle, BundleError, inspect_bundle
from installer.upgrade.engine import Engine, StepFailed, UpgradeSettings, backup_path, committed_reason
from installer.upgrade.health import cluster_versions
from installer.upgrade.plan import Plan, build_plan
from installer.upgrade.platform import Platform
from installer.upgrade.preflight import Refusal, gather
from installer.upgrade.progress import ProgressView, make_run_dir
from installer.upgrade.reboot import DEFAULT_REBOOT_COMMAND
from installer.upgrade.records import HostRecord, RecordStore, UpgradeRecord
from installer.upgrade.remote import RemoteError

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


@dataclass(frozen=True)
class UpgradeRequest:
    bundle: Path | None
    sha256: str | None = None
    dry_run: bool = False
    allow_downgrade: bool = False
    yes: bool = False
    rollback_only: bool = False
    server_timeout: float = 180.0
    node_timeout: float = 180.0
    output: str = "table"
    reboot: bool = False
    reboot_command: str = DEFAULT_REBOOT_COMMAND
    force_stop: bool = False
    drain_timeout: float = 1800.0
    reboot_timeout: float = 600.0


class Run:
    def __init__(self, platform: Platform, request: UpgradeRequest, run_dir: Path) -> None:
        self.platform = platform
        self.req = request
        self.run_dir = run_dir
        self.json = request.output == "json"
        self.out = Console(stderr=self.json, highlight=False)
        self.settings = UpgradeSettings(server_timeout=request.server_timeout, node_timeout=request.node_timeout,
                                        drain_timeout=request.drain_timeout, reboot_timeout=request.reboot_timeout)

    def emit(self, doc: dict[str, Any]) -> None:
        (self.run_dir / "result.json").write_text(json.dumps(doc, indent=2))
        if self.json:
            print(json.dumps(doc, indent=2))

    def refuse(self, refusals: list[Refusal], **extra: Any) -> int:
        for r in refusals:
            self.out.print(f"[red]refused[/] {r}")
        self.emit({"result": "refused", "refusals": [r.to_json() for r in refusals], **extra})
        return EXIT_REFUSED

    # -- the pieces ------------------------------------------------------------------------------
    def engine(self, kube: KubeClient, record: UpgradeRecord, store: RecordStore, bundle: Bundle | None,
               view: ProgressView) -> Engine:
        return Engine(self.platform, kube, record, store, bundle=bundle, report=view, settings=self.settings)

    def finish(self, record: UpgradeRecord, exc: StepFailed | None) -> int:
        doc = {"result": record.state, "record": record.to_json(), "runDir": str(self.run_dir)}
        self.emit(doc)
        if exc is None:
            self.out.print(f"[green]upgraded[/] {record.from_version} -> {record.to_version} on "
                           f"{len(record.hosts)} host(s); record {record.id}; log {self.run_dir / 'upgrade.log'}")
            return EXIT_OK
        where = record.failure or {"host": exc.host, "step": exc.step, "reason": exc.reason}
        if record.state == "reboots-pending":
            self.out.print(f"[red]upgrade failed[/] on {where['host']} at step {where['step']}: {where['reason']}\n"
                           f"not rolled back: every host runs {record.to_version} (data version "
                           f"{record.to_data_version}, which {record.from_version} cannot read) and the reboots "
                           f"are pending; fix the cause and run `dvp upgrade --reboot` with the same bundle to "
                           f"finish them; record {record.id}")
        elif record.state == "rolled-back":
            self.out.print(f"[red]upgrade failed[/] on {where['host']} at step {where['step']}: {where['reason']}\n"
                           f"rolled back: every host runs {record.from_version} again, healthy; record {record.id}")
        else:
            self.out.print(f"[red]upgrade failed[/] on {where['host']} at step {where['step']}: {where['reason']}\n"
                           f"[red]and the rollback did not complete[/]: {record.failure.get('rollback', exc.reason)}; "
                           f"run `dvp upgrade --rollback` again once the cause is fixed; record {record.id}")
        return EXIT_FAILED

    def resume(self, kube: KubeClient, store: RecordStore, record: UpgradeRecord, bundle: Bundle | None) -> int:
        same = bundle is not None and bundle.sha256 == record.to_sha256 and not self.req.rollback_only
        if record.committed and not same:
            return self.refuse([Refusal("upgrade.committed", committed_reason(record),
                                        f"give the bundle of {record.to_version} (sha256 {record.to_sha256[:12]})")],
                               unfinished=record.to_json())
        action = "finishing" if same and record.state in ("running", "reboots-pending") else "rolling back"
        self.out.print(f"[yellow]found the unfinished upgrade {record.id}[/] ({record.from_version} -> "
                       f"{record.to_version}, {record.state}): {action} it")
        if self.req.dry_run:
            self.emit({"result": "dry-run", "unfinished": record.to_json(), "action": action})
            return EXIT_OK
        with ProgressView(self.run_dir, console=self.out) as view:
            view.log(f"{action} {record.id}")
            engine = self.engine(kube, record, store, bundle if action == "finishing" else None, view)
            try:
                if action == "finishing":
                    engine.run()
                else:
                    engine.rollback()
                    return self.finish(record, StepFailed(record.failure.get("host", "-"),
                                                          record.failure.get("step", "interrupted"),
                                                          record.failure.get("reason", "the installer was interrupted")))
            except StepFailed as exc:
                return self.finish(record, exc)
        return self.finish(record, None)

    def start(self, kube: KubeClient, store: RecordStore) -> int:
        if self.req.bundle is None:
            self.out.print("[red]error[/] --bundle is required (no unfinished upgrade to finish or roll back)")
            return EXIT_REFUSED
        try:
            bundle = inspect_bundle(self.req.bundle, expected_sha256=self.req.sha256)
        except BundleError as exc:
            return self.refuse([Refusal("bundle", str(exc), "give the new dvp single binary")])
        cv = cluster_versions(kube)
        from_sha = {h.name: h.s().sha256("/usr/local/bin/dvp") for h in self.platform.hosts}
        if cv.server == bundle.version and len(cv.versions()) <= 1 and set(from_sha.values()) == {bundle.sha256}:
            self.emit({"result": "nothing-to-do", "version": bundle.version})
            self.out.print(f"nothing to do: every host already runs {bundle.version} (this very binary)")
            return EXIT_OK
        refusals = gather(self.platform, kube, cv, bundle, allow_downgrade=self.req.allow_downgrade)
        if len(set(from_sha.values())) != 1 or None in from_sha.values():
            refusals.append(Refusal("binary.consistent", f"hosts run different dvp binaries: {from_sha}",
                                    "reinstall the hosts whose binary differs"))
        if refusals:
            return self.refuse(refusals, bundle=bundle.version)
        record = UpgradeRecord.new(from_version=cv.server, to_version=bundle.version,
                                   from_sha256=str(next(iter(from_sha.values()))), to_sha256=bundle.sha256,
                                   from_data_version=cv.data_version, to_data_version=bundle.data_version,
                                   reboot=self.req.reboot, reboot_command=self.req.reboot_command if self.req.reboot else "",
                                   force_stop=self.req.force_stop)
        instances = kube.list(INSTANCES).get("items", [])
        plan = build_plan(self.platform, bundle, from_version=cv.server, from_data_version=cv.data_version,
                          instances=instances, backup_path=backup_path(record.id),
                          reboot_command=self.req.reboot_command if self.req.reboot else None)
        (self.run_dir / "plan.json").write_text(json.dumps(plan.to_json(), indent=2))
        if self.req.dry_run:
            self.emit({"result": "dry-run", "plan": plan.to_json()})
            if not self.json:
                print_plan(plan, self.out)
            return EXIT_OK
        if not self.json:
            print_plan(plan, self.out)
        if plan.vm_restarts and not self.req.yes:
            return self.refuse([Refusal("vms.restart", f"these VMs would restart: {', '.join(plan.vm_restarts)}",
                                        "confirm with --yes")])
        record.hosts = [HostRecord(h.name, h.role, h.node) for h in self.platform.hosts]
        store.save(record)
        steps = {h.name: len(hp.steps) for h, hp in zip(self.platform.hosts, plan.hosts, strict=True)}
        with ProgressView(self.run_dir, console=self.out, steps=steps) as view:
            view.log(f"upgrade {record.id}: {record.from_version} -> {record.to_version}")
            try:
                self.engine(kube, record, store, bundle, view).run()
            except StepFailed as exc:
                return self.finish(record, exc)
        return self.finish(record, None)


def print_plan(plan: Plan, console: Console) -> None:
    table = Table(title=f"upgrade plan: {plan.from_version} -> {plan.to_version} (data version "
                        f"{plan.from_data_version} -> {plan.to_data_version})")
    for col in ("#", "host", "role", "steps", "VMs"):
        table.add_column(col)
    for i, h in enumerate(plan.hosts, 1):
        table.add_row(str(i), f"{h.name}\n(Node {h.node})", f"{h.role}\n{h.service}", "\n".join(h.steps),
                      h.vm_impact + ("\n" + "\n".join(h.vms) if h.vms else ""))
    console.print(table)
    for note in plan.notes:
        console.print(f"note: {note}")


def execute(platform: Platform, request: UpgradeRequest, *, state_dir: Path | None, kubeconfig: Path | None,
            connect: Callable[[Platform, Path, Path | None], KubeClient]) -> int:
    run_dir = make_run_dir(state_dir)
    run = Run(platform, request, run_dir)
    try:
        kube = connect(platform, run_dir, kubeconfig)
        store = RecordStore(platform.server.s())
        unfinished = store.unfinished()
        if unfinished is not None:
            bundle = None
            if request.bundle is not None and not request.rollback_only:
                try:
                    bundle = inspect_bundle(request.bundle, expected_sha256=request.sha256)
                except BundleError as exc:
                    return run.refuse([Refusal("bundle", str(exc), "give the new dvp single binary")])
            return run.resume(kube, store, unfinished, bundle)
        if request.rollback_only:
            run.out.print("nothing to roll back: no unfinished upgrade is recorded")
            return EXIT_OK
        return run.start(kube, store)
    except RemoteError as exc:
        run.out.print(f"[red]error[/] {exc}")
        return EXIT_FAILED
    finally:
        platform.close()
        sys.stdout.flush()
