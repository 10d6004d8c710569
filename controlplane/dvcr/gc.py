"""Garbage collection: mark and sweep of what no tag can reach.

Mark: in every repository, start from the tagged manifests and follow index children and
referrers (manifests whose `subject` is kept); everything reached is kept, and so are the
blobs they reference (config, layers, the manifests' own bytes). Sweep: untagged
manifests no kept manifest reaches, blobs nothing kept references, links to removed blobs,
links of a repository to blobs none of its kept manifests references, uploads abandoned
longer than `stale_uploads_after`, and repositories left empty.

Safety with concurrent pushes: `run` closes the write gate (writes get "read-only during
garbage collection") and waits for writes in flight; and a blob or manifest younger than
`grace_seconds` is never removed, because a client may have pushed it a moment ago for a
manifest it is about to put (the manifest put then fails on the gate and is retried,
finding its blobs still there). `dry_run` computes the same report and removes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from controlplane.dvcr import layout, manifests
from controlplane.dvcr.digest import Digest
from controlplane.dvcr.driver import PathNotFound
from controlplane.dvcr.errors import RegistryError
from controlplane.dvcr.store import RegistryStore

log = logging.getLogger(__name__)


@dataclass
class GcSettings:
    grace_seconds: float = 3600.0
    stale_uploads_after: float = 24 * 3600.0
    drain_timeout: float = 60.0


@dataclass
class GcReport:
    dry_run: bool
    manifests: list[dict[str, str]] = field(default_factory=list)
    blobs: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, str]] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)
    kept_manifests: int = 0
    kept_blobs: int = 0
    freed_bytes: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["dryRun"] = doc.pop("dry_run")
        doc["keptManifests"] = doc.pop("kept_manifests")
        doc["keptBlobs"] = doc.pop("kept_blobs")
        doc["freedBytes"] = doc.pop("freed_bytes")
        return doc


def _parse(store: RegistryStore, d: Digest) -> manifests.Manifest | None:
    try:
        return manifests.parse(store.blobs.get(d), None)
    except (PathNotFound, RegistryError):
        return None


def _mtime(store: RegistryStore, path: str) -> float:
    info = store.driver.stat(path)
    return info.mtime if info else 0.0


def plan(store: RegistryStore, settings: GcSettings, *, dry_run: bool, now: float | None = None) -> GcReport:
    """Mark, and list what a sweep removes (nothing is removed here)."""
    now = time.time() if now is None else now
    young = now - settings.grace_seconds
    report = GcReport(dry_run=dry_run)
    marked: set[Digest] = set()
    repos = store.repos.catalog()
    empty: set[str] = set()
    used: dict[str, set[Digest]] = {}  # per repository: blobs its kept manifests reference
    for repo in repos:
        revisions = {r.digest: r for r in store.repos.revisions(repo)}
        parsed = {d: _parse(store, d) for d in revisions}
        keep: set[Digest] = set()
        roots = [d for d in store.repos.tag_targets(repo).values() if d in revisions]
        roots += [d for d in revisions if _mtime(store, layout.revision_link(repo, d)) > young]
        while roots:
            stack, roots = roots, []
            while stack:
                d = stack.pop()
                if d in keep:
                    continue
                keep.add(d)
                m = parsed.get(d)
                if m is not None:
                    stack.extend(c.digest for c in m.children if c.digest in revisions)
            # referrers of what is kept are kept with it (signatures, SBOMs, ...)
            roots = [d for d, m in parsed.items()
                     if d not in keep and m is not None and m.subject is not None and m.subject.digest in keep]
        used[repo] = set()
        for d in sorted(revisions):
            if d in keep:
                m = parsed[d]
                marked.add(d)
                if m is not None:
                    used[repo].update(b.digest for b in m.blobs)
            else:
                report.manifests.append({"repository": repo, "digest": str(d)})
        marked |= used[repo]
        report.kept_manifests += len(keep)
        if not keep:
            empty.add(repo)
    removed: set[Digest] = set()
    for blob in sorted(store.blobs.all(), key=lambda b: b.digest):
        if blob.digest in marked or blob.mtime > young:
            report.kept_blobs += 1
            continue
        removed.add(blob.digest)
        report.blobs.append({"digest": str(blob.digest), "size": blob.size})
        report.freed_bytes += blob.size
    for repo in repos:
        links = store.blobs.links(repo)
        gone = [d for d in links if d in removed or store.blobs.stat(d) is None
                or (d not in used.get(repo, set()) and _mtime(store, layout.layer_link(repo, d)) <= young)]
        report.links += [{"repository": repo, "digest": str(d)} for d in gone]
        if repo in empty and len(gone) == len(links):
            report.repositories.append(repo)
    report.uploads = sorted(store.uploads.stale(now=now, older_than=settings.stale_uploads_after))
    return report


def sweep(store: RegistryStore, report: GcReport) -> None:
    """Remove what `plan` listed: manifests first, then links, then bytes."""
    for m in report.manifests:
        with contextlib.suppress(RegistryError):
            store.repos.delete_manifest(m["repository"], m["digest"])
    for link in report.links:
        store.blobs.unlink(link["repository"], Digest(*link["digest"].split(":", 1)))
    for b in report.blobs:
        store.blobs.remove(Digest(*b["digest"].split(":", 1)))
    store.uploads.remove_stale(report.uploads)
    for repo in report.repositories:
        store.repos.delete_repository_if_empty(repo)


async def run(store: RegistryStore, settings: GcSettings, *, dry_run: bool = False) -> GcReport:
    """One collection. Read-only for its duration unless it is a dry run."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    if dry_run:
        report = await loop.run_in_executor(None, lambda: plan(store, settings, dry_run=True))
    else:
        async with store.gate.exclusive(drain_timeout=settings.drain_timeout):
            log.info("dvcr gc: registry is read-only while collecting")
            report = await loop.run_in_executor(None, lambda: plan(store, settings, dry_run=False))
            await loop.run_in_executor(None, sweep, store, report)
    report.seconds = round(time.monotonic() - started, 3)
    log.info("dvcr gc%s: %d manifests, %d blobs (%d bytes), %d links, %d uploads%s",
             " (dry run)" if dry_run else "", len(report.manifests), len(report.blobs), report.freed_bytes,
             len(report.links), len(report.uploads), " would be removed" if dry_run else " removed")
    return report
