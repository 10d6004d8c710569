"""`dvp upgrade --reboot`: the two steps a host gets around its binary replacement when it is
rebooted — the drain before (its VMs move live, to hosts already upgraded when one can take
them) and the reboot after (a command over SSH, then waiting for the host to be back).

The drain is `controlplane.common.drain`, the one `dvp node drain` runs (VMOP Evict per VM, or
Migrate with a nodeSelector on the upgraded nodes' handler-version label). The reboot runs
`reboot_command` (default `systemctl reboot`, else `shutdown -r now`) and waits until SSH
answers again with either a new boot id (the kernel rebooted) or a new, live process of the
host's dvp service (a "reboot" that restarts services only, as the test lab's does). The engine
then waits for the Node on the new version (health) and uncordons it.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable

from controlplane.common.clusterversions import HANDLER_VERSION, label_value, node_version
from controlplane.common.drain import VMDrain, drain
from controlplane.common.kube.client import NODES, KubeClient
from installer import hostlayout
from installer.upgrade.platform import Platform, PlatformHost
from installer.upgrade.remote import RemoteError

DEFAULT_REBOOT_COMMAND = "systemctl reboot || shutdown -r now"
BOOT_ID = "/proc/sys/kernel/random/boot_id"


class HostStepError(Exception):
    """A drain or reboot that did not work out; the message names what and why."""


REBOOTED = "virtualization.deckhouse.io/upgrade-rebooted"
"""Label the second pass of a two-pass `--reboot` upgrade puts on each Node it has rebooted (the
value: the upgrade's record id), so the later drains move VMs there first; removed at the end."""


def preferred_nodes(kube: KubeClient, version: str, *, exclude: str,
                    label: tuple[str, str] | None = None) -> dict[str, str] | None:
    """A selector of the Nodes already on `version` (or carrying `label`), when one of them (not
    `exclude`) is Ready and schedulable; None otherwise (then the VMs go wherever the VMOP
    controller sends them)."""
    key, want = label or (HANDLER_VERSION, label_value(version))
    for node in kube.list(NODES).get("items", []):
        nv = node_version(node)
        labels = (node.get("metadata") or {}).get("labels") or {}
        if nv.name != exclude and nv.ready and not nv.unschedulable and labels.get(key) == want:
            return {key: want}
    return None


def _summary(vms: list[VMDrain]) -> str:
    done = sum(1 for v in vms if v.done)
    moving = ", ".join(f"{v.namespace}/{v.name} {v.phase}" for v in vms if not v.done)
    return f"{done}/{len(vms)} VM(s) moved" + (f"; {moving}" if moving else "")


def drain_host(kube: KubeClient, node: str, *, version: str, timeout: float, force_stop: bool,
               on_wait: Callable[[str], None], poll: float = 1.0, rebooted: str = "") -> str:
    """Cordon `node` and move its VMs away live, to the Nodes on `version` first (with `rebooted`,
    a record id: to the Nodes that upgrade rebooted first); raises HostStepError naming each VM
    that did not move."""
    prefer = preferred_nodes(kube, version, exclude=node, label=(REBOOTED, rebooted) if rebooted else None)
    try:
        result = drain(kube, node, timeout=timeout, force_stop=force_stop, prefer=prefer, poll=poll,
                       progress=lambda vms: on_wait(_summary(vms)))
    except Exception as exc:  # the API: a KubeError, a connection error
        raise HostStepError(f"draining Node {node}: {exc}") from exc
    failed = [v for v in result.vms if not v.ok]
    if failed:
        raise HostStepError("VMs did not move: " + "; ".join(f"{v.namespace}/{v.name}: {v.message or v.phase}"
                                                              for v in failed))
    if not result.vms:
        return f"no running VMs on Node {node}"
    where = ("rebooted nodes" if rebooted else "upgraded nodes") if prefer else "any other node"
    return f"{len(result.vms)} VM(s) to {where} in {result.seconds:.0f} s: " + ", ".join(
        f"{v.namespace}/{v.name} -> {v.target or '?'}" if v.action != "Stop" else f"{v.namespace}/{v.name} stopped"
        for v in result.vms)


def _identity_command(host: PlatformHost) -> str:
    """Prints `<boot id> <PID of the host's live dvp service, or ->`."""
    pid_file = shlex.quote(hostlayout.service_paths(host.service).pid_file)
    unit = shlex.quote(host.service)
    return (f"b=$(cat {BOOT_ID}); if [ -d /run/systemd/system ]; then p=$(systemctl show -p MainPID --value {unit}); "
            f"else p=$(cat {pid_file} 2>/dev/null); fi; "
            "if [ -n \"$p\" ] && [ \"$p\" != 0 ] && kill -0 \"$p\" 2>/dev/null; then :; else p=-; fi; echo \"$b $p\"")


def identity(host: PlatformHost) -> tuple[str, str]:
    """(boot id, service PID or '-') of the host."""
    parts = host.s().root(_identity_command(host), what="reading the boot id").out.split()
    return (parts[0], parts[1]) if len(parts) == 2 else ("", "-")


def reboot_host(platform: Platform, host: PlatformHost, *, command: str, timeout: float, poll: float = 1.0,
                on_wait: Callable[[str], None]) -> str:
    """Run `command` on the host and wait until it is back (new boot id, or a new live service process)."""
    boot0, pid0 = identity(host)
    t0 = time.monotonic()
    try:
        res = host.s().root(command, what="rebooting", check=False, timeout=120)
        if res.exit_status > 0:
            raise HostStepError(f"{command!r} exited {res.exit_status}: {(res.err or res.out).strip()[-300:]}")
    except RemoteError as exc:  # the connection went down with the host
        on_wait(f"connection closed ({exc.detail[:80]})")
    deadline = t0 + timeout
    last = "not back yet"
    while True:
        try:
            platform.reconnect(host)
            boot, pid = identity(host)
            if boot and boot != boot0:
                return f"rebooted in {time.monotonic() - t0:.0f} s (boot id {boot0[:8]} -> {boot[:8]})"
            if pid not in ("-", pid0):
                return f"{host.service} restarted in {time.monotonic() - t0:.0f} s (pid {pid0} -> {pid}; same kernel)"
            last = f"same boot id, {host.service} pid {pid}"
        except RemoteError as exc:
            last = f"SSH: {exc.detail[:120]}"
        if time.monotonic() > deadline:
            raise HostStepError(f"not back within {timeout:.0f} s after {command!r}: {last}")
        on_wait(f"waiting for the host: {last}")
        time.sleep(poll)
