"""Cluster-state metrics the API server can answer from its own datastore and disk, with the
names of the exporters a Kubernetes cluster would run for them, so DVP-style alerts work:
node conditions and node lease renewals (kube-state-metrics), the platform's certificates'
expiry (x509-certificate-exporter), and the datastore's filesystem (node-exporter).

Computed at scrape time: a few dozen objects and one statvfs, no bookkeeping on writes.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography import x509

from controlplane.apiserver.storage import Store
from controlplane.common.metrics import Family

NODES, LEASES = "/nodes", "coordination.k8s.io/leases"
NODE_LEASE_NAMESPACE = "kube-node-lease"


def _timestamp(text: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def node_families(store: Store) -> list[Family]:
    conditions = Family("kube_node_status_condition", "gauge", "The condition of a cluster node.",
                        ("node", "condition", "status"))
    for _key, stored in store.items(NODES):
        node: dict[str, Any] = stored.obj
        name = node["metadata"]["name"]
        for cond in (node.get("status") or {}).get("conditions") or []:
            for status in ("true", "false", "unknown"):
                conditions.add(1.0 if str(cond.get("status", "")).lower() == status else 0.0, name,
                               str(cond.get("type", "")), status)
    renew = Family("kube_lease_renew_time", "gauge", "Kube lease renew time (Unix seconds).", ("namespace", "lease"))
    for key, stored in store.items(LEASES, NODE_LEASE_NAMESPACE):
        when = _timestamp(str((stored.obj.get("spec") or {}).get("renewTime") or ""))
        if when is not None:
            renew.add(when, NODE_LEASE_NAMESPACE, key.split("/", 1)[1])
    return [conditions, renew]


def certificate_family(pki_dir: Path) -> Family:
    fam = Family("x509_cert_not_after", "gauge", "Certificate expiry date (Unix seconds).", ("filepath", "subject_CN"))
    for path in sorted(pki_dir.glob("*.crt")):
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            continue
        cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        fam.add(cert.not_valid_after_utc.timestamp(), str(path), str(cns[0].value) if cns else "")
    return fam


def filesystem_families(path: Path) -> list[Family]:
    labels = ("mountpoint",)
    avail = Family("node_filesystem_avail_bytes", "gauge", "Filesystem space available to non-root users in bytes.",
                   labels)
    size = Family("node_filesystem_size_bytes", "gauge", "Filesystem size in bytes.", labels)
    try:
        st = os.statvfs(path)
    except OSError:
        return [avail, size]
    avail.add(float(st.f_bavail * st.f_frsize), str(path))
    size.add(float(st.f_blocks * st.f_frsize), str(path))
    return [avail, size]


def collect(store: Store) -> Iterable[Family]:
    data_dir = store.path.parent
    return [*node_families(store), certificate_family(data_dir / "pki"), *filesystem_families(data_dir)]
