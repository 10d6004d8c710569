"""The uninstall itself, front-end free: `uninstall()` takes the install config and the
options, asks `confirm` (the CLI's prompt) before deleting VM disks, and returns a result the
CLI prints as text or JSON. Order: VMs (through the API, while it still runs) → workers →
master, so the API is the last thing to go."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from installer import hostlayout
from installer.config.models import InstallConfig
from installer.uninstall.hostscript import HostReport, host_script, parse_report
from installer.uninstall.vms import VMError, VMRef, delete_vms, list_vms

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


@dataclass(frozen=True)
class UninstallOptions:
    dry_run: bool = False
    keep_data: bool = False
    delete_vms: bool = False
    yes: bool = False
    accept_new_host_keys: bool = False


@dataclass
class UninstallResult:
    exit_code: int
    message: str
    hosts: list[HostReport] = field(default_factory=list)
    vms: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"ok": self.exit_code == EXIT_OK, "exitCode": self.exit_code, "message": self.message,
                "vms": self.vms, "notes": self.notes, "hosts": [h.to_json() for h in self.hosts]}


Confirm = Callable[[str], bool]


def uninstall(config: InstallConfig, options: UninstallOptions, *, confirm: Confirm) -> UninstallResult:
    from installer.upgrade.platform import PlatformError, fetch_kubeconfig, from_install_config
    from installer.upgrade.remote import RemoteError

    try:
        platform = from_install_config(config, accept_new_host_keys=options.accept_new_host_keys)
    except PlatformError as exc:
        return UninstallResult(EXIT_REFUSED, str(exc).replace("`dvp upgrade` upgrades", "`dvp uninstall` removes"))
    result = UninstallResult(EXIT_OK, "")
    try:
        try:
            platform.connect()
        except RemoteError as exc:
            return UninstallResult(EXIT_FAILED, f"connecting: {exc}")
        with tempfile.TemporaryDirectory(prefix="dvp-uninstall-") as tmp:
            vms: list[VMRef] = []
            if platform.server.s().read(hostlayout.ADMIN_KUBECONFIG) is not None:
                try:
                    kubeconfig = fetch_kubeconfig(platform, Path(tmp))
                    vms = list_vms(kubeconfig)
                except (RemoteError, VMError) as exc:
                    if not options.delete_vms and not options.dry_run:
                        return UninstallResult(EXIT_REFUSED, f"cannot tell whether VirtualMachines exist: {exc}")
                    result.notes.append(f"VirtualMachines not checked: {exc}")
            result.vms = [str(vm) for vm in vms]
            if vms and not options.delete_vms and not options.dry_run:
                return UninstallResult(
                    EXIT_REFUSED, f"{len(vms)} VirtualMachine(s) exist: {', '.join(result.vms[:10])}; delete them "
                    "first (`kubectl delete vm --all -A`), or pass --delete-vms to delete them through the API",
                    vms=result.vms)
            order = platform.hosts[1:] + platform.hosts[:1]  # the master (and its API) last
            storage = str(config.virtualization.vm_storage_directory)
            try:
                listing = [_run_script(h.name, h.s(), dry_run=True, keep_data=options.keep_data, storage=storage)
                           for h in order]
            except RemoteError as exc:
                return UninstallResult(EXIT_FAILED, str(exc))
            if options.dry_run:
                result.hosts = listing
                result.message = "dry run: nothing was changed" + (
                    f"; would delete VirtualMachine(s) {', '.join(result.vms)} through the API" if vms and
                    options.delete_vms else f"; VirtualMachine(s) {', '.join(result.vms)} exist: the real run is "
                    "refused without --delete-vms" if vms else "")
                return result
            disks = sum(r.disks for r in listing)
            if disks and not options.keep_data and not options.yes:
                where = ", ".join(f"{r.host}: {r.disks}" for r in listing if r.disks)
                if not confirm(f"Delete {disks} VM disk volume(s) ({where})? They cannot be recovered."):
                    return UninstallResult(EXIT_REFUSED, f"not deleting {disks} VM disk volume(s): pass --yes to "
                                           "delete them, or --keep-data to keep volumes and datastore", hosts=listing)
            if vms:
                try:
                    delete_vms(kubeconfig, vms)
                except VMError as exc:
                    return UninstallResult(EXIT_FAILED, str(exc), vms=result.vms)
            for h in order:
                try:
                    result.hosts.append(_run_script(h.name, h.s(), dry_run=False, keep_data=options.keep_data,
                                                    storage=storage))
                except RemoteError as exc:
                    result.hosts.append(HostReport(h.name, dry_run=False, ok=False, message=str(exc)))
        failed = [r.host for r in result.hosts if not r.ok]
        result.exit_code = EXIT_FAILED if failed else EXIT_OK
        result.message = (f"failed on {', '.join(failed)}; run `dvp uninstall` again after fixing the cause"
                          if failed else "the platform is uninstalled" + (
                              " (datastore and VM volumes kept: a later `dvp install` adopts them)"
                              if options.keep_data else ""))
        return result
    finally:
        platform.close()


def _run_script(name: str, session: object, *, dry_run: bool, keep_data: bool, storage: str) -> HostReport:
    from installer.upgrade.remote import HostSession

    assert isinstance(session, HostSession)
    script = host_script(dry_run=dry_run, keep_data=keep_data, vm_storage_dir=storage)
    res = session.root("sh -s", stdin=script.encode(), timeout=300,
                       what="listing what to remove" if dry_run else "removing the platform")
    return parse_report(name, res.out, dry_run=dry_run)
