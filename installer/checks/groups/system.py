"""Operating system checks: kernel version, init system, package manager, python3 (Ansible
runs on it in issue 7), and the kernel modules the platform loads."""

from __future__ import annotations

from installer.checks import settings
from installer.checks.context import CheckContext
from installer.checks.model import Severity
from installer.checks.registry import CheckSpec, Outcome, checker, fail, ok

check = checker("system")
FACTS = ("connection.facts",)


def _v(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


@check("system.kernel_version", f"Linux kernel {_v(settings.MIN_KERNEL)} or newer", severity=Severity.ERROR, depends=FACTS)
def kernel_version(ctx: CheckContext) -> Outcome:
    f = ctx.facts
    expected = f"Linux {_v(settings.MIN_KERNEL)} or newer"
    version = f.kernel_version
    if version is None:
        return fail(f"unknown kernel release {f.kernel!r}", expected, "check /proc/sys/kernel/osrelease on the host")
    if version >= settings.MIN_KERNEL:
        return ok(f"Linux {f.kernel}", expected)
    return fail(f"Linux {f.kernel}", expected, "upgrade the kernel (Debian 12 ships 6.1, Ubuntu 22.04 5.15)")


@check(
    "system.kernel_migration",
    f"kernel {_v(settings.RECOMMENDED_KERNEL)}+ and the same kernel line on every host (live migration parity)",
    severity=Severity.WARNING,
    depends=("system.kernel_version",),
    scope="cluster",
)
def kernel_migration(ctx: CheckContext) -> Outcome:
    version = ctx.facts.kernel_version
    assert version is not None
    expected = f"{_v(settings.RECOMMENDED_KERNEL)} or newer, the same major.minor on every host"
    lines: dict[str, list[str]] = {}
    for peer in ctx.peers:
        if peer.facts is not None and peer.facts.kernel_version is not None:
            lines.setdefault(_v(peer.facts.kernel_version), []).append(peer.target.name)
    observed = f"Linux {ctx.facts.kernel}"
    if len(lines) > 1:
        spread = "; ".join(f"{v} on {', '.join(names)}" for v, names in sorted(lines.items()))
        return fail(
            f"{observed}; hosts differ: {spread}",
            expected,
            "install the same kernel line on every host so VMs can live-migrate between them",
        )
    if version < settings.RECOMMENDED_KERNEL:
        return fail(observed, expected, f"upgrade to {_v(settings.RECOMMENDED_KERNEL)} or newer for live migration")
    return ok(observed, expected)


@check("system.init", "an init system the target supports (systemd; embedded also start-stop-daemon)", severity=Severity.ERROR, depends=FACTS)
def init(ctx: CheckContext) -> Outcome:
    f = ctx.facts
    if ctx.target == "dkp":
        expected = "systemd as PID 1 (DKP's node services are systemd units)"
    else:
        expected = "systemd as PID 1, or start-stop-daemon for dvp's services"
    if f.systemd_booted:
        return ok("systemd is PID 1", expected)
    pid1 = f.pid1 or "unknown"
    if ctx.target != "dkp" and f.command("start-stop-daemon"):
        return ok(f"PID 1 is {pid1}, not systemd; services will run under start-stop-daemon", expected)
    return fail(
        f"PID 1 is {pid1}, not systemd" + ("" if ctx.target == "dkp" else "; no start-stop-daemon"),
        expected,
        "boot the host with systemd" if ctx.target == "dkp" else "boot with systemd, or install start-stop-daemon (Debian: dpkg)",
    )


@check("system.package_manager", "a supported package manager (apt-get, dnf or yum)", severity=Severity.ERROR, depends=FACTS)
def package_manager(ctx: CheckContext) -> Outcome:
    f = ctx.facts
    expected = "apt-get (Debian, Ubuntu) or dnf/yum (RHEL family)"
    os_name = f.os_field("PRETTY_NAME") or f.os_field("ID") or "unknown OS"
    for pm in settings.SUPPORTED_PACKAGE_MANAGERS:
        if f.command(pm):
            return ok(f"{pm} on {os_name}", expected)
    other = " (zypper is not supported)" if f.command("zypper") else ""
    return fail(f"none on {os_name}{other}", expected, "use a Debian, Ubuntu or RHEL-family host")


@check("system.python3", f"python3 {_v(settings.MIN_PYTHON)}+ (Ansible runs on it)", severity=Severity.ERROR, depends=FACTS)
def python3(ctx: CheckContext) -> Outcome:
    f = ctx.facts
    expected = f"python3 {_v(settings.MIN_PYTHON)} or newer"
    fix = "install python3 (apt-get install python3 / dnf install python3)"
    if not f.command("python3") or not f.python_version:
        return fail("python3 not found", expected, fix)
    parts = f.python_version.split(".")
    try:
        version = (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        return fail(f"python3 reports {f.python_version!r}", expected, fix)
    if version >= settings.MIN_PYTHON:
        return ok(f"Python {f.python_version}", expected)
    return fail(f"Python {f.python_version}", expected, fix)


def _module_check(name: str, severity: Severity, why: str) -> CheckSpec:
    symbol = settings.MODULE_KCONFIG[name]

    def run(ctx: CheckContext) -> Outcome:
        state = ctx.facts.modules.state(name)
        expected = "loaded, built in, or loadable"
        if state in ("loaded", "built-in", "loadable"):
            return ok(state, expected)
        if state == "unknown":
            return fail(
                "unknown (no /proc/modules entry, no modules.dep, no kernel config)",
                expected,
                f"run `modprobe {name}` on the host, or install the kernel's module package",
            )
        return fail(
            f"not available ({symbol} is not set in this kernel)" if ctx.facts.modules.kconfig else "not available",
            expected,
            f"use a kernel built with {symbol} (e.g. Debian's linux-image-amd64); {why}",
        )

    return check(f"system.module.{name}", f"kernel module {name} available ({why})", severity=severity, depends=FACTS)(run)


MODULES = [
    _module_check("kvm", Severity.ERROR, "KVM itself"),
    _module_check("vhost_net", Severity.WARNING, "without it VM networking runs slower, in QEMU"),
    _module_check("tun", Severity.ERROR, "VM network interfaces"),
    _module_check("br_netfilter", Severity.ERROR, "filtering on the VM bridge"),
    _module_check("overlay", Severity.ERROR, "container and image layers"),
]

CHECKS = [kernel_version, kernel_migration, init, package_manager, python3, *MODULES]
