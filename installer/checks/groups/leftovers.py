"""Leftover checks: the platform is installed on clean hosts. An earlier dvp installation,
another Kubernetes, or another container runtime is refused, saying what was found and how to
remove it. Paths are looked up under DVP_HOST_ROOT; processes are the host's running ones."""

from __future__ import annotations

from installer.checks import settings
from installer.checks.context import CheckContext
from installer.checks.model import Severity
from installer.checks.registry import Outcome, checker, fail, ok

check = checker("leftovers")
FACTS = ("connection.facts",)


def _found(ctx: CheckContext, paths: tuple[str, ...], processes: tuple[str, ...]) -> list[str]:
    f = ctx.facts
    out = [p for p in f.leftovers if p in paths]
    out += [f"process {p}" for p in processes if p in f.processes]
    return out


@check("leftovers.dvp", "no earlier dvp installation", severity=Severity.ERROR, depends=FACTS)
def dvp(ctx: CheckContext) -> Outcome:
    found = _found(ctx, settings.DVP_LEFTOVERS, ())
    expected = "none of " + ", ".join(settings.DVP_LEFTOVERS[:3]) + ", ..."
    if not found:
        return ok("none found", expected)
    return fail(
        "found " + ", ".join(found),
        expected,
        "stop dvp-server/dvp-agent and remove /etc/dvp and /var/lib/dvp (after saving what you need), "
        "or skip this check with `--skip leftovers.dvp` when resuming your own install",
    )


@check("leftovers.kubernetes", "no other Kubernetes installed or running", severity=Severity.ERROR, depends=FACTS)
def kubernetes(ctx: CheckContext) -> Outcome:
    found = _found(ctx, settings.KUBERNETES_LEFTOVERS, settings.KUBERNETES_PROCESSES)
    expected = "no kubelet, kube-apiserver, etcd, k3s or rke2 and none of their files"
    if not found:
        return ok("none found", expected)
    return fail(
        "found " + ", ".join(found),
        expected,
        "use a clean host, or remove the other cluster first (`kubeadm reset`, k3s-uninstall.sh, ...) and reboot",
    )


@check("leftovers.container_runtime", "no other container runtime running", severity=Severity.ERROR, depends=FACTS)
def container_runtime(ctx: CheckContext) -> Outcome:
    found = _found(ctx, settings.RUNTIME_LEFTOVERS, settings.RUNTIME_PROCESSES)
    expected = "no containerd, dockerd or cri-o (the platform brings its own)"
    if not found:
        return ok("none found", expected)
    return fail(
        "found " + ", ".join(found),
        expected,
        "stop and disable it (e.g. `systemctl disable --now docker containerd`) and remove its packages",
    )


CHECKS = [dvp, kubernetes, container_runtime]
