"""The node handler's live migration between two lab hosts, each with its own libvirtd, real QEMU
(software emulation) and no shared storage: the domain the node handler builds moves with its
memory (the guest's uptime keeps growing: no reboot) and its disks (a block written before reads
back after; a data disk that is an overlay on a snapshot's file arrives flat with all its data), a cancelled migration leaves it running on the source with nothing left on the
target, and the node handler's migration manager reports it and hands the instance over. The
libvirtds talk TLS and admit only node certificates of the (lab's) cluster CA."""

from __future__ import annotations

import copy
import datetime
import json
import re
import secrets
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import libvirt
import libvirt_qemu
import pytest

from controlplane.api.internal import NODE_LABEL
from controlplane.api.migration import MigrationRequest
from controlplane.common import pki
from controlplane.common.libvirt_pki import CA_FILE, CLIENT_CERT, CLIENT_KEY
from controlplane.nodehandler.domains import Domains
from controlplane.nodehandler.domainxml import parse_metadata
from controlplane.nodehandler.layout import Layout
from controlplane.nodehandler.migration import (
    LIBVIRT_TLS_PORT,
    LiveMigration,
    MigrationOptions,
    MigrationProgress,
    MigrationReason,
    MigrationResult,
    MigrationTarget,
    target_uri,
)
from controlplane.nodehandler.migrations import Migrations
from nodeimage.guest import GuestImage
from tests.services.guests import console_exchange
from tests.support.migratelab import PREFIX, LabDomain, MigrateLab
from tests.support.upgradelab import LabNode

UPTIME = re.compile(r"UPTIME=(\d+\.\d+)")


@pytest.fixture(scope="module")
def lab() -> Iterator[MigrateLab]:
    lab = MigrateLab(hosts=2)
    try:
        yield lab
    finally:
        lab.close()


def _uptime(lab: MigrateLab, node: LabNode, dom: LabDomain) -> float:
    conn = lab.conn(node)
    try:
        out = console_exchange(conn, conn.lookupByUUIDString(dom.uid),
                               "echo UP''TIME=$(cut -d' ' -f1 /proc/uptime)=END''UP", "=ENDUP", timeout=30)
    finally:
        conn.close()
    found = UPTIME.findall(out)
    assert found, out
    return float(found[-1])


def _console(lab: MigrateLab, node: LabNode, dom: LabDomain, command: str, expect: str) -> str:
    conn = lab.conn(node)
    try:
        return console_exchange(conn, conn.lookupByUUIDString(dom.uid), command, expect, timeout=30)
    finally:
        conn.close()


def _migration(lab: MigrateLab, src: LabNode, dst: LabNode, dom: LabDomain, options: MigrationOptions,
               progress: list[MigrationProgress] | None = None) -> LiveMigration:
    domains = Domains(lab.uri(src), prefix=PREFIX, node=src.node)
    return LiveMigration(domains, dom.uid, MigrationTarget(node=dst.node, address=dst.host.address,
                                                           pki_dir=lab.pki_dir(src)), replace(options, tls=True),
                         on_progress=(lambda p: progress.append(MigrationProgress(**vars(p)))) if progress is not None
                         else None)


def _sample_tls(lab: MigrateLab, node: LabNode, dom: LabDomain, stop: threading.Event,
                seen: list[dict[str, Any]]) -> None:
    """QEMU's migration parameters of the migrating domain, read until they name TLS credentials."""
    conn = lab.conn(node)
    try:
        domain = conn.lookupByUUIDString(dom.uid)
        while not stop.is_set():
            try:
                reply = json.loads(libvirt_qemu.qemuMonitorCommand(domain, '{"execute": "query-migrate-parameters"}', 0))
            except libvirt.libvirtError:
                reply = {}
            if reply.get("return", {}).get("tls-creds"):
                seen.append(reply["return"])
                return
            stop.wait(0.05)
    finally:
        conn.close()


def _state(lab: MigrateLab, node: LabNode, uid: str) -> tuple[int, bool] | None:
    conn = lab.conn(node)
    try:
        dom = conn.lookupByUUIDString(uid)
        return dom.state()[0], bool(dom.isPersistent())
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


def _libvirtd_admits(node: LabNode, ca_file: Path, cert: tuple[bytes, bytes] | None, tmp: Path) -> bool:
    """A TLS handshake with the host's migration listener presenting `cert` (PEM certificate, key):
    libvirtd sends one byte (1) once it has checked the client's certificate, and closes the
    connection instead when it refuses it. The client checks the listener's certificate."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    if cert is not None:
        (tmp / "c.pem").write_bytes(cert[0])
        (tmp / "k.pem").write_bytes(cert[1])
        ctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
    try:
        with socket.create_connection((node.host.address, LIBVIRT_TLS_PORT), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname=node.host.address) as tls:
            return tls.recv(1) == b"\x01"
    except (ssl.SSLError, OSError):
        return False


def test_listener_admits_only_node_certificates_of_the_cluster_ca(lab: MigrateLab, tmp_path: Path) -> None:
    """libvirtd's migration listener refuses a client without a certificate, with one of another
    CA, and with a user's certificate of the cluster CA; a node certificate of the CA gets in."""
    node = lab.nodes[1]
    ca_file = lab.pki_dir(node) / CA_FILE
    foreign = pki.issue_leaf_pem(pki.ensure_ca(tmp_path / "foreign-ca"), common_name="dvp-migration:intruder",
                                 organizations=["dvp:migration"], sans=[], client=True)
    user = pki.issue_client_cert(lab.ca, common_name="alice", organizations=["system:masters"],
                                 validity=datetime.timedelta(hours=1))
    refused = {"none": None, "foreign-ca": foreign, "user-of-the-ca": (user.cert_pem, user.key_pem)}
    admitted = {name: _libvirtd_admits(node, ca_file, cert, tmp_path) for name, cert in refused.items()}
    assert admitted == dict.fromkeys(refused, False)
    own = lab.pki_dir(lab.nodes[0])
    assert _libvirtd_admits(node, ca_file, ((own / CLIENT_CERT).read_bytes(), (own / CLIENT_KEY).read_bytes()),
                            tmp_path)
    (tmp_path / "nocert").mkdir()
    shutil.copy(ca_file, tmp_path / "nocert" / CA_FILE)
    with pytest.raises(libvirt.libvirtError):  # libvirt's own client, without a client certificate
        libvirt.open(target_uri(node.host.address, pki_dir=tmp_path / "nocert")).close()


def test_running_domain_moves_with_memory_and_disks(lab: MigrateLab, guest_image: GuestImage) -> None:
    src, dst = lab.nodes
    dom = lab.boot_domain(src, guest_image.qcow2, name="move", data_fill_mib=1, data_snapshot=True)
    lab.wait_marker(dom, src)
    token = f"MIGRATED-{secrets.token_hex(8)}"
    _console(lab, src, dom, f"echo {token} | dd of=/dev/vdb conv=fsync 2>/dev/null; echo WROTE-$?", "WROTE-0")
    before = _uptime(lab, src, dom)

    progress: list[MigrationProgress] = []
    switched: list[float] = []
    migration = _migration(lab, src, dst, dom, MigrationOptions(), progress)
    migration.on_switched_over = lambda: switched.append(time.time())
    stop = threading.Event()
    tls_seen: list[dict[str, Any]] = []
    sampler = threading.Thread(target=_sample_tls, args=(lab, src, dom, stop, tls_seen), daemon=True)
    sampler.start()
    try:
        outcome = migration.run()
    finally:
        stop.set()
        sampler.join(10)

    assert outcome.result is MigrationResult.SUCCEEDED, outcome.message
    deadline = time.monotonic() + 5  # the target's event may trail the job's return; it must come
    while not switched and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(switched) == 1 and outcome.started < switched[0] < outcome.ended + 5, (switched, outcome)
    assert outcome.source_node == src.node and outcome.target_node == dst.node
    assert set(outcome.copied_disks) == set(dom.volumes)
    assert _state(lab, src, dom.uid) is None, "the source still has the domain"
    assert _state(lab, dst, dom.uid) == (libvirt.VIR_DOMAIN_RUNNING, True)
    # progress was reported while it ran, and the last report carries the completed job's
    # statistics (also when the job ended between two reads)
    assert any(p.phase == "Migrating" for p in progress), progress
    assert progress[-1].phase == "Completed" and progress[-1].data_total > 0, progress[-1]
    assert progress[-1].data_processed > 0 and progress[-1].percent == 100, progress[-1]
    # the source QEMU sent its stream with TLS credentials, checking the target's address
    assert tls_seen and tls_seen[0]["tls-hostname"] == dst.host.address, tls_seen
    conn = lab.conn(dst)
    try:
        meta = parse_metadata(conn.lookupByUUIDString(dom.uid).XMLDesc(0))
        inactive = parse_metadata(conn.lookupByUUIDString(dom.uid).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        kept = conn.lookupByUUIDString(dom.uid).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    finally:
        conn.close()
    assert kept.get("data_total", 0) > 0, f"our read consumed the target's completed job statistics: {kept}"
    assert meta is not None and meta["node"] == dst.node
    assert inactive is not None and inactive["node"] == dst.node

    after = _uptime(lab, dst, dom)
    assert after > before, f"the guest rebooted: uptime {before} before, {after} after"
    out = _console(lab, dst, dom, "dd if=/dev/vdb bs=64 count=1 2>/dev/null | head -n1; echo READ''-DONE", "READ-DONE")
    assert token in out, out
    out = _console(lab, dst, dom, "dd if=/dev/vdb bs=4 skip=4096 count=1 2>/dev/null | od -An -tx1; echo READ''-DONE",
                   "READ-DONE")  # 16 KiB in: the snapshot's pattern, read on the source through the chain
    assert "5a 5a 5a 5a" in out, out
    for path in dom.volumes:
        assert lab.exists(dst, path)
        assert "backing file" not in dst.sh(f"qemu-img info -U {path}").stdout, "the target's copy is flat"


@pytest.fixture(scope="module")
def staying(lab: MigrateLab, guest_image: GuestImage) -> LabDomain:
    """One guest on the first node for the migrations that must leave it there (cancelled, past
    its deadline): each case checks it still runs on the source with nothing on the target, so
    they share one boot."""
    dom = lab.boot_domain(lab.nodes[0], guest_image.qcow2, name="stay")
    lab.wait_marker(dom, lab.nodes[0])
    return dom


def test_cancelled_migration_keeps_the_source_and_leaves_nothing_on_the_target(lab: MigrateLab,
                                                                               staying: LabDomain) -> None:
    src, dst = lab.nodes
    dom = staying
    before = _uptime(lab, src, dom)
    progress: list[MigrationProgress] = []
    migration = _migration(lab, src, dst, dom, MigrationOptions(bandwidth_mib=1), progress)
    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.append(migration.run()))
    worker.start()
    deadline = time.monotonic() + 60
    while not any(p.phase == "Migrating" and p.data_processed for p in progress):
        assert time.monotonic() < deadline, "the migration did not start copying"
        time.sleep(0.1)
    migration.cancel("the VMOP was deleted")
    worker.join(60)
    assert outcomes, "the migration did not stop after cancel"
    outcome = outcomes[0]

    assert outcome.result is MigrationResult.CANCELLED
    assert outcome.reason is MigrationReason.CANCELLED and "the VMOP was deleted" in outcome.message
    assert _state(lab, src, dom.uid) == (libvirt.VIR_DOMAIN_RUNNING, True)
    assert _state(lab, dst, dom.uid) is None
    for path in dom.volumes:
        assert not lab.exists(dst, path), f"{path} left on the target"
    assert not lab.exists(dst, f"/var/lib/dvp/instances/{dom.uid}/seed.iso")
    assert _uptime(lab, src, dom) > before


def test_migration_past_its_deadline_is_aborted(lab: MigrateLab, staying: LabDomain) -> None:
    src, dst = lab.nodes
    dom = staying
    assert _state(lab, src, dom.uid) == (libvirt.VIR_DOMAIN_RUNNING, True)
    outcome = _migration(lab, src, dst, dom, MigrationOptions(bandwidth_mib=1, timeout=3)).run()
    assert outcome.result is MigrationResult.FAILED
    assert outcome.reason is MigrationReason.TIMED_OUT, outcome.message
    assert _state(lab, src, dom.uid) == (libvirt.VIR_DOMAIN_RUNNING, True)
    assert _state(lab, dst, dom.uid) is None
    for path in dom.volumes:
        assert not lab.exists(dst, path)


class _Kube:
    """The API as the node handler's migration sees it: status merge patches and object patches, recorded."""

    def __init__(self) -> None:
        self.patches: list[tuple[str, str, dict[str, Any], str]] = []
        self._lock = threading.Lock()

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str = "") -> dict[str, Any]:
        with self._lock:
            self.patches.append((res.kind, name, copy.deepcopy(body), subresource))
        return {"metadata": {"name": name, "namespace": namespace, "uid": "u"}, **body}

    def get_or_none(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return None


class _Volumes:
    def __init__(self, uids: dict[str, str]) -> None:
        self.uids = uids

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        uid = self.uids.get(name)
        return {"metadata": {"name": name, "namespace": namespace, "uid": uid}, "spec": {}} if uid else None


def test_node_handler_runs_the_requested_migration_and_hands_the_instance_over(lab: MigrateLab, guest_image: GuestImage,
                                                                              tmp_path: Path) -> None:
    """The instance's spec.migration starts the move; status.migration goes Preparing -> Succeeded
    (written before anything else changes), then the volumes and the instance are given the target
    node; the reconciler is told to keep its hands off the instance meanwhile."""
    src, dst = lab.nodes
    dom = lab.boot_domain(src, guest_image.qcow2, name="handover")
    lab.wait_marker(dom, src)
    kube, events = _Kube(), SimpleNamespace(record=lambda *a, **k: None)
    vol_uids = {f"handover-{d}": path.rsplit(".", 2)[-2] for d, path in zip(("root", "data"), dom.volumes, strict=True)}
    ctx = SimpleNamespace(kube=kube, events=events, node=src.node, volumes=_Volumes(vol_uids),
                          domains=Domains(lab.uri(src), prefix=PREFIX, node=src.node),
                          layout=Layout(state_dir=tmp_path / "state", run_dir=tmp_path / "run",
                                        qemu_migration_pki=tmp_path / "qemu-migration"))
    shutil.copytree(lab.pki_dir(src), ctx.layout.libvirt_pki)  # where the install puts them
    shutil.copytree(lab.qemu_pki_dir(src), ctx.layout.qemu_migration_pki)  # so the handler encrypts the stream
    requeued: list[tuple[str, str]] = []
    migrations = Migrations(ctx, requeued.append)  # type: ignore[arg-type]
    req = MigrationRequest(id="op-1", target_node=dst.node, target_address=dst.host.address)
    obj = {"metadata": {"name": "handover", "namespace": "mig", "uid": dom.uid},
           "spec": {"nodeName": src.node, "migration": req.to_api(),
                    "disks": [{"name": "root", "volume": {"name": "handover-root"}},
                              {"name": "data", "volume": {"name": "handover-data"}}]}, "status": {}}
    status = ctx.domains.status(dom.uid)
    assert migrations.handle(obj, status) is True
    assert migrations.handle(obj, status) is True  # running: the lifecycle keeps its hands off
    deadline = time.monotonic() + 300
    while migrations.busy(dom.uid):
        assert time.monotonic() < deadline, "the migration did not end"
        time.sleep(0.5)
    statuses = [b["status"]["migration"] for kind, _, b, sub in kube.patches if sub == "status"]
    assert statuses[0]["phase"] == "Preparing" and statuses[0]["sourceNode"] == src.node
    final = statuses[-1]
    assert (final["phase"], final["result"], final["reason"]) == ("Succeeded", "Succeeded", "Completed"), final
    bodies = [b["status"] for _, _, b, sub in kube.patches if sub == "status"]
    assert bodies[-1]["nodeName"] == dst.node  # routes follow in the same write at the latest, before the hand-over
    assert [b["nodeName"] for b in bodies if "nodeName" in b] in ([dst.node], [dst.node] * 2)  # + at the resume
    last_status = max(i for i, p in enumerate(kube.patches) if p[3] == "status")
    handover = [(kind, name, b) for kind, name, b, sub in kube.patches[last_status + 1:]]
    assert [(k, n) for k, n, _ in handover] == [("InternalVirtualDiskVolume", "handover-root"),
                                               ("InternalVirtualDiskVolume", "handover-data"),
                                               ("InternalVirtualMachineInstance", "handover")]
    assert all(b["spec"]["nodeName"] == dst.node and b["metadata"]["labels"][NODE_LABEL] == dst.node
               for _, _, b in handover)
    assert requeued == [("mig", "handover")]
    assert _state(lab, dst, dom.uid) == (libvirt.VIR_DOMAIN_RUNNING, True) and _state(lab, src, dom.uid) is None


DIRTY = ("#!/bin/sh\ndd if=/dev/urandom of=/tmp/src bs=1M count=16 2>/dev/null\necho DIRTYING\n"
         "while true; do cp /tmp/src /tmp/dirty; done\n")  # random bytes: QEMU sends zero pages for free


def test_always_safe_fails_on_a_guest_dirtying_memory_faster_than_the_link_and_forced_converges(
        lab: MigrateLab, guest_image: GuestImage) -> None:
    """A guest rewriting 16 MiB of random bytes in a loop, a link limited to 8 MiB/s: without auto-converge the
    copy makes no progress and is aborted (NotConverging), the VM running on on the source; with
    it (force / AlwaysForced) QEMU throttles the vCPUs until the move completes."""
    src, dst = lab.nodes
    dom = lab.boot_domain(src, guest_image.qcow2, name="dirty", memory="128Mi", user_data=DIRTY)
    deadline = time.monotonic() + 120
    while "DIRTYING" not in lab.wait_marker(dom, src):
        assert time.monotonic() < deadline, "the guest's script did not start dirtying memory"
        time.sleep(1)
    time.sleep(3)
    safe = _migration(lab, src, dst, dom, MigrationOptions(bandwidth_mib=8, progress_timeout=15, timeout=240)).run()
    assert safe.result is MigrationResult.FAILED
    assert safe.reason is MigrationReason.NOT_CONVERGING, safe.message
    assert "force" in safe.message
    assert _state(lab, src, dom.uid) == (libvirt.VIR_DOMAIN_RUNNING, True)
    assert _state(lab, dst, dom.uid) is None
    assert not any(lab.exists(dst, p) for p in dom.volumes)

    forced = _migration(lab, src, dst, dom, MigrationOptions(bandwidth_mib=8, progress_timeout=60, timeout=300,
                                                              auto_converge=True)).run()
    assert forced.result is MigrationResult.SUCCEEDED, forced.message
    assert _state(lab, dst, dom.uid) == (libvirt.VIR_DOMAIN_RUNNING, True)
