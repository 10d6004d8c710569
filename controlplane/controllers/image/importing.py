"""Driving one import into DVCR for an object's status — shared by images and disks.

`advance()` looks at the object's data source, starts (or follows) the importer job or the
upload ticket, and returns where it stands: still going (with progress), waiting for the
user's upload, done (with the result), or failed (with the reason to show)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.api.resources import CLUSTER_VIRTUAL_IMAGES, VIRTUAL_IMAGES
from controlplane.common.kube.client import SECRETS
from controlplane.controllers.dvcr_access import DvcrApi, DvcrError, Importer, auth_from_file
from controlplane.controllers.image import from_volume
from controlplane.controllers.runtime.state import State

UPLOAD_ANNOTATION = "virtualization.deckhouse.io/upload-id"


@dataclass
class Outcome:
    state: str  # "running" | "upload" | "done" | "failed" | "blocked"
    message: str = ""
    reason: str = ""
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    upload_url: str = ""


def _human_speed(bps: int) -> str:
    for unit, size in (("GiB/s", 2**30), ("MiB/s", 2**20), ("KiB/s", 2**10)):
        if bps >= size:
            return f"{bps / size:.1f}{unit}"
    return f"{bps}B/s"


def apply_progress(status: dict[str, Any], progress: dict[str, Any]) -> None:
    if progress.get("percent") is not None:
        status["progress"] = f"{progress['percent']:.1f}%"
    avg, cur = int(progress.get("averageSpeed") or 0), int(progress.get("currentSpeed") or 0)
    status["downloadSpeed"] = {"avg": _human_speed(avg), "avgBytes": str(avg), "current": _human_speed(cur),
                               "currentBytes": str(cur)}


def _pull_secret(state: State, name: str) -> str | None:
    secret = state.ctx.kube.get_or_none(SECRETS, name, state.namespace or "default")
    if secret is None:
        return None
    raw = (secret.get("data") or {}).get(".dockerconfigjson")
    return base64.b64decode(raw).decode() if raw else None


def _dvcr_pull_secret(state: State) -> str:
    s = state.ctx.settings
    user, password = auth_from_file(s.dvcr_importer_auth, s.dvcr_address)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {s.dvcr_address: {"auth": auth}}})


def advance(state: State, importer: Importer, api: DvcrApi, repository: str) -> Outcome:
    """Start or follow the import of the object's data source into `repository`."""
    if not state.ctx.settings.dvcr_url:
        return Outcome("blocked", "no DVCR is configured for the controllers; images cannot be imported",
                       "ProvisioningNotStarted")
    source = state.spec.get("dataSource") or {}
    kind = source.get("type")
    key = (state.resource.plural, state.namespace, state.name)
    checksums: dict[str, str] = {}
    ca_bundle = pull_secret = None
    bearer = ""
    if kind == "HTTP":
        http = source.get("http") or {}
        url = http.get("url", "")
        checksums = {k: v for k, v in (http.get("checksum") or {}).items() if v}
        ca_bundle = base64.b64decode(http["caBundle"]).decode() if http.get("caBundle") else None
    elif kind == "ContainerImage":
        ci = source.get("containerImage") or {}
        url = "docker://" + ci.get("image", "")
        ca_bundle = base64.b64decode(ci["caBundle"]).decode() if ci.get("caBundle") else None
        secret_name = (ci.get("imagePullSecret") or {}).get("name")
        if secret_name:
            pull_secret = _pull_secret(state, secret_name)
            if pull_secret is None:
                return Outcome("blocked", f"Secret {secret_name!r} (imagePullSecret) not found or without "
                                          f".dockerconfigjson", "ContainerRegistrySecretNotFound")
    elif kind == "ObjectRef" and (source.get("objectRef") or {}).get("kind") in from_volume.KINDS:
        found = from_volume.volume_source(state, source.get("objectRef") or {})
        if found.problem:
            return Outcome("blocked", found.problem, found.reason)
        url, ca_bundle, bearer = found.url, found.ca_bundle, found.bearer
    elif kind == "ObjectRef":
        ref = source.get("objectRef") or {}
        res = VIRTUAL_IMAGES if ref.get("kind") == "VirtualImage" else CLUSTER_VIRTUAL_IMAGES
        if ref.get("kind") not in ("VirtualImage", "ClusterVirtualImage"):
            return Outcome("failed", f"objectRef kind {ref.get('kind')!r} is not supported on this platform",
                           "ProvisioningFailed")
        other = state.get(res, ref.get("name", ""), state.namespace if res.namespaced else "")
        if other is None:
            return Outcome("blocked", f"{ref.get('kind')} {ref.get('name')!r} does not exist: create it, or fix "
                                      "spec.dataSource.objectRef", "ImageNotFound")
        if (other.get("status") or {}).get("phase") != "Ready":
            return Outcome("blocked", f"{ref.get('kind')} {ref.get('name')!r} is not Ready", "ImageNotReady")
        url = "docker://" + other["status"]["target"]["registryURL"]
        pull_secret = _dvcr_pull_secret(state)
        ca_bundle = Path(state.ctx.settings.dvcr_ca_file).read_text() if state.ctx.settings.dvcr_ca_file else None
    elif kind == "Upload":
        checksums = {k: v for k, v in ((source.get("upload") or {}).get("checksum") or {}).items() if v}
        refused = unverifiable(checksums)
        if refused:
            return refused
        return _upload(state, api, repository, checksums)
    else:
        return Outcome("failed", f"dataSource.type {kind!r} is not supported", "ProvisioningFailed")
    refused = unverifiable(checksums)
    if refused:
        return refused
    job = importer.start(key, url, repository, checksums=checksums, ca_bundle=ca_bundle, pull_secret=pull_secret,
                         bearer=bearer or None)
    if job.error:
        return Outcome("failed", job.error, "ProvisioningFailed")
    if job.result:
        return Outcome("done", result=job.result)
    return Outcome("running", f"importing from {url.split('?')[0]}", "Provisioning", progress=job.progress)


def unverifiable(checksums: dict[str, str]) -> Outcome | None:
    """A failed outcome naming the checksum algorithms this platform cannot compute, if any.

    DVP's schema takes streebog256/512 (GOST R 34.11-2012); hashlib has them only when its
    OpenSSL does. Such a checksum is refused up front rather than skipped.
    """
    missing = [alg for alg in checksums if not _hash_available(alg)]
    if not missing:
        return None
    usable = ", ".join(a for a in ("md5", "sha1", "sha256", "sha512") if _hash_available(a))
    return Outcome("failed", f"checksum {', '.join(missing)} cannot be verified here: this platform has no "
                             f"implementation of the algorithm (GOST R 34.11-2012); remove it or give one of "
                             f"{usable}", "ProvisioningFailed")


def _hash_available(alg: str) -> bool:
    try:
        hashlib.new(alg)
    except ValueError:
        return False
    return True


def _upload(state: State, api: DvcrApi, repository: str, checksums: dict[str, str]) -> Outcome:
    annotations = state.meta.setdefault("annotations", {})
    upload_id = annotations.get(UPLOAD_ANNOTATION)
    try:
        ticket = api.upload_status(upload_id) if upload_id else None
        if ticket is None:
            created = api.create_upload(repository, ttl=state.ctx.settings.upload_wait_seconds,
                                        checksums=checksums)
            annotations[UPLOAD_ANNOTATION] = created["id"]
            return Outcome("upload", "waiting for the image to be uploaded", "WaitForUserUpload",
                           upload_url=created["url"])
    except DvcrError as exc:
        return Outcome("blocked", str(exc), "ProvisioningNotStarted")
    phase = ticket.get("phase")
    url = ticket.get("url", "")
    if phase in ("Ready", "ready") and ticket.get("result"):
        return Outcome("done", result=ticket["result"])
    if phase in ("Failed", "failed"):
        return Outcome("failed", str(ticket.get("error") or "the upload failed"), "ProvisioningFailed")
    if phase in ("Expired", "expired"):
        return Outcome("failed", f"no upload started within {int(state.ctx.settings.upload_wait_seconds)}s; "
                                 f"the upload URL has expired", "ProvisioningFailed")
    if phase in ("Uploading", "uploading"):
        return Outcome("running", "uploading", "Provisioning", progress=ticket.get("progress") or {}, upload_url=url)
    return Outcome("upload", "waiting for the image to be uploaded", "WaitForUserUpload", upload_url=url)
