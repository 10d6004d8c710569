"""Refusals before anything changes: each says what was checked, what was observed, and how
to fix it. `gather()` reads the platform (API, hosts over SSH); the `*_refusals` functions
decide from what was read, so they are tested on plain data.

Refused when: a host cannot be reached as root; components report different versions (an
unfinished upgrade is resumed instead, see `engine`); the version jump is not allowed
(`versions.jump_refusal`) or the bundle cannot read the datastore's data version; the API is
not healthy; a Node is not Ready or a host has no Node; a VM or VM instance is Starting,
Stopping or Migrating; an image or disk is being imported (Provisioning); DVCR collects
garbage; a host lacks the free disk for the staged bundle, the kept previous binary and (server)
the datastore backup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.common.clusterversions import ClusterVersions
from controlplane.common.kube.client import KubeClient
from installer import hostlayout
from installer.platform_kinds import CLUSTER_VIRTUAL_IMAGES, INSTANCES, VIRTUAL_DISKS, VIRTUAL_IMAGES
from installer.platform_kinds import VIRTUAL_MACHINES as VMS
from installer.upgrade.bundle import Bundle
from installer.upgrade.health import dvcr_status
from installer.upgrade.platform import Platform
from installer.upgrade.versions import VersionError, jump_refusal

IMPORTS = (CLUSTER_VIRTUAL_IMAGES, VIRTUAL_IMAGES, VIRTUAL_DISKS)
TRANSITIONAL = ("Starting", "Stopping", "Migrating")
IMPORTING = ("Provisioning",)
DISK_MARGIN = 64 * 1024 * 1024
"""Free space kept beyond what the upgrade itself writes, per file system."""


@dataclass(frozen=True)
class Refusal:
    check: str
    observed: str
    fix: str
    host: str = ""

    def __str__(self) -> str:
        where = f"{self.host}: " if self.host else ""
        return f"{where}{self.check}: {self.observed} — {self.fix}"

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "host": self.host, "observed": self.observed, "fix": self.fix}


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta.get("name"))


def version_refusals(cv: ClusterVersions, bundle: Bundle, *, allow_downgrade: bool) -> list[Refusal]:
    out = []
    versions = cv.versions()
    if len(versions) > 1:
        parts = [f"server {cv.server or '?'}", f"controllers {cv.controllers or '?'}",
                 *(f"{n.name} {n.version or '?'}" for n in cv.nodes)]
        out.append(Refusal("versions.consistent", "components run different versions: " + ", ".join(parts),
                           "finish the upgrade that left them so (`dvp upgrade --bundle` of that version resumes an "
                           "unfinished one), or restart the hosts whose version differs"))
        return out
    if not cv.server:
        out.append(Refusal("versions.known", "the API server reports no dvp version", "is this a dvp platform?"))
        return out
    try:
        reason = jump_refusal(cv.server, bundle.version, allow_downgrade=allow_downgrade)
    except VersionError as exc:
        return [Refusal("versions.jump", str(exc), "give a released dvp binary")]
    if reason:
        out.append(Refusal("versions.jump", reason, "choose a bundle the policy allows (`dvp docs upgrade` explains the policy)"))
    if cv.data_version and bundle.data_version < cv.data_version:
        out.append(Refusal("versions.datastore",
                           f"the datastore is at data version {cv.data_version}; {bundle.version} reads up to "
                           f"{bundle.data_version}",
                           "downgrade only to a version that reads this datastore, or restore the backup taken "
                           "before it was migrated (`dvp datastore restore`)"))
    return out


def node_refusals(cv: ClusterVersions, platform: Platform) -> list[Refusal]:
    out = []
    nodes = {n.name: n for n in cv.nodes}
    for n in cv.nodes:
        if not n.ready:
            out.append(Refusal("nodes.ready", f"Node {n.name} is not Ready ({n.ready_reason or 'no condition'})",
                               f"bring Node {n.name} back (is its dvp agent running?) before upgrading", n.name))
    for h in platform.hosts:
        if h.node and h.node not in nodes:
            out.append(Refusal("nodes.registered", f"no Node {h.node} in the API", "start the host's dvp service, "
                               "or remove the host from the config", h.name))
    return out


def workload_refusals(vms: list[dict[str, Any]], instances: list[dict[str, Any]],
                      imports: list[dict[str, Any]]) -> list[Refusal]:
    out = []
    for kind, items in (("VirtualMachine", vms), ("VM instance", instances)):
        busy = [f"{_name(o)} ({(o.get('status') or {}).get('phase')})" for o in items
                if (o.get("status") or {}).get("phase") in TRANSITIONAL]
        if busy:
            out.append(Refusal("vms.settled", f"{kind}s in a transitional phase: {', '.join(busy)}",
                               "wait until they are Running or Stopped, then run the upgrade again"))
    running = [f"{o.get('kind', '?')} {_name(o)}" for o in imports if (o.get("status") or {}).get("phase") in IMPORTING]
    if running:
        out.append(Refusal("images.idle", f"imports running: {', '.join(running)}",
                           "wait until they are Ready (or delete them), then run the upgrade again"))
    return out


def parse_df(text: str) -> dict[str, int]:
    """mount point -> free bytes, from `df -Pk PATH...` output."""
    out = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 6 and parts[3].isdigit():
            out[parts[5]] = int(parts[3]) * 1024
    return out


def disk_refusals(host: str, df_text: str, *, needs: dict[str, int]) -> list[Refusal]:
    """`needs`: bytes per path in the order `df` was given them; paths on one file system add up."""
    lines = df_text.splitlines()[1:]
    by_mount: dict[str, tuple[int, int, list[str]]] = {}
    for (path, need), line in zip(needs.items(), lines, strict=False):
        parts = line.split()
        if len(parts) < 6 or not parts[3].isdigit():
            continue
        free, mount = int(parts[3]) * 1024, parts[5]
        total, _, paths = by_mount.get(mount, (0, free, []))
        by_mount[mount] = (total + need, free, [*paths, path])
    out = []
    for mount, (need, free, paths) in by_mount.items():
        if free < need + DISK_MARGIN:
            out.append(Refusal("disk.free", f"{mount} ({', '.join(paths)}) has {free // 2**20} MiB free, the upgrade "
                               f"needs {(need + DISK_MARGIN) // 2**20} MiB (new binary, previous binary, backup)",
                               f"free space on {mount}", host))
    return out


def gather(platform: Platform, kube: KubeClient, cv: ClusterVersions, bundle: Bundle, *,
           allow_downgrade: bool) -> list[Refusal]:
    """Run every check against the live platform."""
    out = list(version_refusals(cv, bundle, allow_downgrade=allow_downgrade))
    for err in cv.errors:
        out.append(Refusal("api.healthy", err, "bring the API server and controllers back (see `dvp version --cluster`)"))
    try:
        if kube.status_of("/readyz", timeout=5) != 200:
            out.append(Refusal("api.healthy", "/readyz does not answer 200", "check dvp-server's log on the master"))
    except Exception as exc:
        out.append(Refusal("api.healthy", f"the API does not answer: {exc}", "start dvp-server on the master"))
    if cv.server and not cv.controllers_leading:
        out.append(Refusal("controllers.leading", "no controller holds the Lease d8-virtualization/dvp-controllers",
                           "check dvp-server's log on the master"))
    out += node_refusals(cv, platform)
    try:
        vms = kube.list(VMS).get("items", [])
        instances = kube.list(INSTANCES).get("items", [])
        imports = [dict(o, kind=res.kind) for res in IMPORTS for o in kube.list(res).get("items", [])]
        out += workload_refusals(vms, instances, imports)
    except Exception as exc:
        out.append(Refusal("api.healthy", f"cannot list VMs and images: {exc}", "check the API server"))
    dvcr = dvcr_status(platform.server)
    if not dvcr.get("answering"):
        out.append(Refusal("dvcr.answering", f"DVCR does not answer: {dvcr.get('error', '')}",
                           "check dvp-server's log on the master", platform.server.name))
    elif dvcr.get("gcRunning"):
        out.append(Refusal("dvcr.gc", "DVCR is collecting garbage (read-only)", "wait for it to finish",
                           platform.server.name))
    for h in platform.hosts:
        needs = {hostlayout.BIN_DIR: 2 * bundle.size}
        if h.role == "master":
            db = h.s().root(f"stat -c %s {hostlayout.SERVER_DATA_DIR}/state.db 2>/dev/null || echo 0",
                            what="sizing the datastore").out.strip()
            needs[hostlayout.STATE_DIR] = int(db or 0) * 2
        df = h.s().root(f"mkdir -p {hostlayout.STATE_DIR} && df -Pk {' '.join(needs)}", what="reading free disk",
                        check=False)
        out += disk_refusals(h.name, df.out, needs=needs)
    return out
