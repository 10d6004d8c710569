"""Resource checks per role and profile: CPUs, memory, free disk where VM disks will live.
Minimums are in `installer.checks.settings` (DKP's published numbers for `production`)."""

from __future__ import annotations

from installer.checks import settings
from installer.checks.context import CheckContext
from installer.checks.model import Severity
from installer.checks.registry import Outcome, checker, fail, ok
from installer.config.types import quantity_bytes

check = checker("resources")
FACTS = ("connection.facts",)


def _gib(n: int) -> str:
    return f"{n / settings.GiB:.1f} GiB"


def _minimums(ctx: CheckContext) -> settings.Minimums:
    return settings.MINIMUMS[(ctx.profile, ctx.role)]


@check("resources.cpu", "enough CPUs for the host's role and the profile", severity=Severity.ERROR, depends=FACTS)
def cpu(ctx: CheckContext) -> Outcome:
    need = _minimums(ctx).cpus
    have = ctx.facts.cpu.count
    expected = f"at least {need} CPUs for a {ctx.role} ({ctx.profile})"
    if have >= need:
        return ok(f"{have} CPUs", expected)
    fix = "use a host with more CPUs"
    if ctx.profile == "production":
        fix += ", or set checks.profile: evaluation for a trial"
    return fail(f"{have} CPUs", expected, fix)


@check("resources.memory", "enough memory for the host's role and the profile", severity=Severity.ERROR, depends=FACTS)
def memory(ctx: CheckContext) -> Outcome:
    need = _minimums(ctx).memory_bytes
    have = ctx.facts.mem_total_bytes
    expected = f"MemTotal at least {_gib(need)} for a {ctx.role} ({ctx.profile})"
    if have is None:
        return fail("MemTotal not found in /proc/meminfo", expected, "check /proc/meminfo on the host")
    if have >= need:
        return ok(f"{_gib(have)}", expected)
    fix = "add memory"
    if ctx.profile == "production":
        fix += ", or set checks.profile: evaluation for a trial"
    return fail(f"{_gib(have)}", expected, fix)


@check("resources.disk", "enough free space where VM disks (and, on the master, DVCR) will live", severity=Severity.ERROR, depends=FACTS)
def disk(ctx: CheckContext) -> Outcome:
    data_dir = str(ctx.config.virtualization.vm_storage_directory)
    need = _minimums(ctx).disk_free_bytes
    if ctx.role == "master":
        need = max(need, quantity_bytes(ctx.config.virtualization.dvcr_storage_size))
    d = ctx.facts.disk
    expected = f"at least {_gib(need)} free for {data_dir} ({ctx.role}, {ctx.profile})"
    if d.free_bytes is None:
        return fail(f"df gave no answer for {d.path or data_dir}", expected, f"check that {data_dir} or a parent exists")
    observed = f"{_gib(d.free_bytes)} free on {d.mount} (measured at {d.path})"
    if d.free_bytes >= need:
        return ok(observed, expected)
    return fail(observed, expected, f"free space, or mount a larger file system at {data_dir} (virtualization.vmStorageDirectory)")


CHECKS = [cpu, memory, disk]
